/**
 * How a run is asked for and how it ended: its options, the status
 * snapshot, and its result (for `run --once`, the streams that caught up
 * must have nothing left pending in their group; the streams that could not
 * be brought up to date, with why).
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import { counted } from "../../log.ts";
import type { InstanceStatus } from "../sharing/instances.ts";
import type { MirroredGroupStatus } from "../mirror/group_mirror.ts";
import type { RedisClient, ServerHealth, ServerHealthStatus } from "../../redis/mod.ts";
import { pendingCounts } from "../group/pending.ts";
import type { StreamOutcome, StreamStatus } from "../stream/stream.ts";
import type { ShownStream } from "../stream/ended_stream.ts";

/** Options for {@linkcode Orchestrator.run}. */
export interface RunOptions {
  /**
   * `run --once`: one discovery pass, copy until every stream is caught up, then return.
   * @default {false}
   */
  once?: boolean;
  /**
   * After the signal aborts, how long writes in flight may take to finish
   * (write and ack) before they are abandoned (they stay pending and are
   * re-delivered safely on the next start).
   * @default {5000}
   */
  graceMs?: number;
}

/** What a run ended with. */
export interface RunResult {
  /** Whether every stream ended well (for `--once`: caught up, nothing pending). */
  ok: boolean;
  /** Status of every stream seen. */
  streams: StreamStatus[];
  /** Streams that could not be brought up to date, with why. */
  failures: Array<{ stream: string; reason: string }>;
}

/** A snapshot of the whole service, for `status` and metrics. */
export interface OrchestratorStatus {
  /** Whether both servers answered and the first discovery pass finished. */
  ready: boolean;
  /** Why not ready, when not. */
  reason?: string;
  /** Source server health. */
  source: ServerHealthStatus;
  /** Target server health. */
  target: ServerHealthStatus;
  /** Every stream seen, active or ended. */
  streams: StreamStatus[];
  /** With leases: this instance, the live ones, and how many leases it holds. */
  instance?: InstanceStatus;
  /** With STREAM_GROUPS_SYNC: each mirrored group name and how far behind its copies are. */
  groups?: MirroredGroupStatus[];
}

/**
 * Of `streams` (caught up), those with entries still pending in the group,
 * or whose pending count could not be read: their status says why.
 */
export async function stillPending<T extends ShownStream>(
  control: RedisClient,
  streams: readonly T[],
  options: { group: string; consumer?: string | ((name: string) => boolean) },
): Promise<T[]> {
  if (streams.length === 0) return [];
  let counts: Map<T, number | Error>;
  try {
    counts = await pendingCounts(control, streams, options);
  } catch (error) {
    for (const s of streams) {
      s.status.lastError = `Could not check pending entries: ${errorMessage(error)}`;
    }
    return [...streams];
  }
  const out: T[] = [];
  for (const [s, count] of counts) {
    if (count instanceof Error) {
      s.status.lastError = `Could not check pending entries: ${errorMessage(count)}`;
      out.push(s);
    } else if (count > 0) {
      s.life.on("left-pending");
      s.status.lastError = `${
        counted(count, "entry", "entries")
      } still pending in group "${options.group}"${
        typeof options.consumer === "string"
          ? ` for ${options.consumer}`
          : options.consumer
          ? " for this instance or consumers of no live instance (read through the group by something else, or left by an instance that is gone)"
          : ""
      }`;
      out.push(s);
    }
  }
  return out;
}

/** Options for {@linkcode runFailures}. */
export interface RunFailuresOptions {
  /** The streams that ended, by id. */
  ended: ReadonlyMap<string, ShownStream>;
  /** The streams still running (once mode: interrupted). */
  active: Iterable<ShownStream>;
  /** `run --once`: a stream stopped before it caught up is a failure. */
  once: boolean;
  /** The consumer group, for messages. */
  group: string;
}

/** The streams that could not be brought up to date, with why. */
export function runFailures(
  outcomes: ReadonlyMap<string, StreamOutcome>,
  options: RunFailuresOptions,
): Array<{ stream: string; reason: string }> {
  const { ended, active, once, group } = options;
  const failures: Array<{ stream: string; reason: string }> = [];
  for (const [id, outcome] of outcomes) {
    if (outcome === "caught-up" || outcome === "gone" || outcome === "released") continue;
    if (outcome === "stopped" && !once) continue;
    const stream = ended.get(id);
    const label = stream?.ref.label ?? id;
    const reason = outcome === "skipped"
      ? `no consumer group "${group}" (STREAM_AUTO_CREATE_CONSUMER_GROUPS=false)`
      : outcome === "stopped"
      ? "interrupted before it was up to date"
      : stream?.status.lastError ?? outcome;
    failures.push({ stream: label, reason });
  }
  if (once) {
    for (const s of active) {
      failures.push({ stream: s.ref.label, reason: "interrupted before it was up to date" });
    }
  }
  return failures;
}

/**
 * A run's status: ready unless it is not (yet) or a server is unreachable
 * (`notReady`: why it is not ready yet).
 */
export function runStatus(parts: {
  notReady: string | undefined;
  source: ServerHealth;
  target: ServerHealth;
  streams: StreamStatus[];
  instance: InstanceStatus | undefined;
  groups?: MirroredGroupStatus[];
}): OrchestratorStatus {
  const { notReady, source, target } = parts;
  const reason = notReady ??
    (!source.up ? "source unreachable" : !target.up ? "target unreachable" : undefined);
  return {
    ready: reason === undefined,
    reason,
    source: source.status(),
    target: target.status(),
    streams: parts.streams,
    instance: parts.instance,
    ...(parts.groups ? { groups: parts.groups } : {}),
  };
}
