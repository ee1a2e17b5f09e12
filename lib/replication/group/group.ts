/**
 * The consumer group on the source: created for many streams in one
 * pipeline, its pending entries taken over (XAUTOCLAIM) on start and when a
 * loss is suspected, its dead consumers removed, and what is still pending
 * checked at the end of `run --once`. Everything for many streams at once
 * is pipelined.
 *
 * @module
 */
import { LeaseLostError, RedisReplyError, StreamGoneError } from "../../errors.ts";
import {
  CLAIM_REPLY,
  FENCED_CLAIM_REPLY,
  parseFencedClaim,
  parseFlatMap,
  parseRawAutoClaim,
  type RawEntries,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import { chunksBy, groupBy } from "../_group_by.ts";
import { FENCED_CLAIM, FENCED_DELCONSUMER } from "../sharing/_lease_scripts.ts";
import type { ReadFence } from "../sharing/read_fence.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

/** Streams per pipeline when many are asked about at once. */
const CHUNK = 1000;

/** Options for {@linkcode ensureGroups}. */
export interface EnsureGroupsOptions {
  /** Consumer group name. */
  group: string;
  /** Create the group where missing (STREAM_AUTO_CREATE_CONSUMER_GROUPS). */
  autoCreate: boolean;
  /** Where a new group starts, per stream ("0", "$" or an ID). */
  startId: (stream: ReplicatedStream) => string;
}

/** What {@linkcode ensureGroups} found for each stream. */
export interface EnsureGroupsResult {
  /** Streams whose group was created now. */
  created: ReplicatedStream[];
  /** Streams without the group (and not allowed to create it): skipped. */
  skipped: ReplicatedStream[];
  /** Streams that do not exist or are not streams. */
  gone: Map<ReplicatedStream, StreamGoneError>;
}

/** Makes sure each stream has the consumer group (one pipeline per DB and chunk). */
export async function ensureGroups(
  conn: RedisClient,
  streams: readonly ReplicatedStream[],
  options: EnsureGroupsOptions,
): Promise<EnsureGroupsResult> {
  const { group, autoCreate, startId } = options;
  const result: EnsureGroupsResult = { created: [], skipped: [], gone: new Map() };
  for (const [db, chunk] of chunks(streams, (s) => s.ref.db)) {
    const replies = await conn.pipeline(
      db,
      chunk.map((s) =>
        autoCreate
          ? ["XGROUP", "CREATE", s.ref.key, group, startId(s)]
          : ["XINFO", "GROUPS", s.ref.key]
      ),
    );
    chunk.forEach((s, i) => {
      const r = replies[i];
      if (r.status === "fulfilled") {
        if (autoCreate) result.created.push(s);
        else if (!hasGroup(r.value, group)) result.skipped.push(s);
        return;
      }
      const error = r.reason;
      if (!(error instanceof RedisReplyError)) throw error;
      if (error.code === "BUSYGROUP") return;
      if (/requires the key to exist|no such key/i.test(error.message)) {
        result.gone.set(
          s,
          new StreamGoneError(`Stream ${s.ref.label} does not exist`, { cause: error }),
        );
      } else if (error.code === "WRONGTYPE") {
        result.gone.set(
          s,
          new StreamGoneError(`Key ${s.ref.label} is not a stream`, { cause: error }),
        );
      } else {
        throw error;
      }
    });
  }
  return result;
}

function hasGroup(reply: unknown, group: string): boolean {
  return Array.isArray(reply) && reply.some((g) => text(parseFlatMap(g).get("name")) === group);
}

/** Options for {@linkcode claimPending}. */
export interface ClaimOptions {
  /** Consumer group name. */
  group: string;
  /** This process's consumer name (the claimer). */
  consumer: string;
  /** Entries per XAUTOCLAIM. */
  count: number;
  /**
   * With leases: the claim runs only while this instance holds the lease.
   * @default {undefined}
   */
  fence?: ReadFence;
}

/**
 * One XAUTOCLAIM step: takes over up to `count` pending entries of the
 * group (any consumer's) from `cursor` on. NOGROUP, WRONGTYPE or a missing
 * key become {@linkcode StreamGoneError}.
 */
export async function claimPending(
  conn: RedisClient,
  stream: ReplicatedStream,
  options: ClaimOptions & { cursor: string },
): Promise<{ cursor: string } & RawEntries> {
  const { group, consumer, count, cursor, fence } = options;
  const args = fence
    ? [
      "EVAL",
      FENCED_CLAIM,
      "2",
      fence.keyOf(stream.ref),
      stream.ref.key,
      fence.valueOf(stream.ref),
      group,
      consumer,
      cursor,
      String(count),
    ]
    : ["XAUTOCLAIM", stream.ref.key, group, consumer, "0", cursor, "COUNT", String(count)];
  try {
    const reply = await conn.send(stream.ref.db, args, {
      buffers: true,
      parse: fence ? FENCED_CLAIM_REPLY : CLAIM_REPLY,
      name: "XAUTOCLAIM",
    });
    return fence ? parseFencedClaim(reply) : parseRawAutoClaim(reply);
  } catch (error) {
    if (error instanceof RedisReplyError && error.code === "LEASELOST") {
      throw new LeaseLostError(`The lease of ${stream.ref.label} is held by another instance`, {
        cause: error,
      });
    }
    throw goneOr(stream, error);
  }
}

/** One consumer of a group, as XINFO CONSUMERS tells. */
export interface ConsumerInfo {
  /** Its name. */
  name: string;
  /** Entries pending for it. */
  pending: number;
  /** Milliseconds since it last read. */
  idle: number;
}

/**
 * The consumers of each stream's group (one pipeline per DB and chunk);
 * a stream whose group or key is gone gets a {@linkcode StreamGoneError}.
 */
export async function readConsumers(
  conn: RedisClient,
  streams: readonly ReplicatedStream[],
  options: { group: string },
): Promise<Map<ReplicatedStream, ConsumerInfo[] | Error>> {
  const out = new Map<ReplicatedStream, ConsumerInfo[] | Error>();
  for (const [db, chunk] of chunks(streams, (s) => s.ref.db)) {
    const replies = await conn.pipeline(
      db,
      chunk.map((s) => ["XINFO", "CONSUMERS", s.ref.key, options.group]),
    );
    chunk.forEach((s, i) => {
      const r = replies[i];
      if (r.status === "rejected") {
        out.set(s, goneOr(s, r.reason) as Error);
        return;
      }
      const list = Array.isArray(r.value) ? r.value : [];
      out.set(
        s,
        list.map((item) => {
          const info = parseFlatMap(item);
          return {
            name: text(info.get("name")),
            pending: Number(info.get("pending") ?? 0),
            idle: Number(info.get("idle") ?? 0),
          };
        }),
      );
    });
  }
  return out;
}

/**
 * Removes consumers (name per stream) from the group, in one pipeline per
 * DB; the replies in order. With a fence, only while the lease is held and
 * the consumer has nothing pending (checked in the same script: a removed
 * consumer's pending entries would be lost).
 */
export async function removeConsumers(
  conn: RedisClient,
  removals: ReadonlyArray<{ stream: ReplicatedStream; name: string }>,
  options: { group: string; fence?: ReadFence },
): Promise<PromiseSettledResult<unknown>[]> {
  const { group, fence } = options;
  const out: PromiseSettledResult<unknown>[] = [];
  for (const [db, list] of groupBy(removals, (r) => r.stream.ref.db)) {
    out.push(
      ...await conn.pipeline(
        db,
        list.map(({ stream: { ref }, name }) =>
          fence
            ? [
              "EVAL",
              FENCED_DELCONSUMER,
              "2",
              fence.keyOf(ref),
              ref.key,
              fence.valueOf(ref),
              group,
              name,
            ]
            : ["XGROUP", "DELCONSUMER", ref.key, group, name]
        ),
      ),
    );
  }
  return out;
}

/**
 * The last generated ID and the length of each of `streams` on the source
 * (XINFO STREAM, pipelined per DB): an ID that only grows, unless the
 * stream was deleted and recreated. A failed reply is its error.
 */
export async function sourceEnds(
  conn: RedisClient,
  streams: readonly ReplicatedStream[],
): Promise<Map<ReplicatedStream, { lastGenerated: string; length: number } | Error>> {
  const out = new Map<ReplicatedStream, { lastGenerated: string; length: number } | Error>();
  for (const [db, chunk] of chunks(streams, (s) => s.ref.db)) {
    const replies = await conn.pipeline(db, chunk.map((s) => ["XINFO", "STREAM", s.ref.key]));
    chunk.forEach((s, i) => {
      const r = replies[i];
      if (r.status === "rejected") {
        out.set(s, goneOr(s, r.reason) as Error);
        return;
      }
      const info = parseFlatMap(r.value);
      out.set(s, {
        lastGenerated: text(info.get("last-generated-id") ?? "0-0"),
        length: Number(info.get("length") ?? 0),
      });
    });
  }
  return out;
}

/** Where a consumer group stands on a stream. */
export interface GroupPosition {
  /** Its last delivered ID ("0-0" when the group is not there). */
  delivered: string;
  /** Its consumers (0: nobody ever read through it, or they were all removed). */
  consumers: number;
  /**
   * Entries of the stream it has not delivered yet (Redis 7 `lag`);
   * undefined when the group is not there or the server cannot tell.
   */
  lag?: number;
}

/**
 * Where `group` stands on each of `streams` (XINFO GROUPS, pipelined per
 * DB). A failed reply is its error.
 */
export async function groupPositions(
  conn: RedisClient,
  streams: readonly ReplicatedStream[],
  options: { group: string },
): Promise<Map<ReplicatedStream, GroupPosition | Error>> {
  const out = new Map<ReplicatedStream, GroupPosition | Error>();
  for (const [db, chunk] of chunks(streams, (s) => s.ref.db)) {
    const replies = await conn.pipeline(db, chunk.map((s) => ["XINFO", "GROUPS", s.ref.key]));
    chunk.forEach((s, i) => {
      const r = replies[i];
      if (r.status === "rejected") {
        out.set(s, goneOr(s, r.reason) as Error);
        return;
      }
      const mine = (Array.isArray(r.value) ? r.value : []).map(parseFlatMap)
        .find((g) => text(g.get("name")) === options.group);
      const lag = mine?.get("lag");
      out.set(s, {
        delivered: text(mine?.get("last-delivered-id") ?? "0-0"),
        consumers: Number(mine?.get("consumers") ?? 0),
        ...(typeof lag === "number" ? { lag } : {}),
      });
    });
  }
  return out;
}

/**
 * NOGROUP, WRONGTYPE and "no such key" mean the stream (or its group) is
 * gone: a {@linkcode StreamGoneError}; anything else is returned as is.
 */
export function goneOr(stream: ReplicatedStream, error: unknown): unknown {
  if (
    error instanceof RedisReplyError &&
    (error.code === "NOGROUP" || error.code === "WRONGTYPE" || /no such key/i.test(error.message))
  ) {
    return new StreamGoneError(`Stream ${stream.ref.label} is gone: ${error.message}`, {
      cause: error,
    });
  }
  return error;
}

function chunks(
  streams: readonly ReplicatedStream[],
  key: (s: ReplicatedStream) => number,
): Array<[number, ReplicatedStream[]]> {
  return chunksBy(streams, key, CHUNK);
}
