/**
 * What the target writer needs from the rest of the engine (its hooks)
 * and its options, and what it reports of each write.
 *
 * @module
 */
import type { TargetLostError } from "../../errors.ts";
import { entryId, type RawEntry, type RedisClient } from "../../redis/mod.ts";
import type { Scheduler } from "../scheduler.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

/** Entries in one write of one stream. */
export const WRITE_MAX_ENTRIES = 25_000;
/** Bytes of entry fields in one write of one stream. */
export const WRITE_MAX_BYTES = 16 * 1024 * 1024;

/** What one finished write did. */
export interface WriteResult {
  /** IDs to acknowledge: the entries written or confirmed, and IDs of deleted ones. */
  ids: Array<string | RawEntry>;
  /** Entries written. */
  written: number;
  /** Entries found already on the target. */
  skipped: number;
  /** Pending entries deleted from the source (acked only). */
  deleted: number;
  /** Milliseconds the write took. */
  ms: number;
}

/** What the writer needs from the engine. */
export interface WriterHooks {
  /** Whether `stream` may be written now (replicating, nothing to recover first). */
  canWrite(stream: ReplicatedStream): boolean;
  /** A write finished: acknowledge, count, read more. */
  written(stream: ReplicatedStream, result: WriteResult): void;
  /** The stream cannot go on (its target is of another type, something else writes into it...). */
  stopped(stream: ReplicatedStream, error: Error): void;
  /** A write of `stream` ended, whatever its outcome (it is not writing any more). */
  released(stream: ReplicatedStream): void;
  /** Whether a read of the stream's reader failed recently (a copy of it may still run late). */
  staleReadsPossible(stream: ReplicatedStream): boolean;
  /**
   * Whether a stale read delivered entries to this consumer that this write
   * does not carry: an entry pending for this consumer above the target's
   * top and up to the batch's highest ID that is not one of the batch's
   * `ids` (the write would leave a hole below its last entry).
   */
  deliveredElsewhere(
    stream: ReplicatedStream,
    batch: { highest: string; ids: ReadonlySet<string> },
  ): Promise<boolean>;
  /**
   * The source holds entries after `after` (what the target holds) up to
   * `to` that the next write would pass by (the group was moved past them,
   * a read's reply was lost): the write was dropped (its entries are still
   * pending); the recovery looks and copies them first.
   */
  passedBy(stream: ReplicatedStream, after: string, to: string): void;
  /** Entries older than the batch were delivered behind its back: re-read in order first. */
  rewind(stream: ReplicatedStream): void;
  /**
   * The target stream holds less than was confirmed on it: copy the range
   * it lost again from the source, then go on (the write was dropped; its
   * entries are still pending).
   */
  targetLost(stream: ReplicatedStream, error: TargetLostError): void;
}

/** Options for {@linkcode TargetWriter}. */
export interface TargetWriterOptions {
  /** The scheduler for retries. */
  scheduler: Scheduler;
  /** A source connection (the checks of re-deliveries look at the source stream too). */
  source: RedisClient;
  /** Entries a write shrinks to at the least when the target is out of memory (STREAM_BATCH_SIZE). */
  minWriteEntries: number;
  /**
   * TARGET_STREAM_MAXLEN: cap each target stream at about this many entries; 0 = none.
   * @default {0}
   */
  targetMaxlen?: number;
  /**
   * This tool trims the target (TARGET_STREAM_MAXLEN or MIRROR_SOURCE_TRIM):
   * entries missing below a target stream's first one may pass as trimmed.
   * @default {targetMaxlen > 0}
   */
  targetTrims?: boolean;
  /**
   * TARGET_WAIT_REPLICAS: entries are reported written only once this many
   * replicas of the target confirmed them (WAIT); 0 = no wait.
   * @default {0}
   */
  waitReplicas?: number;
  /**
   * TARGET_WAIT_TIMEOUT in milliseconds: how long one WAIT waits.
   * @default {1000}
   */
  waitTimeoutMs?: number;
  /** Retry backoff, milliseconds. */
  backoffBaseMs: number;
  /** Retry backoff cap, milliseconds. */
  backoffMaxMs: number;
  /**
   * Failed writes retried at once before backing off (TARGET_REDIS_MAX_RETRIES).
   * @default {0}
   */
  maxRetries?: number;
  /**
   * The target's connection generation: how many times its connections were
   * opened again after a failure. When it changed since a stream's top was
   * last known, the top is checked before the stream's next write.
   * @default {() => 0}
   */
  targetGeneration?: () => number;
  /**
   * Called for each failed attempt (for metrics).
   * @default {undefined}
   */
  onError?: (stream: ReplicatedStream, kind: string) => void;
}

/** The fields of the DEBUG line of one write (made only when DEBUG is on). */
export function describeWrite(
  stream: ReplicatedStream,
  result: WriteResult,
): Record<string, unknown> {
  const entries = result.ids.filter((id): id is RawEntry => typeof id !== "string");
  const idOf = (id: string | RawEntry | undefined) =>
    id === undefined ? "-" : typeof id === "string" ? id : entryId(id);
  return {
    stream: stream.ref.label,
    written: result.written,
    skipped: result.skipped,
    first: idOf(result.ids[0]),
    last: idOf(result.ids.at(-1)),
    bytes: entries.reduce((n, e) => n + e.size, 0),
    ms: Math.round(result.ms * 10) / 10,
  };
}
