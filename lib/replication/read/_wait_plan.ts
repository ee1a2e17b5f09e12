/**
 * What a reader's wait covers when no stream has a backlog: the streams of
 * one DB (a wait names one DB; several take turns), and how long it may
 * block. Internal to the reader.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";
import { groupBy } from "../_group_by.ts";

/**
 * A wait over many streams blocks this long per stream (ms) when that is
 * more than `blockMs`: the source spends a few microseconds on each key of
 * a blocking read each time it is sent, so thousands of quiet streams must
 * not be sent again every second. It wakes for any new entry, and is
 * unblocked (CLIENT UNBLOCK) when the streams it covers change.
 */
export const WAIT_MS_PER_STREAM = 5;
/** A wait over many streams blocks this long at most (ms). */
export const MAX_WAIT_MS = 30_000;

/** What {@linkcode planWait} needs besides the streams. */
export interface WaitPlanOptions {
  /** The reader's count of waits so far: which DB's turn it is. */
  turn: number;
  /** STREAM_POLL_INTERVAL in ms: the shortest block. */
  blockMs: number;
  /** A blocking read of this reader can be ended early (CLIENT UNBLOCK): it may block longer. */
  canUnblock: boolean;
}

/** The streams of one DB of `wanting` (taking turns when they are of several) and the block. */
export function planWait(
  wanting: ReplicatedStream[],
  options: WaitPlanOptions,
): { db: number; streams: ReplicatedStream[]; blockMs: number } {
  const dbs = groupBy(wanting, (s) => s.ref.db);
  const keys = [...dbs.keys()];
  const db = keys[options.turn % keys.length];
  const streams = dbs.get(db)!;
  // Several DBs: one wait covers one DB, so they take turns within `blockMs`.
  if (keys.length > 1) {
    return { db, streams, blockMs: Math.max(50, Math.floor(options.blockMs / keys.length)) };
  }
  const long = options.canUnblock ? streams.length * WAIT_MS_PER_STREAM : 0;
  return { db, streams, blockMs: Math.max(options.blockMs, Math.min(MAX_WAIT_MS, long)) };
}
