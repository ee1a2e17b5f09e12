/**
 * Reads how far each stream's copy is: source and target length and last
 * ID, the group's pending count and lag, and the entries trimmed on the
 * source before they could be copied. One pipeline per DB, side and
 * thousand streams, so thousands of streams cost a few round trips. Used by `status`, by the
 * metrics and by the running service's periodic refresh.
 *
 * @module
 */
import {
  compareIds,
  parseFlatMap,
  RANGE_REPLY,
  RawEntry,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import { oldestUncopied, serverNowMs } from "./oldest_uncopied.ts";
import type { StreamRef } from "./stream_ref.ts";

/** Where one stream's copy stands. */
export interface StreamStats {
  /** Entries in the source stream (0 when it does not exist). */
  sourceLength: number;
  /** ID of the newest source entry ("" when empty). */
  lastSourceId: string;
  /** ID of the oldest source entry ("" when empty). */
  firstSourceId: string;
  /** Whether the source key is a stream. */
  sourceIsStream: boolean;
  /** Whether the consumer group exists on the source stream. */
  groupExists: boolean;
  /** Entries delivered to the group and not acknowledged. */
  pending: number;
  /**
   * Entries of the source stream not yet delivered to the group (XINFO
   * GROUPS `lag`, less the entries trimmed before they were delivered,
   * which Redis keeps counting); null when Redis cannot tell.
   */
  lag: number | null;
  /**
   * Entries the source trimmed (MAXLEN, MINID, XTRIM) before the group
   * delivered them: lost for the target. Null when it cannot be told now
   * (the group is part way through the stream, or entries were XDELeted).
   */
  trimmedBeforeCopy: number | null;
  /** The group's last delivered ID. */
  lastDeliveredId: string;
  /** Entries in the target stream. */
  targetLength: number;
  /** ID of the newest target entry ("" when empty): the last copied one. */
  lastCopiedId: string;
  /** Whether the target key exists and is not a stream. */
  targetWrongType: boolean;
  /**
   * Entries removed from the target stream since it was made (XDEL, XTRIM,
   * MAXLEN: Redis >= 7, entries-added minus length); 0 when not told.
   */
  targetRemoved: number;
  /** The highest ID deleted from the target stream with XDEL ("0-0": none, or not told; XTRIM does not count). */
  targetRemovedUpTo: string;
  /** ID of the oldest target entry ("" when empty). */
  firstTargetId: string;
  /**
   * Age in seconds of the oldest source entry not yet copied, by the
   * source's clock and the time in its ID (`oldest_uncopied.ts`); 0 when
   * nothing is left to copy. Set by {@linkcode readStreamStats}.
   */
  lagSeconds: number;
  /** Entries the running replicator had handled when these stats were read (set by the orchestrator). */
  handledAtRefresh?: number;
}

/** Options for {@linkcode readStreamStats}. */
export interface ReadStreamStatsOptions {
  /** The consumer group whose pending count and lag are read. */
  group: string;
  /**
   * STREAM_START_ID of a stream: entries at or below an explicit one are not uncopied.
   * @default {() => "0"}
   */
  startId?: (ref: StreamRef) => string;
}

/** Streams per pipeline. */
const CHUNK = 1000;

/** Reads the stats of `refs`: source side on `source`, target side on `target`. */
export async function readStreamStats(
  connections: { source: RedisClient; target: RedisClient },
  refs: readonly StreamRef[],
  options: ReadStreamStatsOptions,
): Promise<Map<string, StreamStats>> {
  const out = await readSourceStats(connections.source, refs, options);
  await readTargetStats(connections.target, refs, { into: out });
  const startId = options.startId ?? (() => "0");
  const asks = refs.flatMap((ref) => {
    const stats = out.get(ref.id)!;
    return anythingLeft(stats)
      ? [{ ref, copiedId: stats.lastCopiedId, stats, startId: startId(ref) }]
      : [];
  });
  if (asks.length === 0) return out;
  const [nowMs, oldest] = await Promise.all([
    serverNowMs(connections.source),
    oldestUncopied(connections.source, asks, options),
  ]);
  for (const [id, ms] of oldest) out.get(id)!.lagSeconds = Math.max(0, nowMs - ms) / 1000;
  return out;
}

/**
 * Reads the source side of the stats of `refs` (lengths, first and last
 * IDs, the group): the target's fields keep their empty values and
 * `lagSeconds` is 0. `status` reads it alone while the target is down.
 */
export async function readSourceStats(
  source: RedisClient,
  refs: readonly StreamRef[],
  options: ReadStreamStatsOptions,
): Promise<Map<string, StreamStats>> {
  const { group } = options;
  const out = new Map<string, StreamStats>();
  for (const [db, list] of chunksBy(refs, (r) => r.db, CHUNK)) {
    // Two pipelines sent together (one round trip): XINFO STREAM's first and last entries
    // are kept as entries, not split into their fields.
    const [infos, groupLists] = await Promise.all([
      source.pipeline(db, list.map((r) => ["XINFO", "STREAM", r.key]), {
        buffers: true,
        parse: RANGE_REPLY,
      }),
      source.pipeline(db, list.map((r) => ["XINFO", "GROUPS", r.key]), { buffers: true }),
    ]);
    list.forEach((ref, i) => {
      const info = infos[i];
      const groups = groupLists[i];
      const stats = emptyStats();
      let lastGenerated = "0-0";
      let removed = -1;
      if (info.status === "fulfilled") {
        const stream = parseFlatMap(info.value);
        stats.sourceIsStream = groups.status === "fulfilled";
        stats.sourceLength = Number(stream.get("length") ?? 0);
        stats.firstSourceId = entryId(stream.get("first-entry"));
        stats.lastSourceId = entryId(stream.get("last-entry"));
        lastGenerated = text(stream.get("last-generated-id") ?? "0-0");
        const added = stream.get("entries-added");
        if (added !== undefined) removed = Number(added) - stats.sourceLength;
      }
      if (groups.status === "fulfilled" && Array.isArray(groups.value)) {
        for (const g of groups.value) {
          const info = parseFlatMap(g);
          if (text(info.get("name")) !== group) continue;
          stats.groupExists = true;
          stats.pending = Number(info.get("pending") ?? 0);
          stats.lastDeliveredId = text(info.get("last-delivered-id") ?? "");
          const lag = info.get("lag");
          const reported = lag === null || lag === undefined ? null : Number(lag);
          stats.trimmedBeforeCopy = trimmedBeforeCopy(stats, reported, { lastGenerated, removed });
          stats.lag = reported === null
            ? null
            : Math.max(0, reported - (stats.trimmedBeforeCopy ?? 0));
        }
      }
      out.set(ref.id, stats);
    });
  }
  return out;
}

/** Options for {@linkcode readTargetStats}. */
export interface ReadTargetStatsOptions {
  /**
   * Stats (by stream id) whose target fields are filled in; streams not in
   * it get stats of their own (source fields empty), added to it.
   * @default {a new map}
   */
  into?: Map<string, StreamStats>;
}

/**
 * Reads the target side of the stats of `refs` (length, first and last
 * IDs, entries removed, a key of another type) into `options.into`;
 * `lagSeconds` is left as it is. `status` reads it alone while the source
 * is down.
 */
export async function readTargetStats(
  target: RedisClient,
  refs: readonly StreamRef[],
  options: ReadTargetStatsOptions = {},
): Promise<Map<string, StreamStats>> {
  const out = options.into ?? new Map<string, StreamStats>();
  for (const [db, list] of chunksBy(refs, (r) => r.targetDb, CHUNK)) {
    const infos = await target.pipeline(db, list.map((r) => ["XINFO", "STREAM", r.targetKey]), {
      buffers: true,
      parse: RANGE_REPLY,
    });
    list.forEach((ref, i) => {
      let stats = out.get(ref.id);
      if (stats === undefined) out.set(ref.id, stats = emptyStats());
      const info = infos[i];
      if (info.status === "fulfilled") {
        const stream = parseFlatMap(info.value);
        stats.targetLength = Number(stream.get("length") ?? 0);
        stats.lastCopiedId = entryId(stream.get("last-entry"));
        stats.firstTargetId = entryId(stream.get("first-entry"));
        const added = stream.get("entries-added");
        if (added !== undefined) {
          stats.targetRemoved = Math.max(0, Number(added) - stats.targetLength);
          stats.targetRemovedUpTo = text(stream.get("max-deleted-entry-id") ?? "0-0");
        }
      } else {
        // No such key: no target stream yet (length 0, nothing copied).
        stats.targetWrongType = /WRONGTYPE/.test(String((info.reason as Error)?.message));
      }
    });
  }
  return out;
}

/**
 * Entries trimmed before the group delivered them. Redis counts them in the
 * group's lag for ever (entries added minus entries read); when the group
 * has delivered everything, the whole lag is such entries; when it has
 * delivered nothing of what the stream holds now (its last delivered ID is
 * below the first entry), the lag beyond the stream's length is; a stream
 * that never lost an entry (entries-added = length) has none. Otherwise
 * (part way through) it cannot be told without reading the stream: null.
 */
function trimmedBeforeCopy(
  stats: StreamStats,
  lag: number | null,
  stream: { lastGenerated: string; removed: number },
): number | null {
  const { lastGenerated, removed } = stream;
  if (removed === 0) return 0; // the source never lost an entry
  if (lag === null || !stats.lastDeliveredId) return null;
  if (compareIds(stats.lastDeliveredId, lastGenerated) >= 0) return lag;
  if (stats.sourceLength === 0 || compareIds(stats.lastDeliveredId, stats.firstSourceId) < 0) {
    return Math.max(0, lag - stats.sourceLength);
  }
  return null;
}

/** The ID of XINFO STREAM's first-entry / last-entry (an entry, or nil). */
function entryId(entry: unknown): string {
  return entry instanceof RawEntry ? entry.idText() : "";
}

/** Whether `stats` may show entries left to copy (a cheap test before a look at them). */
function anythingLeft(stats: StreamStats): boolean {
  if (!stats.lastSourceId || stats.lastSourceId === stats.lastCopiedId) return false;
  return !(stats.groupExists && stats.lag === 0 && stats.pending === 0);
}

function emptyStats(): StreamStats {
  return {
    sourceLength: 0,
    lastSourceId: "",
    firstSourceId: "",
    sourceIsStream: false,
    groupExists: false,
    pending: 0,
    lag: null,
    trimmedBeforeCopy: null,
    lastDeliveredId: "",
    targetLength: 0,
    lastCopiedId: "",
    targetWrongType: false,
    targetRemoved: 0,
    targetRemovedUpTo: "0-0",
    firstTargetId: "",
    lagSeconds: 0,
  };
}
