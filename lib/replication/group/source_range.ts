/**
 * The source stream read directly, whatever its consumer group says: the
 * source is the truth, and entries it still holds can always be copied
 * again with XRANGE (a target that lost entries that were acknowledged).
 *
 * @module
 */
import { groupBy } from "../_group_by.ts";
import { RedisReplyError } from "../../errors.ts";
import {
  parseFlatMap,
  parseRawEntries,
  RANGE_REPLY,
  type RawEntries,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";

/** The source entries after `after` up to `to` (an ID or "+"), `count` at most, in ID order. */
export async function readSourceRange(
  control: RedisClient,
  ref: StreamRef,
  options: { after: string; to: string; count: number },
): Promise<RawEntries> {
  const reply = await control.send(
    ref.db,
    ["XRANGE", ref.key, `(${options.after}`, options.to, "COUNT", String(options.count)],
    { buffers: true, parse: RANGE_REPLY, name: "XRANGE" },
  );
  return parseRawEntries(reply);
}

/**
 * The highest ID the source stream ever removed (trimmed or deleted), from
 * XINFO STREAM's `max-deleted-entry-id` (Redis >= 7); undefined when it
 * cannot be told (Redis 6.2, no stream).
 */
export async function highestRemoved(
  control: RedisClient,
  ref: StreamRef,
): Promise<string | undefined> {
  try {
    const info = parseFlatMap(await control.send(ref.db, ["XINFO", "STREAM", ref.key]));
    const id = info.get("max-deleted-entry-id");
    return id === undefined ? undefined : text(id);
  } catch (error) {
    if (error instanceof RedisReplyError) return undefined;
    throw error;
  }
}

/**
 * Of `ranges`, those whose first source entry after `from` (up to `to`) is
 * not pending in the group: an entry the group delivered and saw acked (or
 * never delivered, moved past by `XGROUP SETID`) that the target does not
 * hold. The source entries are read in one pipeline per DB, then whether
 * each of them is pending in another (pending entries deleted from the
 * source since lie below them and say nothing).
 */
export async function unpendingGaps(
  control: RedisClient,
  ranges: ReadonlyArray<{ stream: ReplicatedStream; from: string; to: string }>,
  options: { group: string },
): Promise<Array<{ stream: ReplicatedStream; from: string; to: string }>> {
  const gaps: Array<{ stream: ReplicatedStream; from: string; to: string }> = [];
  for (const [db, list] of groupBy(ranges, (r) => r.stream.ref.db)) {
    const firsts = await control.pipeline(
      db,
      list.map(({ stream, from, to }) => ["XRANGE", stream.ref.key, `(${from}`, to, "COUNT", "1"]),
      { buffers: true },
    );
    const found: Array<{ range: typeof list[number]; id: string }> = [];
    list.forEach((range, i) => {
      const first = firsts[i];
      if (first.status === "rejected") throw first.reason;
      const entry = Array.isArray(first.value) ? first.value[0] : undefined;
      if (Array.isArray(entry)) found.push({ range, id: text(entry[0]) });
      // Nothing in the source there: no gap.
    });
    if (found.length === 0) continue;
    const pending = await control.pipeline(
      db,
      found.map(({ range, id }) => ["XPENDING", range.stream.ref.key, options.group, id, id, "1"]),
      { buffers: true },
    );
    found.forEach(({ range }, i) => {
      const r = pending[i];
      if (r.status === "rejected") throw r.reason;
      // Pending: claimed and copied in order.
      if (!(Array.isArray(r.value) && r.value.length > 0)) gaps.push(range);
    });
  }
  return gaps;
}
