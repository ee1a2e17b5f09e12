/**
 * What is pending in a stream's consumer group (XPENDING): how many entries
 * (for the start and the end of `run --once`), and which IDs above the
 * target's top (the check of a write after a read whose reply was lost).
 *
 * @module
 */
import { compareIds, type RedisClient, text } from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { goneOr } from "./group.ts";

/** Streams per pipeline. */
const CHUNK = 1000;

/**
 * Entries pending in each stream's group (XPENDING summary), one pipeline
 * per DB and chunk; with `consumer`, those pending for that consumer only
 * (a name, or the consumers a test accepts).
 */
export async function pendingCounts<T extends { readonly ref: StreamRef }>(
  conn: RedisClient,
  streams: readonly T[],
  options: { group: string; consumer?: string | ((name: string) => boolean) },
): Promise<Map<T, number | Error>> {
  const out = new Map<T, number | Error>();
  for (const [db, chunk] of chunksBy(streams, (s) => s.ref.db, CHUNK)) {
    const replies = await conn.pipeline(
      db,
      chunk.map((s) => ["XPENDING", s.ref.key, options.group]),
    );
    chunk.forEach((s, i) => {
      const r = replies[i];
      out.set(
        s,
        r.status === "rejected"
          ? r.reason as Error
          : !Array.isArray(r.value)
          ? 0
          : options.consumer === undefined
          ? Number(r.value[0])
          : consumerCount(r.value[3], options.consumer),
      );
    });
  }
  return out;
}

/** The count of `consumer` (or of the consumers it accepts) in an XPENDING summary's list. */
function consumerCount(list: unknown, consumer: string | ((name: string) => boolean)): number {
  if (!Array.isArray(list)) return 0;
  const counted = typeof consumer === "string" ? (name: string) => name === consumer : consumer;
  let n = 0;
  for (const item of list) {
    if (Array.isArray(item) && counted(text(item[0]))) n += Number(item[1]);
  }
  return n;
}

/**
 * Whether an entry pending for `consumer` above the target's top, up to the
 * batch's highest ID, is not one of the batch's `ids`: delivered by a read
 * whose reply was lost, it would be left as a hole below the batch.
 */
export async function pendingBeside(
  conn: RedisClient,
  stream: ReplicatedStream,
  batch: { highest: string; ids: ReadonlySet<string> },
  options: { group: string; consumer: string },
): Promise<boolean> {
  const pending = await pendingUpTo(conn, stream, {
    ...options,
    from: stream.targetTop,
    to: batch.highest,
    count: batch.ids.size + 2,
  });
  return pending.some((id) => compareIds(id, stream.targetTop) > 0 && !batch.ids.has(id));
}

/**
 * The IDs of the entries of `stream` pending for `consumer` from `from` to
 * `to` (inclusive), `count` at most: one that a write does not carry means
 * a stale read delivered an entry nobody received.
 */
export async function pendingUpTo(
  conn: RedisClient,
  stream: ReplicatedStream,
  options: { group: string; consumer: string; from: string; to: string; count: number },
): Promise<string[]> {
  const { group, consumer, from, to, count } = options;
  try {
    const reply = await conn.send(stream.ref.db, [
      "XPENDING",
      stream.ref.key,
      group,
      from,
      to,
      String(count),
      consumer,
    ]);
    return Array.isArray(reply) ? reply.map((item) => text((item as unknown[])[0])) : [];
  } catch (error) {
    throw goneOr(stream, error);
  }
}
