/**
 * Streams that ended while something of theirs was still out: a read (it
 * may yet deliver entries, which stay pending), or a write and its acks (a
 * new run's write beside it, and its count of the same entries). Such a
 * stream is not started again until all of it is answered. Internal to the
 * stream table.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";

/** The draining streams, by id; see the module doc. */
export class Draining {
  readonly #streams = new Map<string, ReplicatedStream>();
  /** Those whose write or acks are not answered yet. */
  readonly #writesOut = new Set<ReplicatedStream>();

  /** Whether the stream `id` is draining. */
  has(id: string): boolean {
    return this.#streams.has(id);
  }

  /** `stream` ended: draining while a read of it is out, or until `writes` settles. */
  ended(stream: ReplicatedStream, writes?: Promise<void>): void {
    if (stream.readsInFlight === 0 && !writes) return;
    this.#streams.set(stream.ref.id, stream);
    if (!writes) return;
    this.#writesOut.add(stream);
    writes.finally(() => {
      this.#writesOut.delete(stream);
      this.readsOver(stream);
    });
  }

  /** No read of `stream` is out any more (told after every read: cheap when none drains). */
  readsOver(stream: ReplicatedStream): void {
    if (this.#streams.size === 0 || this.#streams.get(stream.ref.id) !== stream) return;
    if (stream.readsInFlight === 0 && !this.#writesOut.has(stream)) {
      this.#streams.delete(stream.ref.id);
    }
  }
}
