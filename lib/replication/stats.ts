/**
 * Reads how far each stream's copy is: source and target length and last
 * ID, the group's pending count and lag. One pipeline per DB and side, so
 * hundreds of streams cost a few round trips. Used by `status`, by the
 * metrics and by the running service's periodic refresh.
 *
 * @module
 */
import type { RedisConnection } from "../redis/connection.ts";
import { idTime, parseEntries, parseFlatMap, text } from "../redis/replies.ts";
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
  /** Entries not yet delivered to the group (XINFO GROUPS `lag`); null when Redis cannot tell. */
  lag: number | null;
  /** The group's last delivered ID. */
  lastDeliveredId: string;
  /** Entries in the target stream. */
  targetLength: number;
  /** ID of the newest target entry ("" when empty): the last copied one. */
  lastCopiedId: string;
  /** Whether the target key exists and is not a stream. */
  targetWrongType: boolean;
  /** Seconds between the newest source entry and the last copied one (by the time in their IDs). */
  lagSeconds: number;
  /** Entries the running replicator had handled when these stats were read (set by the orchestrator). */
  handledAtRefresh?: number;
}

/** Options for {@linkcode readStreamStats}. */
export interface ReadStreamStatsOptions {
  /** The consumer group whose pending count and lag are read. */
  group: string;
}

/** Reads the stats of `refs`: source side on `source`, target side on `target`. */
export async function readStreamStats(
  connections: { source: RedisConnection; target: RedisConnection },
  refs: readonly StreamRef[],
  options: ReadStreamStatsOptions,
): Promise<Map<string, StreamStats>> {
  const { source, target } = connections;
  const { group } = options;
  const out = new Map<string, StreamStats>();
  for (const [db, list] of groupBy(refs, (r) => r.db)) {
    const results = await source.pipeline(
      db,
      list.flatMap((r) => [
        ["XLEN", r.key],
        ["XINFO", "GROUPS", r.key],
        ["XREVRANGE", r.key, "+", "-", "COUNT", "1"],
        ["XRANGE", r.key, "-", "+", "COUNT", "1"],
      ]),
      { buffers: true },
    );
    list.forEach((ref, i) => {
      const [len, groups, last, first] = results.slice(i * 4, i * 4 + 4);
      const stats = emptyStats();
      stats.sourceIsStream = len.status === "fulfilled" && groups.status === "fulfilled";
      if (len.status === "fulfilled") stats.sourceLength = Number(len.value);
      if (last.status === "fulfilled") {
        stats.lastSourceId = parseEntries(last.value).entries[0]?.id ?? "";
      }
      if (first.status === "fulfilled") {
        stats.firstSourceId = parseEntries(first.value).entries[0]?.id ?? "";
      }
      if (groups.status === "fulfilled" && Array.isArray(groups.value)) {
        for (const g of groups.value) {
          const info = parseFlatMap(g);
          if (text(info.get("name")) !== group) continue;
          stats.groupExists = true;
          stats.pending = Number(info.get("pending") ?? 0);
          const lag = info.get("lag");
          stats.lag = lag === null || lag === undefined ? null : Number(lag);
          stats.lastDeliveredId = text(info.get("last-delivered-id") ?? "");
        }
      }
      out.set(ref.id, stats);
    });
  }
  for (const [db, list] of groupBy(refs, (r) => r.targetDb)) {
    const results = await target.pipeline(
      db,
      list.flatMap((
        r,
      ) => [["XLEN", r.targetKey], ["XREVRANGE", r.targetKey, "+", "-", "COUNT", "1"]]),
      { buffers: true },
    );
    list.forEach((ref, i) => {
      const stats = out.get(ref.id)!;
      const [len, last] = results.slice(i * 2, i * 2 + 2);
      if (len.status === "fulfilled") stats.targetLength = Number(len.value);
      else stats.targetWrongType = /WRONGTYPE/.test(String((len.reason as Error)?.message));
      if (last.status === "fulfilled") {
        stats.lastCopiedId = parseEntries(last.value).entries[0]?.id ?? "";
      }
      stats.lagSeconds = lagSeconds(stats);
    });
  }
  return out;
}

/**
 * Seconds of source data not yet copied, by the millisecond time inside
 * the IDs: newest source entry minus last copied one (or minus the oldest
 * source entry when nothing is copied yet); 0 when nothing is left to copy.
 */
export function lagSeconds(stats: StreamStats): number {
  if (!stats.lastSourceId || stats.lastSourceId === stats.lastCopiedId) return 0;
  if (stats.groupExists && stats.lag === 0 && stats.pending === 0) return 0;
  const from = stats.lastCopiedId || stats.firstSourceId;
  return Math.max(0, (idTime(stats.lastSourceId) - idTime(from)) / 1000);
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
    lastDeliveredId: "",
    targetLength: 0,
    lastCopiedId: "",
    targetWrongType: false,
    lagSeconds: 0,
  };
}

function groupBy<T>(items: readonly T[], key: (item: T) => number): Map<number, T[]> {
  const map = new Map<number, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}
