/**
 * The shapes a replicated stream shows outside: its status object (for
 * `status` and metrics) and what one write of it did (for the `onBatch`
 * hook). Types only; re-exported by `stream.ts`.
 *
 * @module
 */
import type { RawEntry } from "../../redis/mod.ts";
import type { StreamStats } from "./stats.ts";
import type { StreamState } from "./stream_life.ts";

/** A stream's small status object, read by metrics and `status`. */
export interface StreamStatus {
  /** Source DB. */
  db: number;
  /** Source key, escaped. */
  key: string;
  /** Target DB. */
  targetDb: number;
  /** Target key, escaped. */
  target: string;
  /** Where the replication is: changed only by the stream's {@linkcode StreamLife}. */
  readonly state: StreamState;
  /** Entries written to the target by this process. */
  copied: number;
  /** Entries found already on the target (re-deliveries) and acked. */
  skipped: number;
  /** Entries deleted from the source while pending, acked without copying. */
  deleted: number;
  /** Writes to the target (each may carry many entries). */
  batches: number;
  /** Pending entries taken over from earlier runs or other consumers. */
  recovered: number;
  /** Times the target was found to hold less than was copied to it (flushed, restarted, failed over, deleted). */
  targetLosses: number;
  /** Entries copied again from the source because the target had lost them. */
  refilled: number;
  /** Times the watchdog found it stalled (entries on the source, no progress, STREAM_STALL_TIMEOUT). */
  stalls: number;
  /** The ID of the last entry known to be on the target. */
  lastCopiedId: string;
  /** Failed attempts so far. */
  errors: number;
  /** The last error, if any. */
  lastError?: string;
  /** Time (ms since epoch) of the last write. */
  lastBatchAt?: number;
  /** Lengths, last IDs, pending and lag, refreshed every discovery interval (absent until the first refresh). */
  stats?: StreamStats;
}

/** What one write did, as passed to the `onBatch` hook. */
export interface CopiedBatch {
  /** Entries written to the target. */
  written: number;
  /** Entries found already on the target (re-deliveries) and only acked. */
  skipped: number;
  /** Milliseconds the write took. */
  ms: number;
  /**
   * The write's entries in ID order, then the IDs of pending entries found
   * deleted from the source (`deleted` of them, acked only): the last
   * `written` entries are those written, those before were already there.
   */
  ids: ReadonlyArray<string | RawEntry>;
  /** Pending entries found deleted from the source (acked without a copy). */
  deleted: number;
}
