/**
 * The reader of a Redis Cluster's master: no read blocks on the server (a
 * blocking read cannot span slots), each read covers the streams of one
 * slot. New entries are found by notifications (`notify`, from the `xadd`
 * keyspace events, see `source_events.ts`), read at once, and by a sweep
 * of every stream every `blockMs` (and at once after `sweepNow`, when
 * notifications may have been missed). With leases its reads are fenced.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";
import { fencedRead, GROUP_READ, type ReadCommand } from "./_read_command.ts";
import { StreamReader } from "./reader.ts";

/** Reads a cluster master's streams: on notification, and all of them every `blockMs`. */
export class ClusterReader extends StreamReader {
  /**
   * A stream new to this reader is read at once: a notification of an
   * entry added while it started (before it was placed here) reached nobody.
   */
  override assign(stream: ReplicatedStream): void {
    super.assign(stream);
    this.notified.add(stream);
  }

  /** A look reads 200 others at most: this reader's streams are also woken by notifications. */
  protected override lookSize(): number {
    return 200;
  }

  protected override command(): ReadCommand {
    return this.options.fence ? fencedRead(this.options.fence) : GROUP_READ;
  }

  protected override slotOf(stream: ReplicatedStream): number {
    return stream.ref.slot;
  }

  /** Every stream every `blockMs` (the notified ones are read at once, not here). */
  protected async quiet(wanting: () => ReplicatedStream[]): Promise<void> {
    // Woken before the sweep is due (a notification, a new stream, the stop): the loop looks again.
    if (!(await this.wake.lookDue(this.options.blockMs))) return;
    await this.readNow(wanting().filter((s) => this.hooks.wants(s)), false);
  }
}
