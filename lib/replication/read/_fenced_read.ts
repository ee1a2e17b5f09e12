/**
 * A reader's commands when leases fence its reads: XREADGROUP inside the
 * FENCED_READ script (the leases are checked and the entries taken in one
 * step on the server), and the wait for new entries with `XREAD COUNT 1
 * BLOCK` from each stream's last delivered ID, which takes nothing: a read
 * left blocked on the server by a paused instance delivers no entry to it.
 * Internal to the reader.
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import {
  parseFlatMap,
  type RedisConnection,
  type RespValue,
  type RespWriter,
  text,
} from "../../redis/mod.ts";
import { FENCED_READ } from "../sharing/_lease_scripts.ts";
import { RefusedRead } from "./_read_replies.ts";
import type { ReadFence } from "./read_hooks.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { streamId } from "../stream/stream_ref.ts";

const encoder = new TextEncoder();
const FENCED_READ_BYTES = encoder.encode(FENCED_READ);

/** What one XREADGROUP needs besides its streams. */
export interface ReadCommandOptions {
  /** Consumer group. */
  group: string;
  /** Consumer name. */
  consumer: string;
  /** COUNT per stream. */
  count: number;
}

/**
 * Encodes `EVAL FENCED_READ 2n lease1..leaseN key1..keyN group consumer
 * count value1..valueN id1..idN` (`>` or the stream's history ID).
 */
export function encodeFencedRead(
  w: RespWriter,
  streams: readonly ReplicatedStream[],
  options: ReadCommandOptions & { fence: ReadFence },
): void {
  const { fence, group, consumer, count } = options;
  const n = streams.length;
  w.arrayHeader(6 + 4 * n);
  w.bulk("EVAL");
  w.bulk(FENCED_READ_BYTES);
  w.bulkInteger(2 * n);
  for (const s of streams) w.bulk(fence.keyOf(s.ref));
  for (const s of streams) w.bulk(s.ref.key);
  w.bulk(group);
  w.bulk(consumer);
  w.bulkInteger(count);
  for (const s of streams) w.bulk(fence.valueOf(s.ref));
  for (const s of streams) w.bulk(s.history ?? ">");
}

/**
 * The streams of one fenced read whose lease is lost, from its
 * `LEASELOST i,j` error; undefined for any other reply.
 */
export function lostLeases(
  reply: RespValue,
  streams: readonly ReplicatedStream[],
): ReplicatedStream[] | undefined {
  if (!(reply instanceof RedisReplyError) || reply.code !== "LEASELOST") return undefined;
  const positions = reply.message.slice("LEASELOST".length).trim().split(",");
  const lost = positions.map(Number).filter((i) =>
    Number.isInteger(i) && i >= 0 && i < streams.length
  )
    .map((i) => streams[i]);
  return lost.length > 0 ? lost : [...streams];
}

/** Encodes `XREAD COUNT 1 BLOCK ms STREAMS key1..keyN last1..lastN`. */
export function encodeWait(
  w: RespWriter,
  streams: readonly ReplicatedStream[],
  blockMs: number,
): void {
  w.arrayHeader(6 + 2 * streams.length);
  w.bulk("XREAD");
  w.bulk("COUNT");
  w.bulk("1");
  w.bulk("BLOCK");
  w.bulkInteger(blockMs);
  w.bulk("STREAMS");
  for (const s of streams) w.bulk(s.ref.key);
  for (const s of streams) w.bulk(s.lastDelivered ?? "$");
}

/**
 * Marks the streams an XREAD reply names as having entries to read (hot);
 * the reply's entries themselves are not used.
 */
export function markWoken(
  reply: RespValue,
  options: { db: number; byId: ReadonlyMap<string, ReplicatedStream> },
): void {
  if (!Array.isArray(reply)) return;
  for (const item of reply) {
    if (!Array.isArray(item) || !(item[0] instanceof Uint8Array)) continue;
    const stream = options.byId.get(streamId(options.db, item[0]));
    if (stream) stream.hot = true;
  }
}

/**
 * Loads the group's last delivered ID of `streams` (XINFO GROUPS, one
 * pipeline); streams whose group or key is gone keep none (their next
 * fenced read tells).
 */
export async function loadLastDelivered(
  conn: RedisConnection,
  db: number,
  options: { streams: readonly ReplicatedStream[]; group: string },
): Promise<void> {
  const { streams, group } = options;
  const replies = await conn.pipeline(db, streams.map((s) => ["XINFO", "GROUPS", s.ref.key]));
  replies.forEach((r, i) => {
    if (r.status !== "fulfilled" || !Array.isArray(r.value)) return;
    for (const g of r.value) {
      const info = parseFlatMap(g);
      if (text(info.get("name")) === group) {
        streams[i].lastDelivered = text(info.get("last-delivered-id"));
      }
    }
  });
}

/**
 * Waits with XREAD (taking nothing) for entries of `streams` after their
 * last delivered IDs (loaded first where unknown), and marks those that
 * have some as hot. The streams count as read in flight meanwhile.
 */
export async function waitForEntries(
  conn: RedisConnection,
  db: number,
  options: {
    streams: readonly ReplicatedStream[];
    blockMs: number;
    group: string;
    byId: ReadonlyMap<string, ReplicatedStream>;
    idle: (stream: ReplicatedStream) => void;
    /** Called right before the XREAD is sent. */
    blocking: () => void;
  },
): Promise<void> {
  const { streams, blockMs, group, byId, idle } = options;
  const unknown = streams.filter((s) => s.lastDelivered === undefined);
  if (unknown.length > 0) await loadLastDelivered(conn, db, { streams: unknown, group });
  for (const s of streams) s.readsInFlight++;
  try {
    options.blocking();
    const [reply] = await conn.batch(db, 1, (w) => encodeWait(w, streams, blockMs), {
      buffers: true,
      blockMs,
      name: "XREAD",
    });
    if (reply instanceof RedisReplyError) throw new RefusedRead(reply, [...streams]);
    markWoken(reply, { db, byId });
  } finally {
    for (const s of streams) if (--s.readsInFlight === 0) idle(s);
  }
}
