/**
 * The proof that a write continues the target stream without a hole: its
 * first entry is the one right after what the target holds (same
 * millisecond, next sequence number: nothing can lie between), or the
 * source holds no entry between the two; and the same at each place inside
 * the write where one read's entries follow another's. A consumer group moved past
 * entries (XGROUP SETID by someone else), a read whose reply was lost, or
 * any other way entries were passed by is found here, before the write,
 * whatever the reader: a write above a hole could never be undone. A
 * fenced read's own look below its first entry is not taken as proof: the
 * stream's last ID can go down between the read and the write (XSETID, a
 * stream deleted and made again), and an entry be added in between.
 * Internal to the writer.
 *
 * @module
 */
import {
  compareIds,
  parseRawEntries,
  RANGE_REPLY,
  type RawEntry,
  type RedisClient,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { groupBy } from "../_group_by.ts";

/** Whether `next` is the ID right after `prev`: the same millisecond, the next sequence number. */
export function followsDirectly(prev: string, next: string): boolean {
  const p = prev.indexOf("-");
  const n = next.indexOf("-");
  if (p < 0 || n < 0 || prev.slice(0, p) !== next.slice(0, n)) return false;
  const a = prev.slice(p + 1);
  const b = next.slice(n + 1);
  if (a.length < 16 && b.length < 16) return Number(a) + 1 === Number(b);
  return BigInt(a) + 1n === BigInt(b);
}

/**
 * What a write of `entries` of `stream` must prove: that its first entry
 * follows what the target holds (the target's top, or where the group
 * stood when the stream started here, whichever is higher: a group made at
 * "$" passed older entries on purpose), and that each entry that came in
 * another read than the one before it (`stream.seams`) follows that one.
 * Entries directly after another (same millisecond, next sequence) need no
 * proof, nor entries at or below that floor (re-deliveries, claims).
 */
export function continuityChecks(
  stream: ReplicatedStream,
  entries: readonly RawEntry[],
): ContinuityCheck[] {
  const top = stream.targetTop;
  const floor = stream.startDelivered;
  const start = floor !== undefined && compareIds(floor, top) > 0 ? floor : top;
  const checks: ContinuityCheck[] = [];
  for (let i = 0; i < entries.length; i++) {
    // Only where a read begins (a WeakSet lookup): the hot path reads no other ID.
    if (i > 0 && !stream.seams.has(entries[i])) continue;
    const id = entries[i].idText();
    let after = start;
    if (i > 0) {
      const prev = entries[i - 1].idText();
      if (compareIds(prev, start) > 0) after = prev;
    }
    if (compareIds(id, after) > 0 && !followsDirectly(after, id)) {
      checks.push({ stream, after, first: id });
    }
  }
  return checks;
}

/** One write to prove: its stream, the entry it must follow, its first entry's ID. */
export interface ContinuityCheck {
  /** The stream written. */
  stream: ReplicatedStream;
  /** The entry the write must follow. */
  after: string;
  /** The first ID of the write. */
  first: string;
}

/**
 * Asks the source, for each check (one pipeline per source DB), for the
 * last entry between `after` and `first` (both excluded). Returns, per
 * check found passing entries by, the highest of them; a check with none
 * is proven.
 */
export async function passedEntries(
  source: RedisClient,
  checks: readonly ContinuityCheck[],
): Promise<Map<ContinuityCheck, string>> {
  const passed = new Map<ContinuityCheck, string>();
  for (const [db, list] of groupBy(checks, (c) => c.stream.ref.db)) {
    const replies = await source.pipeline(
      db,
      list.map((c) => ["XREVRANGE", c.stream.ref.key, `(${c.first}`, `(${c.after}`, "COUNT", "1"]),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((c, i) => {
      const r = replies[i];
      // A check that failed proves nothing: the caller retries the write.
      if (r.status === "rejected") throw r.reason;
      const last = parseRawEntries(r.value).entries[0];
      if (last !== undefined) passed.set(c, last.idText());
    });
  }
  return passed;
}
