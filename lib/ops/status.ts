/**
 * `status`: where each stream's copy stands, read from Redis directly (so
 * it works whether or not a replicator is running).
 *
 * @module
 */
import { type Config, discoverySettings } from "../config/mod.ts";
import {
  findStreams,
  leaseKey,
  readStreamStats,
  type StreamRef,
  type StreamStats,
  toHex,
} from "../replication/mod.ts";
import { connectOrThrow } from "./check.ts";
import { clientFor, type RedisClient } from "../redis/mod.ts";

/** One row of `status`. Field names are the `status --json` format. */
export interface StatusRow {
  /** Source DB. */
  db: number;
  /** Source key (bytes outside printable ASCII escaped as \xNN). */
  key: string;
  /** Source key as hex, exact. */
  keyHex: string;
  /** Target key (escaped like `key`). */
  target: string;
  /** Target DB. */
  targetDb: number;
  /** Entries in the source stream. */
  sourceLength: number;
  /** Entries in the target stream. */
  targetLength: number;
  /** Newest source ID ("" when empty). */
  lastSourceId: string;
  /** Newest target ID: the last copied entry ("" when none). */
  lastCopiedId: string;
  /**
   * Entries not yet delivered to the group. Without a group: what a group
   * created at STREAM_START_ID would deliver (the source length for `0`, 0 for `$`).
   */
  lag: number;
  /** Seconds of source data not yet copied, from the times inside the IDs. */
  lagSeconds: number;
  /** Entries delivered and not acknowledged. */
  pending: number;
  /**
   * Entries the source trimmed before they were delivered to the group:
   * lost for the target (not counted in `lag`); null when Redis cannot
   * tell now (the group is part way through the stream, or entries were deleted).
   */
  trimmedBeforeCopy: number | null;
  /**
   * `in-sync` (nothing to copy), `behind` (entries to copy), `no-group`
   * (the consumer group does not exist yet), `target-wrong-type` (the
   * target key is not a stream), `unknown` (Redis cannot tell the lag).
   */
  state: string;
  /** The consumer group's last delivered ID. */
  lastDeliveredId: string;
  /**
   * The instance that holds the stream's lease (copies it now); "" when none
   * does, or without leases (STREAM_LEASES=false).
   */
  owner: string;
  /** A cluster source: `host:port` of the master that holds the stream now ("" on one server). */
  sourceNode: string;
  /** A cluster target: `host:port` of the master that holds the target stream now ("" on one server). */
  targetNode: string;
}

/** Options for {@linkcode collectStatus}. */
export interface StatusOptions {
  /**
   * Stops early.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Reads the status of every stream the configuration covers (manual and discovered). */
export async function collectStatus(
  config: Config,
  options: StatusOptions = {},
): Promise<StatusRow[]> {
  const source = clientFor("source", config.source, { db: config.source.db });
  const target = clientFor("target", config.target, {
    db: config.target.db === "same" ? 0 : config.target.db,
  });
  try {
    await connectOrThrow(source, { role: "source", server: config.source });
    await connectOrThrow(target, { role: "target", server: config.target });
    const { streams } = await findStreams(source, discoverySettings(config), {
      signal: options.signal,
    });
    const stats = await readStreamStats({ source, target }, streams, {
      group: config.consumerGroup,
    });
    const owners = config.leases
      ? await leaseOwners(source, streams, { group: config.consumerGroup })
      : new Map<string, string>();
    return streams.map((ref) => ({
      ...toRow(ref, stats.get(ref.id)!, config.startId),
      owner: owners.get(ref.id) ?? "",
      sourceNode: source.nodeOf(ref.key),
      targetNode: target.nodeOf(ref.targetKey),
    }));
  } finally {
    source.close();
    target.close();
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

function toRow(
  ref: StreamRef,
  s: StreamStats,
  startId: string,
): Omit<StatusRow, "owner" | "sourceNode" | "targetNode"> {
  const inSync = s.lastSourceId === "" || s.lastCopiedId === s.lastSourceId;
  let state: string;
  if (s.targetWrongType) state = "target-wrong-type";
  else if (!s.groupExists) state = inSync && s.sourceLength > 0 ? "in-sync" : "no-group";
  else if (s.lag === null) state = s.pending > 0 || !inSync ? "behind" : "unknown";
  else state = s.lag === 0 && s.pending === 0 && inSync ? "in-sync" : "behind";
  // Without a group, the lag is what a group created now at STREAM_START_ID would deliver
  // (the whole stream for 0, at most the whole stream for an explicit ID, nothing for $).
  const lag = s.groupExists
    ? s.lag ?? 0
    : state === "in-sync" || startId === "$"
    ? 0
    : s.sourceLength;
  return {
    db: ref.db,
    key: ref.keyLabel,
    keyHex: toHex(ref.key),
    target: ref.targetKeyLabel,
    targetDb: ref.targetDb,
    sourceLength: s.sourceLength,
    targetLength: s.targetLength,
    lastSourceId: s.lastSourceId,
    lastCopiedId: s.lastCopiedId,
    lag,
    lagSeconds: Math.round(s.lagSeconds * 1000) / 1000,
    pending: s.pending,
    trimmedBeforeCopy: s.groupExists ? s.trimmedBeforeCopy : 0,
    state,
    lastDeliveredId: s.lastDeliveredId,
  };
}

/** The human-readable table of `status`. */
export function formatStatusTable(rows: readonly StatusRow[]): string {
  const header = [
    "SOURCE",
    "TARGET",
    "SRC LEN",
    "TGT LEN",
    "LAST SOURCE ID",
    "LAST COPIED ID",
    "LAG",
    "LAG S",
    "PENDING",
    "TRIMMED",
    "STATE",
    "OWNER",
  ];
  // A cluster's node after the key: `db0:key@host:port`.
  const at = (node: string) => node === "" ? "" : `@${node}`;
  const body = rows.map((r) => [
    `db${r.db}:${r.key}${at(r.sourceNode)}`,
    `db${r.targetDb}:${r.target}${at(r.targetNode)}`,
    String(r.sourceLength),
    String(r.targetLength),
    r.lastSourceId || "-",
    r.lastCopiedId || "-",
    String(r.lag),
    r.lagSeconds.toFixed(1),
    String(r.pending),
    r.trimmedBeforeCopy === null ? "?" : String(r.trimmedBeforeCopy),
    r.state,
    r.owner || "-",
  ]);
  const numeric = new Set([2, 3, 6, 7, 8, 9]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ")
      .trimEnd();
  const behind = rows.filter((r) => r.state !== "in-sync").length;
  const summary = rows.length === 0
    ? "No streams found (check REDIS_STREAMS, STREAM_DISCOVERY_PATTERNS and REDIS_DB_SEARCH_RANGE)."
    : `${rows.length} streams, ${rows.length - behind} in sync, ${behind} not in sync.`;
  return [line(header), ...body.map(line), "", summary].join("\n");
}
