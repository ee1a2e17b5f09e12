/**
 * A reader owns one source connection and serves many streams with
 * `XREADGROUP ... STREAMS k1 k2 ... > > ...`: a stream is read while it has
 * room for more entries (read-ahead, bounded), so the source is read while
 * the target writes; streams with a backlog are read without blocking,
 * several reads in one round trip; when nothing is ready the reader blocks
 * on all its streams at once, and is woken (CLIENT UNBLOCK) when a stream
 * it does not block on wants entries. No timer or promise per stream. In
 * a cluster no read blocks: notified streams are read, and all every poll.
 *
 * @module
 */
import { Backoff, sleep } from "../../backoff.ts";
import { ConnectError, RedisReplyError } from "../../errors.ts";
import type { ReaderHooks, StreamReaderOptions } from "./read_hooks.ts";

export type { ReadBudget, ReaderHooks, ReadFence, StreamReaderOptions } from "./read_hooks.ts";
import { clusterSlot, entriesAt } from "../../redis/mod.ts";
import type { RedisConnection, RespValue, RespWriter } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import {
  type DispatchContext,
  dispatchInOrder,
  dispatchWoken,
  encodeGroupRead,
  planReads,
  readsPerRoundTrip,
  RefusedRead,
  TailCache,
} from "./_read_replies.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { encodeFencedRead, lostLeases, waitForEntries } from "./_fenced_read.ts";
import { isolateStreams, settleFailedRead } from "./_read_failures.ts";
import { ReaderWake } from "./_reader_wake.ts";

/** A failed read may still reach the server this long after (kernel retransmits; tcp_orphan_retries). */
const STALE_READ_WINDOW_MS = 15 * 60_000;
/** While streams with a backlog are read, the others are looked at this often. */
const SWEEP_INTERVAL_MS = 10;
/** A fenced reader reads every stream this often, at least (XREAD does not wake for a deleted key). */
const FENCED_SWEEP_MS = 5000;
/** Depth of the entries in an XREADGROUP reply. */
const READ_ENTRY_DEPTH = entriesAt(3);

/** Reads entries for the streams assigned to it, over one connection. */
export class StreamReader {
  readonly #conn: RedisConnection;
  readonly #options: StreamReaderOptions;
  readonly #hooks: ReaderHooks;
  readonly #streams = new Set<ReplicatedStream>();
  /** The streams by id (DB and key), to find those a blocking read woke for. */
  readonly #byId = new Map<string, ReplicatedStream>();
  readonly #backoff: Backoff;
  /** Its own wait, and its blocking read (the streams in it are those with reads in flight). */
  readonly #wake = new ReaderWake();
  #staleReadsPossibleUntil = 0;
  #lastSweep = 0;
  #turn = 0;
  readonly #tail = new TailCache();
  #rotation = 0;
  /** When a fenced reader last read every stream (ms since epoch). */
  #lastFullRead = 0;
  /** In a cluster: streams a notification named since their last read. */
  readonly #notified = new Set<ReplicatedStream>();

