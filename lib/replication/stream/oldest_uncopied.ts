/**
 * The age of a stream's copy, as an operator means it: how old the oldest
 * source entry not yet on the target is, by the source's clock. The one
 * definition of `status`'s `LAG S` and of the `lag_seconds` metric.
 *
 * @module
 */
import {
  compareIds,
  idTime,
  parseRawEntries,
  RANGE_REPLY,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import type { StreamStats } from "./stats.ts";
import type { StreamRef } from "./stream_ref.ts";

/** One stream to look at. */
export interface UncopiedAsk {
  /** The stream. */
  ref: StreamRef;
  /** The last entry copied ("" when the target holds none). */
  copiedId: string;
  /** Its stats (the source side: last ID, group, pending). */
  stats: StreamStats;
  /** STREAM_START_ID for this stream ("0", "$" or an ID). */
  startId: string;
}

/** Options for {@linkcode oldestUncopied}. */
export interface OldestUncopiedOptions {
  /** The consumer group (STREAM_CONSUMER_GROUP). */
  group: string;
}

/** Streams per pipeline. */
const CHUNK = 1000;

/**
 * The millisecond time (from its ID) of the oldest source entry above each
 * stream's copied ID, by stream id; streams with nothing to copy are left
 * out. Not counted: entries at or below an explicit STREAM_START_ID, and
 * with STREAM_START_ID=$ and an empty target, entries older than what the
 * group has to deliver (its pending ones and those after its last
 * delivered ID; none without a group). One `XRANGE ... COUNT 1` per stream
 * (and an `XPENDING` summary for the `$` case), pipelined.
 */
export async function oldestUncopied(
  source: RedisClient,
  asks: readonly UncopiedAsk[],
  options: OldestUncopiedOptions,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const reads: Array<{ ref: StreamRef; from: string; pending: boolean }> = [];
  for (const { ref, copiedId: copied, stats: s, startId } of asks) {
    if (s.lastSourceId === "") continue;
    if (copied === "" && startId === "$") {
      if (!s.groupExists) continue;
      reads.push({ ref, from: `(${s.lastDeliveredId || "0-0"}`, pending: s.pending > 0 });
      continue;
    }
    if (copied !== "" && compareIds(copied, s.lastSourceId) >= 0) continue;
    let from = copied === "" ? "-" : `(${copied}`;
    const start = /^\d+(-\d+)?$/.test(startId) ? startId : "";
    if (start !== "" && (copied === "" || compareIds(start, copied) > 0)) from = `(${start}`;
    reads.push({ ref, from, pending: false });
  }
  for (const [db, list] of chunksBy(reads, (a) => a.ref.db, CHUNK)) {
    const replies = await source.pipeline(
      db,
      list.map((a) => ["XRANGE", a.ref.key, a.from, "+", "COUNT", "1"]),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((a, i) => {
      const r = replies[i];
      const first = r.status === "fulfilled" ? parseRawEntries(r.value).entries[0] : undefined;
      if (first) out.set(a.ref.id, idTime(first.idText()));
    });
    // Delivered and not acked (STREAM_START_ID=$, nothing on the target yet): the oldest
    // pending entry (XPENDING's summary), when it is older.
    const pending = list.filter((a) => a.pending);
    if (pending.length === 0) continue;
    const summaries = await source.pipeline(
      db,
      pending.map((a) => ["XPENDING", a.ref.key, options.group]),
    );
    pending.forEach((a, i) => {
      const r = summaries[i];
      const min = r.status === "fulfilled" && Array.isArray(r.value) ? r.value[1] : null;
      if (min == null) return;
      const ms = idTime(text(min));
      out.set(a.ref.id, Math.min(ms, out.get(a.ref.id) ?? ms));
    });
  }
  return out;
}

/** The source's clock (TIME), in milliseconds. */
export async function serverNowMs(client: RedisClient): Promise<number> {
  const time = await client.send(undefined, ["TIME"]);
  const [seconds, micros] = (time as unknown[]).map((v) => Number(text(v)));
  return seconds * 1000 + Math.floor(micros / 1000);
}
