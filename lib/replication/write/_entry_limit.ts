/**
 * The largest field name or value the target takes: its `proto-max-bulk-len`
 * (Redis answers a longer bulk string with `ERR Protocol error: invalid bulk
 * length` and closes the connection, so the whole pipeline is lost, and again
 * at every retry). Read with `CONFIG GET` when the writer starts and after
 * every reconnect of the target (a cluster: the smallest of its masters');
 * a user that may not read it: Redis's default, 512 MB. An entry above it
 * stops its stream ({@linkcode EntryTooLargeError}) before anything of it is
 * sent; an entry the target refused all the same (the limit was lowered
 * since it was read, or could not be read) is found by the place of the
 * protocol error among the replies. Internal to the writer.
 *
 * @module
 */
import {
  EntryTooLargeError,
  errorMessage,
  RedisReplyError,
  ServerProtocolError,
} from "../../errors.ts";
import { getLog } from "../../log.ts";
import {
  entryId,
  type RawEntry,
  type RedisClient,
  type ServerPool,
  writeReplies,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { Write } from "./_write_pipeline.ts";

const log = getLog("replicator");

/** Redis's default `proto-max-bulk-len`: 512 MB. */
export const DEFAULT_BULK_LIMIT = 512 * 1024 * 1024;

/** The target's `proto-max-bulk-len`, read again after each reconnect of the target. */
export class TargetBulkLimit {
  readonly #pool: ServerPool;
  readonly #generation: () => number;
  #value: number | undefined;
  /** The target's connection generation the value was read at. */
  #readAt = -1;
  #reading: Promise<number> | undefined;

  constructor(pool: ServerPool, generation: () => number) {
    this.#pool = pool;
    this.#generation = generation;
  }

  /**
   * The limit, when it was read since the target's connections last changed;
   * else undefined, and it is read (on `db`): `then` is called once it is.
   */
  known(db: number, then: () => void): number | undefined {
    if (this.#value !== undefined && this.#readAt === this.#generation()) return this.#value;
    this.read(db).then(then);
    return undefined;
  }

  /**
   * Reads the limit now (one read at a time). Never rejects: a server that
   * cannot be asked leaves the last value known (at first, the default).
   */
  read(db: number): Promise<number> {
    return this.#reading ??= this.#read(db).finally(() => this.#reading = undefined);
  }

  async #read(db: number): Promise<number> {
    let generation = this.#generation();
    let limit = Infinity;
    try {
      const masters = await this.#pool.client(db).masters();
      const replies = await Promise.all(masters.map(readLimit));
      for (const r of replies) limit = Math.min(limit, r);
    } catch (error) {
      // Not reached (the target is down, or the read timed out and closed its connection):
      // written with what was known (the writes fail and back off, or go), read again at the
      // next reconnect, not at once (writes never waiting for ever on a read that fails).
      generation = this.#generation();
      log.debug("The target's proto-max-bulk-len could not be read: {error}", {
        error: errorMessage(error),
      });
    }
    this.#value = Number.isFinite(limit) ? limit : this.#value ?? DEFAULT_BULK_LIMIT;
    this.#readAt = generation;
    return this.#value;
  }
}

/** One server's `proto-max-bulk-len`; refused (no permission, no CONFIG): the default. */
async function readLimit(conn: Pick<RedisClient, "send" | "where">): Promise<number> {
  let reply: unknown;
  try {
    reply = await conn.send(undefined, ["CONFIG", "GET", "proto-max-bulk-len"]);
  } catch (error) {
    if (!(error instanceof RedisReplyError)) throw error; // a lost connection: not known
    return assumeDefault(conn.where, errorMessage(error));
  }
  const value = Array.isArray(reply) ? Number(String(reply[1])) : NaN;
  if (Number.isSafeInteger(value) && value > 0) return value;
  return assumeDefault(conn.where, `CONFIG GET answered ${JSON.stringify(reply)}`);
}

function assumeDefault(where: string, why: string): number {
  log.debug(
    "The proto-max-bulk-len of {where} cannot be read ({why}): entries are checked against Redis's default, {limit} bytes",
    { where, why, limit: bytes(DEFAULT_BULK_LIMIT) },
  );
  return DEFAULT_BULK_LIMIT;
}

/** What of an entry is largest: a field name, a value, or the key. */
interface Part {
  what: "field name" | "value" | "key";
  size: number;
}

/** The largest part of `entry` (its key included). */
function largestPart(entry: RawEntry, key: Uint8Array): Part {
  let found: Part = { what: "key", size: key.length };
  entry.items().forEach((item, i) => {
    if (item.length > found.size) {
      found = { what: i % 2 === 0 ? "field name" : "value", size: item.length };
    }
  });
  return found;
}

/** The largest part of `entry` (or the key) when it is above `limit`. */
function oversize(entry: RawEntry, key: Uint8Array, limit: number): Part | undefined {
  // The RESP encoding of the fields and values holds each of them: most entries stop here.
  if (entry.size <= limit && key.length <= limit) return undefined;
  const found = largestPart(entry, key);
  return found.size > limit ? found : undefined;
}

/** `n` with thousands separators. */
function bytes(n: number): string {
  return n.toLocaleString("en-US");
}

/** The error of an entry that cannot be written; `refused`: the target's reply to it. */
function tooLarge(
  stream: ReplicatedStream,
  entry: RawEntry,
  found: Part,
  limit: { value?: number; refused?: RedisReplyError },
): EntryTooLargeError {
  const ref = stream.ref;
  const id = entryId(entry);
  const part = found.what === "key"
    ? `has a key (${ref.targetLabel}) of ${bytes(found.size)} bytes`
    : `has a ${found.what} of ${bytes(found.size)} bytes`;
  const above = limit.refused
    ? `, which the target refused ("${limit.refused.message}", closing the connection): above its proto-max-bulk-len`
    : `, above the target's proto-max-bulk-len (${bytes(limit.value ?? 0)})`;
  const mb = Math.ceil(found.size / (1024 * 1024));
  return new EntryTooLargeError(
    `Entry ${id} of stream "${ref.label}" ${part}${above}: it cannot be written; raise proto-max-bulk-len on the target (CONFIG SET proto-max-bulk-len ${mb}mb, and in its configuration file). Nothing from this entry on is acknowledged (the source keeps it); the stream is tried again at each discovery pass`,
    { id, size: found.size, limit: limit.value, cause: limit.refused },
  );
}

/**
 * The first of `entries` (of `stream`) that cannot be written under
 * `limit`: undefined when there is none; else where it is in `entries` and
 * the error that stops its stream.
 */
export function firstTooLarge(
  stream: ReplicatedStream,
  entries: readonly RawEntry[],
  limit: number,
): { at: number; error: EntryTooLargeError } | undefined {
  const key = stream.ref.targetKey;
  for (let i = 0; i < entries.length; i++) {
    const found = oversize(entries[i], key, limit);
    if (found) return { at: i, error: tooLarge(stream, entries[i], found, { value: limit }) };
  }
  return undefined;
}

/**
 * The write of `writes` (their MULTI/XADD.../EXEC in this order, from the
 * pipeline's first reply) whose entry the target refused with a protocol
 * error (`error` says at which reply), and the error that stops its stream.
 */
export function refusedWrite(
  writes: readonly Write[],
  error: unknown,
): { write: Write; error: EntryTooLargeError } | undefined {
  if (!(error instanceof ServerProtocolError) || error.repliesBefore === undefined) return;
  if (!/invalid bulk length/i.test(error.reply.message)) return;
  let at = error.repliesBefore;
  for (const w of writes) {
    const replies = writeReplies(w.entries.length);
    if (at >= replies) {
      at -= replies;
      continue;
    }
    const entry = w.entries[at - 1]; // MULTI first, then one XADD each
    if (entry === undefined) return;
    const found = largestPart(entry, w.stream.ref.targetKey);
    return { write: w, error: tooLarge(w.stream, entry, found, { refused: error.reply }) };
  }
  return undefined;
}