  constructor(conn: RedisConnection, hooks: ReaderHooks, options: StreamReaderOptions) {
    this.#conn = conn;
    this.#hooks = hooks;
    this.#options = options;
    this.#backoff = new Backoff({
      baseMs: options.backoffBaseMs,
      maxMs: options.backoffMaxMs,
      immediateRetries: options.maxRetries,
    });
  }

  /** Streams assigned to this reader. */
  get load(): number {
    return this.#streams.size;
  }

  /** A read of it failed so recently that the server may still run it (delivering to nobody). */
  get staleReadsPossible(): boolean {
    return Date.now() < this.#staleReadsPossibleUntil;
  }

  /** Assigns a stream to this reader. */
  assign(stream: ReplicatedStream): void {
    this.#streams.add(stream);
    this.#byId.set(stream.ref.id, stream);
    this.poke(stream);
  }

  /** Releases a stream (it ended, or moved to another reader). */
  release(stream: ReplicatedStream): void {
    this.#streams.delete(stream);
    this.#notified.delete(stream);
    if (stream.readsInFlight > 0) this.poke(); // a blocking read of it ends now
    if (this.#byId.get(stream.ref.id) === stream) this.#byId.delete(stream.ref.id);
  }

  /** In a cluster: a notification says `stream` has new entries; it is read next. */
  notify(stream: ReplicatedStream): void {
    if (!this.#streams.has(stream)) return;
    this.#notified.add(stream);
    this.#wake.wakeUp();
  }

  /** In a cluster: notifications may have been missed; every stream is read next. */
  sweepNow(): void {
    this.#lastSweep = 0;
    this.#wake.wakeUp();
  }

  /** `stream` wants entries again, or must leave a blocking read: wake the loop, or unblock. */
  poke(stream?: ReplicatedStream): void {
    this.#wake.poke({
      // Unblock when a stream it does not block on wants entries, or one it blocks on must stop.
      mustEnd: () =>
        stream === undefined || (stream.readsInFlight > 0) !== this.#hooks.wants(stream),
      clientId: this.#conn.clientId,
      unblock: this.#options.unblock,
    });
  }

  /**
   * The read loop; returns once `signal` aborts. Non-blocking passes are
   * pipelined: the next one is sent before the reply of the one in flight
   * is in, so the source always has reads to serve (two in flight at most).
   */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.poke();
    signal.addEventListener("abort", onAbort, { once: true });
    let ahead: Promise<void> | null = null;
    try {
      while (!signal.aborted) {
        const wanting: ReplicatedStream[] = [];
        for (const s of this.#streams) if (this.#hooks.wants(s)) wanting.push(s);
        const notified = this.#notified;
        const hot = wanting.filter((s) => s.hot || s.history !== undefined || notified.has(s));
        const blocking = !this.#options.once && hot.length === 0;
        if (ahead && (wanting.length === 0 || blocking)) {
          // Let the pass in flight finish first: what it brings decides what comes next.
          await ahead;
          ahead = null;
          continue;
        }
        if (wanting.length === 0) {
          await this.#wake.sleep();
          continue;
        }
        const pass = this.#pass(wanting, hot).then(
          () => this.#backoff.reset(),
          async (error) => {
            if (!signal.aborted) await this.#failedRead(error, wanting, signal);
          },
        );
        if (blocking) {
          await pass;
          continue;
        }
        if (ahead) await ahead;
        ahead = pass;
      }
      if (ahead) await ahead;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  #pass(wanting: ReplicatedStream[], hot: ReplicatedStream[]): Promise<void> {
    if (this.#options.once) return this.#readNow(wanting, hot.length > 0);
    if (this.#options.cluster && !hot.some((s) => s.hot || s.history !== undefined)) {
      // Nothing with a backlog: the notified streams once each, or wait.
      return hot.length === 0 ? this.#idle(wanting) : this.#readNow(hot, false);
    }
    if (hot.length === 0) {
      if (!this.#options.fence || Date.now() - this.#lastFullRead < FENCED_SWEEP_MS) {
        return this.#readBlocking(wanting);
      }
      // Now and then a fenced reader reads every stream: XREAD does not wake when a key is
      // deleted or retyped, the read finds it gone (NOGROUP, WRONGTYPE).
      this.#lastFullRead = Date.now();
      return this.#readNow(wanting, false);
    }
    const now = Date.now();
    if (now - this.#lastSweep >= SWEEP_INTERVAL_MS && hot.length < wanting.length) {
      this.#lastSweep = now;
      return this.#readNow(wanting, false);
    }
    // Streams with a backlog: several reads in one round trip.
    return this.#readNow(hot, true);
  }

  /**
   * Non-blocking reads of `streams`, one round trip per DB; with `repeat`,
   * the ">" reads are sent several times over (each brings the next batch).
   */
  async #readNow(streams: ReplicatedStream[], repeat: boolean): Promise<void> {
    for (const [db, all] of groupBy(streams, (s) => s.ref.db)) {
      // Asked again right before sending: a stream may have stopped wanting entries (its
      // recovery began) while the reads of another DB were in flight.
      const list = all.filter((s) => this.#streams.has(s) && this.#hooks.wants(s));
      let fresh = list.filter((s) => s.history === undefined);
      const history = list.filter((s) => s.history !== undefined);
      const times = repeat ? readsPerRoundTrip(fresh.length, this.#options.batchSize) : 1;
      // Only as many streams as the memory left for reading ahead may take, in turns.
      const share = this.#hooks.budget.take(fresh.length, times);
      if (share.streams < fresh.length) {
        const from = this.#turn++ % fresh.length;
        fresh = [...fresh.slice(from), ...fresh.slice(0, from)].slice(0, share.streams);
      }
      // In a cluster, a read covers the streams of one slot.
      const commands = planReads(history, fresh, {
        times,
        ...(this.#options.cluster
          ? { slotOf: (s: ReplicatedStream) => clusterSlot(s.ref.key) }
          : {}),
      });
      if (commands.length === 0) {
        this.#hooks.budget.give(share.bytes);
        continue;
      }
      let replies: RespValue[];
      try {
        replies = await this.#send(db, commands, 0);
      } finally {
        this.#hooks.budget.give(share.bytes);
      }
      // Every read that succeeded is handed over, also when another of the pipeline was
      // refused (a refused read delivered nothing): its entries are this consumer's now.
      const got = new Set<ReplicatedStream>();
      let refused: { error: RedisReplyError; streams: ReplicatedStream[] } | undefined;
      for (let i = 0; i < commands.length; i++) {
        const reply = replies[i];
        const lost = lostLeases(reply, commands[i].streams);
        if (lost) {
          for (const s of lost) this.#hooks.lost(s);
        } else if (reply instanceof RedisReplyError) {
          refused ??= { error: reply, streams: [] };
          refused.streams.push(...commands[i].streams);
        } else this.#dispatch(commands[i].streams, reply, commands[i].fromHistory, got);
      }
      if (refused) throw new RefusedRead(refused.error, [...new Set(refused.streams)]);
      if (this.#options.once) {
        // Nothing more, unless a read sent after this one (pipelined) is still to come.
        for (const s of fresh) if (!got.has(s) && s.readsInFlight === 0) this.#hooks.drained(s);
      }
    }
  }

  /** In a cluster (no read blocks): waits for a notification or the next sweep (every `blockMs`). */
  async #idle(wanting: ReplicatedStream[]): Promise<void> {
    const wait = this.#lastSweep + this.#options.blockMs - Date.now();
    if (wait > 0) {
      await this.#wake.sleep(wait);
      // Woken (a notification, a new stream, the stop): the loop looks again.
      if (Date.now() - this.#lastSweep < this.#options.blockMs) return;
    }
    this.#lastSweep = Date.now();
    await this.#readNow(wanting.filter((s) => this.#hooks.wants(s)), false);
  }

  /** One blocking read of `wanting` (of one DB, rotating when several share this reader). */
  async #readBlocking(wanting: ReplicatedStream[]): Promise<void> {
    const dbs = groupBy(wanting, (s) => s.ref.db);
    const keys = [...dbs.keys()];
    const db = keys[this.#rotation++ % keys.length];
    const blockMs = keys.length === 1
      ? this.#options.blockMs
      : Math.max(50, Math.floor(this.#options.blockMs / keys.length));
    const streams = dbs.get(db)!;
    if (this.#options.fence) {
      if (this.#lastFullRead === 0) this.#lastFullRead = Date.now();
      return this.#wait(db, streams, Math.min(blockMs, FENCED_SWEEP_MS));
    }
    this.#wake.blockStarted();
    try {
      const [reply] = await this.#send(
        db,
        [{ streams, tail: this.#tail.of(streams) }],
        blockMs,
      );
      if (reply instanceof RedisReplyError) throw new RefusedRead(reply, streams);
      this.#dispatchWoken(db, streams, reply);
    } finally {
      this.#wake.blockEnded();
    }
  }

  /**
   * With leases: waits for entries of `streams` with XREAD from their last
   * delivered IDs (taking nothing), and marks those that have some as hot:
   * the next pass reads them through the fence.
   */
  async #wait(db: number, streams: ReplicatedStream[], blockMs: number): Promise<void> {
    try {
      await waitForEntries(this.#conn, db, {
        streams,
        blockMs,
        group: this.#options.group,
        byId: this.#byId,
        idle: this.#hooks.idle,
        // Blocking (unblockable) only from the XREAD on, not while its IDs are loaded.
        blocking: () => this.#wake.blockStarted(),
      });
    } finally {
      this.#wake.blockEnded();
    }
  }

  /** Sends one XREADGROUP per command, in one round trip; error replies are thrown. */
  async #send(
    db: number,
    commands: Array<{ streams: ReplicatedStream[]; tail?: Uint8Array }>,
    blockMs: number,
  ): Promise<RespValue[]> {
    const { group, consumer, batchSize } = this.#options;
    for (const c of commands) {
      for (const s of c.streams) {
        s.readsInFlight++;
        this.#notified.delete(s); // a notification from now on is for entries after this read
      }
    }
    try {
      const fence = this.#options.fence;
      const replies = await this.#conn.batch(db, commands.length, (w: RespWriter) => {
        const options = { group, consumer, count: batchSize };
        for (const { streams, tail } of commands) {
          if (fence) encodeFencedRead(w, streams, { ...options, fence });
          else encodeGroupRead(w, streams, { ...options, blockMs, tail });
        }
      }, { buffers: true, blockMs, parse: READ_ENTRY_DEPTH, name: "XREADGROUP" });
      return replies; // a refused read is a RedisReplyError in its place
    } catch (error) {
      if (!(error instanceof RedisReplyError) && !(error instanceof ConnectError)) {
        // The reads may have been executed: the server may have delivered entries whose
        // reply was lost, or may still run them later (the abandoned connection's data can
        // sit in a socket buffer or in the network).
        for (const c of commands) for (const s of c.streams) s.history ??= "0";
        this.#staleReadsPossibleUntil = Date.now() + STALE_READ_WINDOW_MS;
      }
      throw error;
    } finally {
      for (const c of commands) {
        for (const s of c.streams) if (--s.readsInFlight === 0) this.#hooks.idle(s);
      }
    }
  }

  /** Hands the entries of one XREADGROUP reply to their streams (see `_read_replies.ts`). */
  #dispatch(
    streams: ReplicatedStream[],
    reply: RespValue,
    fromHistory: boolean,
    got: Set<ReplicatedStream>,
  ): void {
    dispatchInOrder(streams, reply, { fromHistory, got, ...this.#context() });
  }

  #dispatchWoken(db: number, streams: ReplicatedStream[], reply: RespValue): void {
    if (!dispatchWoken(reply, { db, byId: this.#byId, ...this.#context() })) {
      // Not one of this read's streams by id (cannot happen): match the slow way.
      this.#dispatch(streams, reply, false, new Set());
    }
  }

  #context(): DispatchContext {
    return { batchSize: this.#options.batchSize, deliver: this.#hooks.deliver };
  }

  async #failedRead(
    error: unknown,
    wanting: ReplicatedStream[],
    signal: AbortSignal,
  ): Promise<void> {
    const outcome = await settleFailedRead(error, wanting, {
      where: this.#conn.where,
      hooks: this.#hooks,
      onError: this.#options.onError,
      isolate: (streams) => this.#isolate(streams),
    });
    if (outcome) await sleep(this.#backoff.next(outcome.connection), signal);
  }

  /** Reads each stream alone (non-blocking) to find those that are gone. */
  #isolate(streams: ReplicatedStream[]): Promise<void> {
    return isolateStreams(streams, {
      hooks: this.#hooks,
      owns: (stream) => this.#streams.has(stream),
      readAlone: async (stream) => (await this.#send(stream.ref.db, [{ streams: [stream] }], 0))[0],
      dispatch: (stream, reply) =>
        this.#dispatch([stream], reply, stream.history !== undefined, new Set()),
    });
  }
}
