/**
 * The replication layer's door: the orchestrator of a run, discovery, stream names,
 * stats and lease keys, as the operations layer, `main.ts` and `mod.ts` use them. What other
 * layers may import of `lib/replication/`.
 *
 * @module
 */
export { FENCED_READ } from "./_lease_scripts.ts";
export { findStreams, isMissingDbError } from "./discover.ts";
export { leaseKey } from "./lease_key.ts";
export { Orchestrator } from "./orchestrator.ts";
export type {
  OrchestratorHooks,
  OrchestratorStatus,
  RunOptions,
  RunResult,
} from "./orchestrator.ts";
export type { InstanceStatus } from "./run_result.ts";
export { readStreamStats } from "./stats.ts";
export type { StreamStats } from "./stats.ts";
export type { CopiedBatch, StreamOutcome, StreamState, StreamStatus } from "./stream.ts";
export { makeStreamRef, toHex } from "./stream_ref.ts";
export type { StreamRef, StreamRefOptions } from "./stream_ref.ts";
