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
