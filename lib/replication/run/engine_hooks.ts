/**
 * What the replication engine is given: its connections, timer and mode
 * (options) and the hooks it calls for metrics.
 *
 * @module
 */
import type { RedisClient, ServerPool } from "../../redis/mod.ts";
import type { LeaseChanges } from "../sharing/ownership.ts";
import type { ReadFence } from "../sharing/read_fence.ts";
import type { Scheduler } from "../scheduler.ts";
import type { CopiedBatch, StreamOutcome } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import type { StreamTable } from "./stream_table.ts";

/** Per-batch and per-error hooks, for metrics. */
export interface EngineHooks {
  /**
   * The target confirmed a write (called at once: now is when it was
   * confirmed; the acks of its entries are on their way).
   * @default {undefined}
   */
  onBatch?: (stream: StreamRef, batch: CopiedBatch) => void;
  /**
   * A write failed (and will be retried).
   * @default {undefined}
   */
  onError?: (stream: StreamRef, kind: string) => void;
  /**
   * A stream ended.
   * @default {undefined}
   */
  onStreamEnd?: (stream: StreamRef, outcome: StreamOutcome) => void;
  /**
   * A read from the source failed (and will be retried).
   * @default {undefined}
   */
  onReadError?: (kind: string) => void;
  /**
   * `count` more entries of the stream were found trimmed on the source
   * before they could be copied.
   * @default {undefined}
   */
  onTrimmedBeforeCopy?: (stream: StreamRef, count: number) => void;
  /**
   * The target stream was found holding less than was copied to it (the
   * range it lost is copied again).
   * @default {undefined}
   */
  onTargetLoss?: (stream: StreamRef) => void;
  /**
   * The watchdog found the stream stalled (entries on the source, no progress).
   * @default {undefined}
   */
  onStall?: (stream: StreamRef) => void;
  /**
   * `count` more entries were found removed from the stream's target stream by something else.
   * @default {undefined}
   */
  onTargetRemoved?: (stream: StreamRef, count: number) => void;
}

/** What the engine works with. */
export interface EngineOptions {
  /** Source connection for group management and acks (outside the pool's bound). */
  control: RedisClient;
  /** Source pool: one dedicated connection per reader. */
  readers: ServerPool;
  /** Target pool. */
  target: ServerPool;
  /**
   * The target's connection generation (see `ServerHealth.generation`):
   * after a reconnect each stream's target top is checked before its next write.
   * @default {() => 0}
   */
  targetGeneration?: () => number;
  /** The one timer for retries and periodic work. */
  scheduler: Scheduler;
  /** Metrics hooks. */
  hooks: EngineHooks;
  /** `run --once`. */
  once: boolean;
  /** Aborted when reading must stop (shutdown). */
  readSignal: AbortSignal;
  /** This instance's consumer name in the group. */
  consumer: string;
  /** The one table of this instance's streams. */
  table: StreamTable;
  /**
   * With leases: reads and claims check the streams' leases (STREAM_LEASES).
   * @default {undefined}
   */
  fence?: ReadFence;
}

/** Per-batch, per-error and per-lease-tick hooks, for metrics. */
export type OrchestratorHooks = EngineHooks & {
  /**
   * A lease tick took, lost or handed over streams.
   * @default {undefined}
   */
  onLeases?: (change: LeaseChanges) => void;
};
