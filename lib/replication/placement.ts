/**
 * Placement of streams on readers: a new reader (a dedicated source
 * connection) while the pool has room, else the least loaded reader of the
 * stream's DB; streams of DBs without a reader of their own share one. So
 * the source never sees more than SOURCE_REDIS_POOL_SIZE reader
 * connections, whatever the number of streams.
 *
 * @module
 */
import type { Config } from "../config/types.ts";
import { errorMessage, RedisReplyError } from "../errors.ts";
import { getLog } from "../log.ts";
import type { RedisConnection } from "../redis/connection.ts";
import type { ConnectionPool } from "../redis/pool.ts";
import { type ReaderHooks, type ReadFence, StreamReader } from "./reader.ts";
import type { ReplicatedStream } from "./stream.ts";

const log = getLog("orchestrator");

/** Options for {@linkcode Placement}. */
export interface PlacementOptions {
  /** The configuration (group, consumer, batch size, poll interval, source backoff). */
  config: Config;
  /** `run --once`: readers never block. */
  once: boolean;
  /** This instance's consumer name. */
  consumer: string;
  /**
   * With leases: the readers' fence.
   * @default {undefined}
   */
  fence?: ReadFence;
  /** What readers tell about their streams. */
  hooks: ReaderHooks;
  /**
   * Called for each failed read (for metrics).
   * @default {undefined}
   */
  onReadError?: (kind: string) => void;
  /** Aborted when the readers must stop. */
  signal: AbortSignal;
}

/** The readers, and which stream each serves. */
export class Placement {
  readonly #pool: ConnectionPool;
  readonly #control: RedisConnection;
  readonly #options: PlacementOptions;
  readonly #readers: StreamReader[] = [];
  readonly #runs: Promise<void>[] = [];
  readonly #of = new Map<ReplicatedStream, StreamReader>();
  /** Streams per DB of each reader. */
  readonly #dbs = new Map<StreamReader, Map<number, number>>();
  #warnedUnblock = false;

  constructor(pool: ConnectionPool, control: RedisConnection, options: PlacementOptions) {
    this.#pool = pool;
    this.#control = control;
    this.#options = options;
  }

  /** The readers' loops. */
  get runs(): Promise<void>[] {
    return this.#runs;
  }

  /** The reader serving `stream`. */
  readerOf(stream: ReplicatedStream): StreamReader | undefined {
    return this.#of.get(stream);
  }

  /** Puts `stream` on a reader. */
  place(stream: ReplicatedStream): void {
    const db = stream.ref.db;
    let best: StreamReader | undefined;
    for (const r of this.#readers) {
      const dbs = this.#dbs.get(r)!;
      if (!(dbs.has(db) || dbs.size === 0)) continue;
      if (!best || r.load < best.load) best = r;
    }
    if ((!best || best.load > 0) && this.#pool.canDedicate && !this.#options.signal.aborted) {
      best = this.#open(db);
    }
    if (!best) {
      for (const r of this.#readers) if (!best || r.load < best.load) best = r;
    }
    if (!best) return; // stopping: nothing reads it
    this.#of.set(stream, best);
    const dbs = this.#dbs.get(best)!;
    dbs.set(db, (dbs.get(db) ?? 0) + 1);
    best.assign(stream);
  }

  /** Takes `stream` off its reader. */
  release(stream: ReplicatedStream): void {
    const reader = this.#of.get(stream);
    if (!reader) return;
    reader.release(stream);
    this.#of.delete(stream);
    const dbs = this.#dbs.get(reader)!;
    const n = (dbs.get(stream.ref.db) ?? 1) - 1;
    if (n <= 0) dbs.delete(stream.ref.db);
    else dbs.set(stream.ref.db, n);
  }

  /** Wakes every reader (room to read again after the memory budget was spent). */
  pokeAll(): void {
    for (const r of this.#readers) r.poke();
  }

  #open(db: number): StreamReader {
    const { config, once, hooks, onReadError, signal, consumer, fence } = this.#options;
    const conn = this.#pool.dedicate(db, `reader${this.#readers.length}`);
    const reader = new StreamReader(conn, hooks, {
      group: config.consumerGroup,
      consumer,
      fence,
      batchSize: config.batchSize,
      blockMs: Math.max(1, Math.round(config.pollInterval * 1000)),
      once,
      backoffBaseMs: config.source.backoffBase * 1000,
      backoffMaxMs: config.source.backoffMax * 1000,
      maxRetries: config.source.maxRetries,
      onError: onReadError,
      unblock: (id) => this.#unblock(id),
    });
    this.#readers.push(reader);
    this.#dbs.set(reader, new Map());
    this.#runs.push(
      reader.run(signal).catch((error) => {
        // A bug, not an outage (those are retried inside): said, not left unhandled.
        log.error("A reader stopped: {error}", { error: errorMessage(error) });
      }),
    );
    return reader;
  }

  #unblock(id: string): void {
    this.#control.send(undefined, ["CLIENT", "UNBLOCK", id]).catch((error) => {
      // The reader wakes up at the end of its block anyway, only later.
      // Only a refusal is worth a word (a lost connection is reported elsewhere).
      if (this.#warnedUnblock || !(error instanceof RedisReplyError)) return;
      this.#warnedUnblock = true;
      log.warning(
        "CLIENT UNBLOCK failed ({error}); new entries may wait up to STREAM_POLL_INTERVAL (the ACL user needs CLIENT UNBLOCK)",
        { error: errorMessage(error) },
      );
    });
  }
}
