/**
 * Placement of streams on readers: a new reader (a dedicated source
 * connection) while the pool has room, else the least loaded reader of the
 * stream's DB; streams of DBs without a reader of their own share one. So
 * the source never sees more than SOURCE_REDIS_POOL_SIZE reader
 * connections, whatever the number of streams. In a cluster, readers are
 * per master (each master's pool is bounded alike), a stream is read by a
 * reader of its slot's master, and streams move to the right master's
 * readers after a change of layout (once no read of theirs is in flight);
 * readers left without streams on former masters are closed. The source's
 * notifications (`source_events.ts`) are handed to the reader of the
 * stream they name.
 *
 * @module
 */
import type { ReadSettings } from "../../config/mod.ts";
import { errorMessage, RedisReplyError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import type { KeyEvent, RedisClient, RedisConnection, ServerPool } from "../../redis/mod.ts";
import { ClusterReader } from "./cluster_reader.ts";
import { FencedReader } from "./fenced_reader.ts";
import { PlainReader } from "./plain_reader.ts";
import type { ReaderHooks, ReadFence } from "./read_hooks.ts";
import type { StreamReader } from "./reader.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { streamId } from "../stream/stream_ref.ts";
import { SourceEvents } from "./source_events.ts";

const log = getLog("orchestrator");
/** How soon a relocation waiting for reads in flight looks again (ms). */
const RELOCATE_RETRY_MS = 50;

/** Options for {@linkcode Placement}. */
export interface PlacementOptions {
  /** The consumer group. */
  group: string;
  /** Entries per read. */
  batchSize: number;
  /** The readers' settings. */
  read: ReadSettings;
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
  readonly #pool: ServerPool;
  readonly #control: RedisClient;
  readonly #options: PlacementOptions;
  readonly #readers: StreamReader[] = [];
  readonly #runs: Promise<void>[] = [];
  readonly #of = new Map<ReplicatedStream, StreamReader>();
  /** Streams per DB of each reader. */
  readonly #dbs = new Map<StreamReader, Map<number, number>>();
  /** The node of each reader ("" on one server), its connection, and its own stop. */
  readonly #node = new Map<
    StreamReader,
    { node: string; conn: RedisConnection; stop: AbortController }
  >();
  #relocateTimer: ReturnType<typeof setTimeout> | undefined;
  #events: SourceEvents | undefined;
  #warnedUnblock = false;
  /** CLIENT UNBLOCK was tried (of no client) and not refused: waits may block long. */
  #unblockWorks = false;

  constructor(pool: ServerPool, control: RedisClient, options: PlacementOptions) {
    this.#pool = pool;
    this.#control = control;
    this.#options = options;
    const { signal } = options;
    signal.addEventListener("abort", () => clearTimeout(this.#relocateTimer), { once: true });
    // Whether the user may CLIENT UNBLOCK, known before any wait relies on it (said if not).
    if (!options.once) {
      this.#unblock("0").then(() => (this.#unblockWorks = !this.#warnedUnblock));
    }
    if (!options.once) {
      this.#events = new SourceEvents(pool, {
        onKey: (event) => this.notifyKey(event),
        onGap: (node) => this.sweepNode(node),
        signal,
      });
      this.#events.sync();
    }
    if (!pool.cluster) return;
    // Subscribers first: a new master's pool keeps a place for its subscriber.
    pool.onLayoutChange(() => {
      this.#events?.sync();
      this.relocate();
    });
  }

  /** The readers' loops. */
  get runs(): Promise<void>[] {
    return [...this.#runs, ...(this.#events?.runs ?? [])];
  }

  /** The reader serving `stream`. */
  readerOf(stream: ReplicatedStream): StreamReader | undefined {
    return this.#of.get(stream);
  }

  /** Puts `stream` on a reader (of its master, in a cluster). */
  place(stream: ReplicatedStream): void {
    const db = stream.ref.db;
    const node = this.#pool.nodeOf(stream.ref.key);
    const readers = this.#readers.filter((r) => this.#node.get(r)!.node === node);
    let best: StreamReader | undefined;
    for (const r of readers) {
      const dbs = this.#dbs.get(r)!;
      if (!(dbs.has(db) || dbs.size === 0)) continue;
      if (!best || r.load < best.load) best = r;
    }
    if ((!best || best.load > 0) && this.#pool.canDedicate(node) && !this.#options.signal.aborted) {
      best = this.#open(db, node);
    }
    if (!best) {
      for (const r of readers) if (!best || r.load < best.load) best = r;
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

  /** The node whose reader serves `stream` now ("" on one server). */
  nodeOf(stream: ReplicatedStream): string | undefined {
    const reader = this.#of.get(stream);
    return reader ? this.#node.get(reader)!.node : undefined;
  }

  /** A notification named `key` of `db`: its stream is read next, by its reader. */
  notifyKey({ db, key }: KeyEvent): void {
    const id = streamId(db, key);
    for (const r of this.#readers) if (r.notifyId(id)) return;
  }

  /** Every stream of `node` is looked at next (notifications may have been missed, or stopped). */
  sweepNode(node: string): void {
    for (const [r, at] of this.#node) if (at.node === node) r.sweepNow();
  }

  /**
   * After a change of layout: each stream whose master changed moves to a
   * reader of the new one, once no read of it is in flight (looked at again
   * shortly for the others); readers of former masters left without
   * streams are closed.
   */
  relocate(): void {
    clearTimeout(this.#relocateTimer);
    this.#relocateTimer = undefined;
    if (this.#options.signal.aborted) return;
    let waiting = false;
    for (const [stream, reader] of [...this.#of]) {
      if (this.#node.get(reader)!.node === this.#pool.nodeOf(stream.ref.key)) continue;
      if (stream.readsInFlight > 0) {
        waiting = true; // two readers must never read one stream at once (order)
        continue;
      }
      // A read that failed on the former master may still run there: re-read what is pending.
      if (reader.staleReadsPossible) stream.history ??= "0";
      this.release(stream);
      this.place(stream);
    }
    const masters = new Set(this.#pool.nodes());
    for (const reader of [...this.#readers]) {
      const at = this.#node.get(reader)!;
      if (reader.load > 0 || masters.has(at.node)) continue;
      at.stop.abort();
      this.#pool.release(at.conn);
      this.#readers.splice(this.#readers.indexOf(reader), 1);
      this.#node.delete(reader);
      this.#dbs.delete(reader);
    }
    if (waiting) this.#relocateTimer = setTimeout(() => this.relocate(), RELOCATE_RETRY_MS);
  }

  /** Room to read again after the memory for entries read ahead was spent: readers waiting for it read. */
  roomIsBack(): void {
    for (const r of this.#readers) r.roomIsBack();
  }

  #open(db: number, node: string): StreamReader {
    const { group, batchSize, read, once, hooks, onReadError, consumer, fence } = this.#options;
    const conn = this.#pool.dedicate(db, { name: `reader${this.#readers.length}`, node });
    const stop = new AbortController();
    const signal = AbortSignal.any([this.#options.signal, stop.signal]);
    // The strategy: a cluster's master is polled, leases fence the reads, else reads block.
    const Reader = this.#pool.cluster ? ClusterReader : fence ? FencedReader : PlainReader;
    const reader = new Reader(conn, hooks, {
      group,
      consumer,
      fence,
      batchSize,
      blockMs: read.blockMs,
      once,
      backoffBaseMs: read.retry.baseMs,
      backoffMaxMs: read.retry.maxMs,
      maxRetries: read.retry.immediateRetries,
      onError: onReadError,
      unblock: (id) => this.#unblock(id),
      canUnblock: () => this.#unblockWorks && !this.#warnedUnblock,
      placed: () => this.#of.size,
      notifications: () => this.#events?.live(node) ?? false,
    });
    this.#readers.push(reader);
    this.#node.set(reader, { node, conn, stop });
    this.#dbs.set(reader, new Map());
    this.#runs.push(
      reader.run(signal).catch((error) => {
        // A bug, not an outage (those are retried inside): said, not left unhandled.
        log.error("A reader stopped: {error}", { error: errorMessage(error) });
      }),
    );
    return reader;
  }

  /** CLIENT UNBLOCK of reader connection `id`: whether a blocked read was woken (or no retry helps). */
  #unblock(id: string): Promise<boolean> {
    return this.#control.send(undefined, ["CLIENT", "UNBLOCK", id]).then(
      (reply) => Number(reply) === 1,
      (error) => {
        // The reader wakes up at the end of its block anyway, only later.
        // Only a refusal is worth a word (a lost connection is reported elsewhere).
        if (!this.#warnedUnblock && error instanceof RedisReplyError) {
          this.#warnedUnblock = true;
          log.warning(
            "CLIENT UNBLOCK failed ({error}); new entries may wait up to STREAM_POLL_INTERVAL (the ACL user needs CLIENT UNBLOCK)",
            { error: errorMessage(error) },
          );
        }
        return true; // sending it again would fail the same way
      },
    );
  }
}
