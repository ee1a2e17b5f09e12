/**
 * `status`: where each stream's copy stands, read from Redis directly (so
 * it works whether or not a replicator is running), and from one side when
 * the other is down.
 *
 * @module
 */
import { type Config, discoverySettings } from "../config/mod.ts";
import {
  findStreams,
  leaseKey,
  readSourceStats,
  readTargetStats,
  type StreamRef,
} from "../replication/mod.ts";
import type { RedisClient } from "../redis/mod.ts";
import { lookAtCopies } from "./_status_copy.ts";
import { bothSidesRow, sourceSideRow, targetSideRow } from "./_status_rows.ts";
import { openSides, type ServerStatus } from "./_status_sides.ts";
import { findTargetStreams } from "./_target_streams.ts";
import { type GroupStatusRow, groupStatusRows } from "./_status_groups.ts";

export type { ServerStatus } from "./_status_sides.ts";
export type { GroupStatusRow } from "./_status_groups.ts";

/**
 * One row of `status`. Field names are the `status --json` format. A
 * field of a side that is down is null.
 */
export interface StatusRow {
  /** Source DB (null: the source is down and the configuration does not tell). */
  db: number | null;
  /** Source key (bytes outside printable ASCII escaped as \xNN). */
  key: string;
  /** Source key as hex, exact. */
  keyHex: string;
  /** Target key (escaped like `key`). */
  target: string;
  /** Target DB. */
  targetDb: number;
  /** Entries in the source stream. */
  sourceLength: number | null;
  /** Entries in the target stream. */
  targetLength: number | null;
  /** Newest source ID ("" when empty). */
  lastSourceId: string | null;
  /**
   * The last entry copied ("" when none): the target's last one when the
   * source holds it with the same bytes (or removed it since); below a
   * target's foreign entries, the last one the source holds (null when one
   * look cannot tell). With the source down, the target's last ID, unchecked.
   */
  lastCopiedId: string | null;
  /**
   * Entries not yet delivered to the group. Without a group: what a group
   * created at STREAM_START_ID would deliver (the source length for `0`, 0 for `$`).
   */
  lag: number | null;
  /**
   * The age in seconds of the oldest uncopied entry: the source's clock
   * (TIME) minus the millisecond time in the ID of the first source entry
   * above `lastCopiedId` (entries a group made at STREAM_START_ID skips not
   * counted); 0 when nothing is uncopied.
   */
  lagSeconds: number | null;
  /** Entries delivered and not acknowledged. */
  pending: number | null;
  /**
   * Entries the source trimmed before they were delivered to the group:
   * lost for the target (not counted in `lag`); null when Redis cannot
   * tell now (the group is part way through the stream, or entries were deleted).
   */
  trimmedBeforeCopy: number | null;
  /**
   * `in-sync` (nothing to copy), `behind` (entries to copy), `no-group`
   * (the consumer group does not exist yet), `target-wrong-type` (the
   * target key is not a stream), `error` (the target stream holds entries
   * the source does not: `error` says which), `unknown` (Redis cannot tell
   * the lag), `source-down` / `target-down` (that server does not answer).
   */
  state: string;
  /** Why the state is `error` ("" otherwise). */
  error: string;
  /** The consumer group's last delivered ID. */
  lastDeliveredId: string | null;
  /**
   * The instance that holds the stream's lease (copies it now); "" when none
   * does, or without leases (STREAM_LEASES=false).
   */
  owner: string | null;
  /** A cluster source: `host:port` of the master that holds the stream now ("" on one server). */
  sourceNode: string;
  /** A cluster target: `host:port` of the master that holds the target stream now ("" on one server). */
  targetNode: string;
}

/** What `status` found: the `status --json` document. */
export interface StatusReport {
  /** One row per stream. */
  streams: StatusRow[];
  /** Each server, and why it is down when it is. */
  servers: { source: ServerStatus; target: ServerStatus };
  /** What could not be looked at, one sentence each. */
  notes: string[];
  /** With STREAM_GROUPS_SYNC and both servers up: the mirrored consumer groups. */
  groups?: GroupStatusRow[];
}

/** Options for {@linkcode collectStatus}. */
export interface StatusOptions {
  /**
   * Stops early.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Reads the status of every stream the configuration covers (manual and
 * discovered). With one server down, what the other says (`servers` tells
 * which is down, and why); with both down, {@linkcode UnreachableError}.
 */
export async function collectStatus(
  config: Config,
  options: StatusOptions = {},
): Promise<StatusReport> {
  const sides = await openSides(config);
  const { source, target, servers } = sides;
  try {
    if (!source) {
      const found = await findTargetStreams(target!, config);
      const stats = await readTargetStats(target!, found.streams.map((s) => s.ref));
      const streams = found.streams.map((s) =>
        targetSideRow(s.ref, stats.get(s.ref.id)!, {
          sourceDbKnown: s.sourceDbKnown,
          targetNode: target!.nodeOf(s.ref.targetKey),
        })
      );
      return { streams, servers, notes: found.notes };
    }
    const { streams: refs } = await findStreams(source, discoverySettings(config), {
      signal: options.signal,
    });
    const group = config.consumerGroup;
    const stats = await readSourceStats(source, refs, { group });
    const owners = config.leases
      ? await leaseOwners(source, refs, { group })
      : new Map<string, string>();
    const nodes = (ref: StreamRef) => ({
      owner: owners.get(ref.id) ?? "",
      sourceNode: source.nodeOf(ref.key),
      targetNode: target?.nodeOf(ref.targetKey) ?? "",
    });
    if (!target) {
      const streams = refs.map((ref) =>
        sourceSideRow(ref, stats.get(ref.id)!, { startId: config.startId, ...nodes(ref) })
      );
      return { streams, servers, notes: [] };
    }
    await readTargetStats(target, refs, { into: stats });
    const { nowMs, looks } = await lookAtCopies({ source, target }, refs, {
      stats,
      group,
      startId: config.startId,
    });
    const streams = refs.map((ref) =>
      bothSidesRow(ref, stats.get(ref.id)!, {
        look: looks.get(ref.id)!,
        nowMs,
        startId: config.startId,
        ...nodes(ref),
      })
    );
    if (config.groupsSync.length === 0) return { streams, servers, notes: [] };
    const groups = await groupStatusRows({ source, target }, refs, config);
    return { streams, servers, notes: [], groups };
  } finally {
    sides.close();
  }
}

/** The instance that holds each stream's bucket lease, by stream id (GET, one pipeline per DB). */
async function leaseOwners(
  source: RedisClient,
  streams: readonly StreamRef[],
  options: { group: string },
): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  for (const db of new Set(streams.map((s) => s.db))) {
    const list = streams.filter((s) => s.db === db);
    const replies = await source.pipeline(
      db,
      list.map((
        ref,
      ) => ["GET", leaseKey(ref.key, { group: options.group, cluster: source.cluster })]),
    );
    list.forEach((ref, i) => {
      const r = replies[i];
      if (r.status === "fulfilled" && typeof r.value === "string") {
        owners.set(ref.id, r.value.split("/")[0]);
      }
    });
  }
  return owners;
}
