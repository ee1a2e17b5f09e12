/**
 * The counters of a stream's status (what this process did to it), added
 * up over the runs of the stream here: with leases, a stream whose lease was
 * lost or expired and that starts here again counts on from its earlier run.
 *
 * @module
 */
import type { StreamStatus } from "../stream/stream.ts";

/** The counters of a stream's status (what this process did to it). */
const COUNTERS = [
  "copied",
  "skipped",
  "deleted",
  "batches",
  "recovered",
  "targetLosses",
  "refilled",
  "stalls",
  "errors",
] as const;

/** The counters of a stream's status. */
export type Counts = Pick<StreamStatus, typeof COUNTERS[number]>;

/** The counters of `all` added up. */
export function sumCounts(all: readonly Counts[]): Counts {
  const out = {} as Counts;
  for (const k of COUNTERS) out[k] = all.reduce((n, c) => n + c[k], 0);
  return out;
}

/**
 * With leases: the counters of the earlier runs here of the streams whose
 * lease was lost or expired, by stream id, counted on when one starts here
 * again. Two at most a stream: the runs before the last summed, the last by
 * reference (a write of it may still be answered). Those before are settled:
 * a stream is started again only once the write and acks of its last run
 * were answered (the stream table's draining).
 */
export class EarlierRuns {
  readonly #runs = new Map<string, Counts[]>();

  /** A run of stream `id` ended with its lease lost: its counts are kept. */
  lost(id: string, status: Counts): void {
    const before = this.#runs.get(id);
    this.#runs.set(id, before ? [sumCounts(before), status] : [status]);
  }

  /** Stream `id` is gone: one made again under its name counts anew. */
  forget(id: string): void {
    this.#runs.delete(id);
  }

  /** `status` of stream `id`, with its earlier runs' counts added (itself when none). */
  withEarlier<T extends Counts>(id: string, status: T): T {
    const earlier = this.#runs.get(id);
    return earlier ? { ...status, ...sumCounts([...earlier, status]) } : status;
  }
}
