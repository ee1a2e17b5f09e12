/**
 * The source stream read directly, whatever its consumer group says: the
 * source is the truth, and entries it still holds can always be copied
 * again with XRANGE (a target that lost entries that were acknowledged).
 *
 * @module
 */
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
 * hold. Its source entry and the group's first pending one in the range are
 * read in one pipeline per DB.
 */
export async function unpendingGaps(
  control: RedisClient,
  ranges: ReadonlyArray<{ stream: ReplicatedStream; from: string; to: string }>,
  options: { group: string },
): Promise<Array<{ stream: ReplicatedStream; from: string; to: string }>> {
  const gaps: Array<{ stream: ReplicatedStream; from: string; to: string }> = [];
  const byDb = new Map<number, typeof ranges[number][]>();
  for (const r of ranges) {
    const list = byDb.get(r.stream.ref.db);
    if (list) list.push(r);
    else byDb.set(r.stream.ref.db, [r]);
  }
  for (const [db, list] of byDb) {
    const replies = await control.pipeline(
      db,
      list.flatMap(({ stream, from, to }) => [
        ["XRANGE", stream.ref.key, `(${from}`, to, "COUNT", "1"],
        ["XPENDING", stream.ref.key, options.group, `(${from}`, to, "1"],
      ]),
      { buffers: true },
    );
    list.forEach((range, i) => {
      const [first, pending] = [replies[2 * i], replies[2 * i + 1]];
      if (first.status === "rejected") throw first.reason;
      if (pending.status === "rejected") throw pending.reason;
      const entry = Array.isArray(first.value) ? first.value[0] : undefined;
      if (!Array.isArray(entry)) return; // nothing in the source there: no gap
      const id = text(entry[0]);
      const head = Array.isArray(pending.value) ? pending.value[0] : undefined;
      if (Array.isArray(head) && text(head[0]) === id) return; // pending: claimed and copied
      gaps.push(range);
    });
  }
  return gaps;
}
