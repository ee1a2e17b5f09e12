/**
 * A reader owns one source connection and serves many streams with one
 * `XREADGROUP ... STREAMS k1 k2 ... > > ...` at a time, so hundreds of
 * streams make progress over a handful of connections. A stream asks for
 * its next batch with {@linkcode StreamReader.read} only once its previous
 * batch is written and acked (backpressure, and order per stream).
 *
 * @module
 */
import { Backoff, sleep } from "../backoff.ts";
import {
  ConnectError,
  ConnectionError,
  errorMessage,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
} from "../errors.ts";
import { getLog } from "../log.ts";
import type { RedisConnection } from "../redis/connection.ts";
import { compareIds, parseMultiRead, type ReadBatch } from "../redis/replies.ts";
import { type StreamRef, toHex } from "./stream_ref.ts";

const log = getLog("reader");

/**
 * How long after a failed read a copy of it may still reach the server:
 * a closed socket's unsent data is retransmitted by the kernel for minutes
 * (tcp_orphan_retries), so stay careful for a generous quarter of an hour.
 */
const STALE_READ_WINDOW_MS = 15 * 60_000;

/** Options for {@linkcode StreamReader}. */
export interface StreamReaderOptions {
  /** Consumer group name. */
  group: string;
  /** Consumer name. */
  consumer: string;
  /** Entries per stream per read (COUNT). */
  batchSize: number;
  /** Milliseconds a read blocks when nothing is ready (BLOCK). */
  blockMs: number;
  /**
   * `run --once`: never block; a stream with nothing to read gets an empty batch.
   * @default {false}
   */
  once?: boolean;
  /** First backoff delay after a failed read, milliseconds. */
  backoffBaseMs: number;
  /** Largest backoff delay after failed reads, milliseconds. */
  backoffMaxMs: number;
  /**
   * Failed reads retried at once before backing off (SOURCE_REDIS_MAX_RETRIES).
   * @default {0}
   */
  maxRetries?: number;
  /**
   * Called for each failed read, with the error's kind (reply code or "connection").
   * @default {undefined}
   */
  onError?: (kind: string) => void;
  /** Sends CLIENT UNBLOCK for the reader's connection (from another connection). */
  unblock: (clientId: string) => void;
}

interface Waiter {
  stream: StreamRef;
  resolve: (batch: ReadBatch | null) => void;
  reject: (error: unknown) => void;
}

/** Reads batches for the streams assigned to it, over one connection. */
export class StreamReader {
  #conn: RedisConnection;
  #options: StreamReaderOptions;
  #assigned = new Set<string>();
  #waiting = new Map<string, Waiter>();
  /**
   * Entries read for a stream whose waiter had left (it was woken for
   * maintenance) are delivered to its next read, so nothing read is ever
   * skipped out of order.
   */
  #stash = new Map<string, ReadBatch>();
  /**
   * Streams whose last read failed on the connection: the server may have
   * delivered entries whose reply was lost (they are pending for this
   * consumer). Until their own pending entries are read again (from the
   * cursor, "0" first), they are not read with ">", so no later entry can
   * overtake them on the target.
   */
  #history = new Map<string, string>();
  #staleReadsPossibleUntil = 0;
  /** A stream started waiting after the current pass took its list: do not block. */
  #pokedDuringPass = false;
  #wake: (() => void) | null = null;
  #blockingOn: Set<string> | null = null;
  #rotation = 0;
  #backoff: Backoff;

