/**
 * The replication layer's door: the orchestrator of a run, discovery, stream names,
 * stats and lease keys, as the operations layer, `main.ts` and `mod.ts` use them. What other
 * layers may import of `lib/replication/`.
 *
 * Inside, a folder per concept, each importing only those listed after it:
 * - `run/`: a run of this instance: the orchestrator (discovery on a timer, stats, trims),
 *   the engine (the streams' data path), the one table of this instance's streams
 *   (`stream_table.ts`), the start of streams, and the loop acting on leases.
 * - `mirror/`: the applications' consumer groups (STREAM_GROUPS_SYNC), mirrored on the
 *   target: what to change (`group_plan.ts`, pure) and the pass over the streams.
 * - `group/`: the tool's consumer group on the source: made, pending entries taken over
 *   (recovery), acknowledgements.
 * - `read/`: readers of the source (plain, fenced and cluster strategies behind one loop),
 *   their placement on connections, and the memory read ahead.
 * - `sharing/`: several instances sharing one group: the registry, leases, their scripts
 *   and the fence of a read.
 * - `write/`: the target writer, what the target already holds, which source stream owns
 *   a target key, mirrored trims.
 * - `stream/`: one stream: its name, its state machine (`stream_life.ts`: every change
 *   of state happens there), its buffer and its stats.
 *
 * A stream's walk: `run/discover.ts` finds it, `run/orchestrator.ts` hands it to
 * `run/engine.ts`, which starts it (`run/stream_start.ts`) and places it on a reader
 * (`read/placement.ts`); a reader delivers its entries to the engine, the writer
 * (`write/writer.ts`) copies them, the acker (`group/acker.ts`) acknowledges them.
 *
 * @module
 */
export { FENCED_READ } from "./sharing/_lease_scripts.ts";
export {
  discoverEveryMaster,
  findStreams,
  isMissingDbError,
  noStreamsFound,
} from "./run/discover.ts";
export { foreignVerdict } from "./write/foreign_entries.ts";
export { leaseKey } from "./sharing/lease_key.ts";
export { Orchestrator } from "./run/orchestrator.ts";
export { isMirrored, planGroups, resumeId } from "./mirror/group_plan.ts";
export type { GroupPlan, GroupPosition, StreamSide } from "./mirror/group_plan.ts";
export { readSides } from "./mirror/group_sides.ts";
export type { MirroredGroupStatus } from "./mirror/group_mirror.ts";
export type { OrchestratorHooks } from "./run/engine_hooks.ts";
export type { OrchestratorStatus, RunOptions, RunResult } from "./run/run_result.ts";
export type { InstanceStatus } from "./sharing/instances.ts";
export { readSourceStats, readStreamStats, readTargetStats } from "./stream/stats.ts";
export { oldestUncopied, serverNowMs } from "./stream/oldest_uncopied.ts";
export type { ReadTargetStatsOptions, StreamStats } from "./stream/stats.ts";
export type { CopiedBatch, StreamOutcome, StreamState, StreamStatus } from "./stream/stream.ts";
export { makeStreamRef, toHex } from "./stream/stream_ref.ts";
export type { StreamRef, StreamRefOptions } from "./stream/stream_ref.ts";