  constructor(conn: RedisConnection, options: StreamReaderOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#backoff = new Backoff({
      baseMs: options.backoffBaseMs,
      maxMs: options.backoffMaxMs,
      immediateRetries: options.maxRetries,
    });
  }

  /** Streams assigned to this reader. */
  get load(): number {
    return this.#assigned.size;
  }

  /** Assigns a stream to this reader. */
  assign(stream: StreamRef): void {
    this.#assigned.add(stream.id);
  }

  /**
   * Whether a read of this reader failed recently enough that the server
   * may still run a copy of it (delivering entries nobody receives).
   */
  get staleReadsPossible(): boolean {
    return Date.now() < this.#staleReadsPossibleUntil;
  }

  /**
   * Makes the next reads of `stream` re-read this consumer's own pending
   * entries from the start (in ID order) before new ones: for entries that
   * a read delivered while its reply never arrived.
   */
  rewind(stream: StreamRef): void {
    this.#stash.delete(stream.id); // they are pending too, and come back in order
    this.#history.set(stream.id, "0");
  }

  /** Releases a stream (its loop ended). */
  release(stream: StreamRef): void {
    this.#assigned.delete(stream.id);
    this.#stash.delete(stream.id); // still pending: the next loop's recovery copies them first
    this.#history.delete(stream.id);
    const waiter = this.#waiting.get(stream.id);
    if (waiter) {
      this.#waiting.delete(stream.id);
      waiter.resolve(null);
    }
  }

  /**
   * The next batch of new entries of `stream` (never empty, except in
   * once mode where empty means "nothing left"), or null once `signal`
   * aborts (the caller may read again later with a fresh signal: entries
   * read meanwhile are kept for it). Rejects with {@linkcode StreamGoneError} when the stream or its
   * group no longer exists, or with the error of a non-retriable failure.
   */
  read(stream: StreamRef, signal: AbortSignal): Promise<ReadBatch | null> {
    if (signal.aborted) return Promise.resolve(null);
    const stashed = this.#stash.get(stream.id);
    if (stashed) {
      this.#stash.delete(stream.id);
      return Promise.resolve(stashed);
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (this.#waiting.get(stream.id)?.resolve === done) this.#waiting.delete(stream.id);
        resolve(null);
      };
      const done = (batch: ReadBatch | null) => {
        signal.removeEventListener("abort", onAbort);
        resolve(batch);
      };
      const fail = (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.set(stream.id, { stream, resolve: done, reject: fail });
      this.#poke(stream.id);
    });
  }

  /** The read loop; returns once `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.#poke(null);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (this.#waiting.size === 0) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = null;
          continue;
        }
        try {
          await this.#pass(signal);
          this.#backoff.reset();
        } catch (error) {
          if (signal.aborted) break;
          this.#options.onError?.(error instanceof RedisReplyError ? error.code : "connection");
          if (!isRetriableError(error)) {
            log.error("Read failed on {connection}: {error}", {
              connection: this.#conn.where,
              error: errorMessage(error),
            });
            // Retrying will not help (e.g. NOPERM): the streams waiting end with
            // the error (and are tried again at the next discovery pass).
            const waiters = [...this.#waiting.values()];
            this.#waiting.clear();
            for (const waiter of waiters) waiter.reject(error);
          } else {
            log.debug("Read failed on {connection}: {error}", {
              connection: this.#conn.where,
              error: errorMessage(error),
            });
          }
          await sleep(this.#backoff.next(error instanceof ConnectionError), signal);
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      for (const waiter of this.#waiting.values()) waiter.resolve(null);
      this.#waiting.clear();
    }
  }

  /** One pass: a non-blocking read of every waiting stream; if none had anything, one blocking read. */
  async #pass(signal: AbortSignal): Promise<void> {
    this.#pokedDuringPass = false;
    // Streams whose first read in this pass re-reads their own pending entries.
    const fromHistory = new Set(this.#history.keys());
    const byDb = new Map<number, Waiter[]>();
    for (const waiter of this.#waiting.values()) {
      const list = byDb.get(waiter.stream.db);
      if (list) list.push(waiter);
      else byDb.set(waiter.stream.db, [waiter]);
    }
    let got = false;
    for (const [db, waiters] of byDb) {
      if (signal.aborted) return;
      if (await this.#readDb(db, waiters, 0)) got = true;
    }
    if (got || signal.aborted) return;
    if (this.#options.once) {
      // Nothing new for streams read with ">": they are caught up. A stream that
      // re-read its pending entries has not been asked for new ones yet.
      for (const waiters of byDb.values()) {
        for (const waiter of waiters) {
          if (!fromHistory.has(waiter.stream.id)) {
            this.#settle(waiter, { entries: [], deleted: [] });
          }
        }
      }
      return;
    }
    if (this.#pokedDuringPass) return; // a new waiter is not in this pass's list: no blocking
    // Nothing ready anywhere: block on one DB (rotating when several share this reader).
    const dbs = [...byDb.keys()];
    const db = dbs[this.#rotation++ % dbs.length];
    const blockMs = dbs.length === 1
      ? this.#options.blockMs
      : Math.max(50, Math.floor(this.#options.blockMs / dbs.length));
    const waiters = byDb.get(db)!.filter((w) => this.#waiting.get(w.stream.id) === w);
    if (waiters.length === 0) return;
    await this.#readDb(db, waiters, blockMs);
  }

  /**
   * Reads `waiters`' streams in `db`; resolves the ones that got entries. Whether any did.
   * `isolate`: on NOGROUP/WRONGTYPE/UNBLOCKED, find the stream at fault one by one (false
   * for those single reads, which throw instead, or they would isolate again for ever).
   */
  async #readDb(db: number, waiters: Waiter[], blockMs: number, isolate = true): Promise<boolean> {
    const { group, consumer, batchSize } = this.#options;
    const args: (string | Uint8Array)[] = [
      "XREADGROUP",
      "GROUP",
      group,
      consumer,
      "COUNT",
      String(batchSize),
    ];
    if (blockMs > 0) args.push("BLOCK", String(blockMs));
    args.push("STREAMS");
    for (const w of waiters) args.push(w.stream.key);
    for (const w of waiters) args.push(this.#history.get(w.stream.id) ?? ">");
    let reply: unknown;
    if (blockMs > 0) this.#blockingOn = new Set(waiters.map((w) => w.stream.id));
    try {
      reply = await this.#conn.send(db, args, { buffers: true, blockMs });
    } catch (error) {
      if (
        isolate && error instanceof RedisReplyError &&
        (error.code === "NOGROUP" || error.code === "WRONGTYPE" || error.code === "UNBLOCKED")
      ) {
        // One of the streams is gone or changed type (a blocked read is
        // woken with "UNBLOCKED the stream key no longer exists" when its
        // key is deleted): find which, one by one.
        return await this.#isolate(db, waiters);
      }
      if (!(error instanceof RedisReplyError) && !(error instanceof ConnectError)) {
        // The read may have been sent: the server may have delivered entries
        // whose reply was lost, or may still run it later (the abandoned
        // connection's data can sit in a socket buffer or in the network).
        for (const w of waiters) {
          if (!this.#history.has(w.stream.id)) this.#history.set(w.stream.id, "0");
        }
        this.#staleReadsPossibleUntil = Date.now() + STALE_READ_WINDOW_MS;
      }
      throw error;
    } finally {
      this.#blockingOn = null;
    }
    const byKey = new Map(waiters.map((w) => [keyHex(w.stream), w]));
    const items = parseMultiRead(reply).map((item) => ({ ...item, hex: toHex(item.key) }));
    for (const w of waiters) {
      if (!this.#history.has(w.stream.id)) continue;
      // A re-read of this consumer's pending entries: go on from the last
      // one returned (deleted ones included) until none is left.
      const item = items.find((i) => i.hex === keyHex(w.stream));
      const last = [...(item?.entries.map((e) => e.id) ?? []), ...(item?.deleted ?? [])]
        .sort(compareIds).at(-1);
      if (last === undefined) this.#history.delete(w.stream.id);
      else this.#history.set(w.stream.id, last);
    }
    let got = false;
    for (const item of items) {
      const waiter = byKey.get(item.hex);
      if (!waiter || (item.entries.length === 0 && item.deleted.length === 0)) continue;
      got = true;
      this.#settle(waiter, { entries: item.entries, deleted: item.deleted });
    }
    return got;
  }

  async #isolate(db: number, waiters: Waiter[]): Promise<boolean> {
    let got = false;
    for (const waiter of waiters) {
      if (this.#waiting.get(waiter.stream.id) !== waiter) continue;
      try {
        if (await this.#readDb(db, [waiter], 0, false)) got = true;
      } catch (error) {
        if (
          error instanceof RedisReplyError &&
          (error.code === "NOGROUP" || error.code === "WRONGTYPE")
        ) {
          this.#waiting.delete(waiter.stream.id);
          waiter.reject(
            new StreamGoneError(`Stream ${waiter.stream.label} is gone: ${error.message}`, {
              cause: error,
            }),
          );
        } else {
          throw error;
        }
      }
    }
    return got;
  }

  /**
   * Hands `entries` to the stream's current waiter. A waiter that left
   * (woken for maintenance) may have been replaced by a new one while the
   * read was in flight: the entries go to whoever waits now, or are kept
   * for the next read, in order.
   */
  #settle(waiter: Waiter, batch: ReadBatch): void {
    const id = waiter.stream.id;
    const current = this.#waiting.get(id);
    if (current) {
      this.#waiting.delete(id);
      current.resolve(batch);
      return;
    }
    if ((batch.entries.length === 0 && batch.deleted.length === 0) || !this.#assigned.has(id)) {
      return;
    }
    const stashed = this.#stash.get(id);
    if (stashed) {
      stashed.entries.push(...batch.entries);
      stashed.deleted.push(...batch.deleted);
    } else {
      this.#stash.set(id, batch);
    }
  }

  /** Wakes the loop: a stream started waiting (or the reader is stopping). */
  #poke(streamId: string | null): void {
    if (this.#wake) {
      this.#wake();
      return;
    }
    const blocking = this.#blockingOn;
    if (!blocking) {
      this.#pokedDuringPass = true;
      return;
    }
    if (streamId === null || !blocking.has(streamId)) {
      const id = this.#conn.clientId;
      if (id === undefined) return; // still connecting: a later poke unblocks it
      this.#blockingOn = null;
      this.#options.unblock(id);
    }
  }
}

/** The hex of a stream's key, taken from its id (`db:hex`). */
function keyHex(stream: StreamRef): string {
  return stream.id.slice(stream.id.indexOf(":") + 1);
}
