/**
 * A reader owns one source connection and serves many streams with
 * `XREADGROUP ... STREAMS k1 k2 ... > > ...`: a stream is read while it has
 * room for more entries (read-ahead, bounded), so the source is read while
 * the target writes; streams with a backlog are read without blocking,
 * several reads in one round trip. No timer or promise per stream.
 *
 * This file is the loop every reader shares, and `run --once` is a mode of
 * it (never wait; a stream a read finds nothing more for is drained). What
 * a reader does when no stream has a backlog is its strategy, one file
 * each: {@linkcode PlainReader} blocks on all its streams at once,
 * {@linkcode FencedReader} waits with an XREAD that takes nothing (leases),
 * {@linkcode ClusterReader} never blocks (notifications and a sweep).
 * {@linkcode createReader} picks one.
 *
 * @module
 */
import { Backoff, sleep } from "../../backoff.ts";
import { ConnectError, RedisReplyError } from "../../errors.ts";
import type { RedisConnection, RespValue } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { GROUP_READ, lostLeases, type ReadCommand } from "./_read_command.ts";
import { isolateStreams, settleFailedRead } from "./_read_failures.ts";
import {
  type DispatchContext,
  dispatchInOrder,
  dispatchWoken,
  type PlannedRead,
  planRound,
  RefusedRead,
} from "./_read_replies.ts";
import { ReaderWake } from "./_reader_wake.ts";
import { Turns } from "./_turns.ts";
import { LOOK_STREAMS, NextPass } from "./_next_pass.ts";
import { planWait } from "./_wait_plan.ts";
import type { ReaderHooks, ReadNowOptions, StreamReaderOptions } from "./read_hooks.ts";

/** A failed read may still reach the server this long after (kernel retransmits; tcp_orphan_retries). */
const STALE_READ_WINDOW_MS = 15 * 60_000;
/** Streams read after a wake-up that a reader keeps track of until its next wait, at most. */
const MAX_READ_WOKEN = 64;

/** One read of a round trip: its streams, and (a blocking read) the encoded `STREAMS ...` part. */
export interface ReaderCommand {
  /** The streams read. */
  streams: ReplicatedStream[];
  /** See {@linkcode ReadCommandOptions.tail}. */
  tail?: Uint8Array;
  /** Entries per stream, when not STREAM_BATCH_SIZE. */
  count?: number;
}

/** Reads entries for the streams assigned to it, over one connection. */
export abstract class StreamReader {
  protected readonly conn: RedisConnection;
  protected readonly options: StreamReaderOptions;
  protected readonly hooks: ReaderHooks;
  /** Its own wait, and its blocking read (the streams in it are those with reads in flight). */
  protected readonly wake = new ReaderWake();
  /** The streams by id (DB and key), to find those a reply names. */
  protected readonly byId = new Map<string, ReplicatedStream>();
  /** Streams to read next even without a backlog (named by notifications). */
  protected readonly notified = new Set<ReplicatedStream>();
  /** Streams a wait that takes nothing saw entries of (see `NextPassContext.woken`). */
  protected readonly woken = new Set<ReplicatedStream>();
  /** Streams read because a wait saw entries of them, since the reader last asked (`takeReadWoken`). */
  #readWoken: ReplicatedStream[] = [];
  readonly #command: ReadCommand;
  readonly #streams = new Set<ReplicatedStream>();
  readonly #backoff: Backoff;
  #staleReadsPossibleUntil = 0;
  /** Which streams a read takes when it may not take all: in turns, per kind of read. */
  readonly #turns = new Turns<ReplicatedStream>();
  /** Which streams the loop's next pass takes. */
  readonly #next: NextPass;
  #rotation = 0;

  constructor(conn: RedisConnection, hooks: ReaderHooks, options: StreamReaderOptions) {
    this.conn = conn;
    this.hooks = hooks;
    this.options = options;
    this.#command = this.command();
    this.#backoff = new Backoff({
      baseMs: options.backoffBaseMs,
      maxMs: options.backoffMaxMs,
      immediateRetries: options.maxRetries,
    });
    this.#next = new NextPass({
      streams: this.#streams,
      notified: this.notified,
      woken: this.woken,
      once: options.once ?? false,
      wants: (stream) => this.hooks.wants(stream),
      lookSize: () => this.lookSize(),
      readNow: (streams, repeat) => this.readNow(streams, repeat),
      lookAtOthers: (others) => this.lookAtOthers(others),
      quiet: (wanting) => this.quiet(wanting),
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
    this.byId.set(stream.ref.id, stream);
    // Read at once when notifications wake this reader: one of an entry added while the stream
    // started (before it was placed here) reached nobody.
    if (this.options.notifications?.()) this.notified.add(stream);
    this.poke(stream);
  }

  /** Releases a stream (it ended, or moved to another reader). */
  release(stream: ReplicatedStream): void {
    this.#streams.delete(stream);
    this.notified.delete(stream);
    this.woken.delete(stream);
    if (stream.readsInFlight > 0) this.poke(); // a blocking read of it ends now
    if (this.byId.get(stream.ref.id) === stream) this.byId.delete(stream.ref.id);
  }

  /** A notification says the stream of id `id` has new entries: false when not this reader's. */
  notifyId(id: string): boolean {
    const stream = this.byId.get(id);
    if (stream === undefined) return false;
    this.notified.add(stream);
    this.wake.wakeUp();
    return true;
  }

  /** Notifications may have been missed, or stopped: the next wait looks at every stream first. */
  sweepNow(): void {
    this.wake.lookSoon();
  }

  /** `stream` wants entries again, or must leave a blocking read: wake the loop, or unblock. */
  poke(stream?: ReplicatedStream): void {
    if (this.options.once) return void this.wake.wakeUp(); // --once never blocks: nothing to unblock
    const conn = this.conn;
    this.wake.poke({
      // Unblock when a stream it does not block on wants entries, or one it blocks on must stop.
      mustEnd: () =>
        stream === undefined || (stream.readsInFlight > 0) !== this.hooks.wants(stream),
      get clientId() {
        return conn.clientId; // when it unblocks (the connection may have been opened again)
      },
      unblock: this.options.unblock,
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
        this.wake.looked();
        const next = this.#next.next(ahead !== null);
        if (ahead && (next === undefined || next.blocking)) {
          // Let the pass in flight finish first: what it brings decides what comes next.
          await ahead;
          ahead = null;
          continue;
        }
        if (next === undefined) {
          await this.wake.sleep();
          continue;
        }
        const blocking = next.blocking;
        if (!(blocking && this.waitTakesNothing) && !this.hooks.budget.roomLeft()) {
          // The memory for entries read ahead is spent (all readers together): no read
          // until some is given back (the budget wakes this reader then). A wait that takes
          // nothing goes on: it covers every stream, whatever the memory.
          next.putBack();
          if (ahead) await ahead;
          else await this.wake.sleep();
          ahead = null;
          continue;
        }
        const pass = next.send().then(
          () => this.#backoff.reset(),
          async (error) => {
            if (!signal.aborted) await this.#failedRead(error, next.streams, signal);
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

  /** While some streams have a backlog: reads the `others` (the next in turn), as many as fit. */
  protected lookAtOthers(others: ReplicatedStream[]): Promise<void> {
    return this.readNow(others, false, { turn: "sweep", most: others.length });
  }

  /** How many of the others a look takes at most. */
  protected lookSize(): number {
    return LOOK_STREAMS;
  }

  /** How this reader's reads are sent (plain XREADGROUP unless said otherwise). */
  protected command(): ReadCommand {
    return GROUP_READ;
  }

  /** Its wait for new entries takes none (an XREAD): it needs no memory for entries read ahead. */
  protected readonly waitTakesNothing: boolean = false;

  /** There is room to read again (memory was given back): wakes the loop if it sleeps. */
  roomIsBack(): void {
    this.wake.wakeUp();
  }

  /** The slot a stream's reads are grouped by (in a cluster a read covers one slot). */
  protected slotOf?(stream: ReplicatedStream): number;

  /**
   * No stream has a backlog or was notified: wait for entries, in this
   * reader's way (`wanting`: the streams that want entries, listed when asked).
   */
  protected abstract quiet(wanting: () => ReplicatedStream[]): Promise<void>;

  /**
   * Non-blocking reads of `streams`, one round trip per DB; with `repeat`,
   * the ">" reads are sent several times over (each brings the next batch).
   */
  protected async readNow(
    streams: ReplicatedStream[],
    repeat: boolean,
    options: ReadNowOptions = {},
  ): Promise<void> {
    for (const [db, all] of groupBy(streams, (s) => s.ref.db)) {
      // Asked again right before sending: a stream may have stopped wanting entries (its
      // recovery began) while the reads of another DB were in flight.
      const list = all.filter((s) => this.#streams.has(s) && this.hooks.wants(s));
      // As many streams as the memory left may take, in turns (one per kind of read and DB).
      const { commands, fresh, bytes } = planRound(list, {
        budget: this.hooks.budget,
        turns: this.#turns,
        turn: `${options.turn ?? (repeat ? "backlog" : "look")}:${db}`,
        most: options.most ?? Infinity,
        repeat,
        batchSize: this.options.batchSize,
        ...(this.slotOf ? { slotOf: this.slotOf.bind(this) } : {}),
      });
      if (commands.length === 0) {
        this.hooks.budget.give(bytes);
        continue;
      }
      let replies: RespValue[];
      try {
        replies = await this.send(db, commands, 0);
      } finally {
        this.hooks.budget.give(bytes);
      }
      // Every read that succeeded is handed over, also when another of the pipeline was
      // refused (a refused read delivered nothing): its entries are this consumer's now.
      const got = new Set<ReplicatedStream>();
      let refused: { error: RedisReplyError; streams: ReplicatedStream[] } | undefined;
      for (let i = 0; i < commands.length; i++) {
        const reply = replies[i];
        const lost = lostLeases(reply, commands[i].streams);
        if (lost) {
          for (const s of lost) this.hooks.lost(s);
        } else if (reply instanceof RedisReplyError) {
          refused ??= { error: reply, streams: [] };
          refused.streams.push(...commands[i].streams);
        } else this.#dispatch(commands[i], reply, got);
      }
      if (refused) throw new RefusedRead(refused.error, [...new Set(refused.streams)]);
      if (this.options.once) {
        // Nothing more, unless a read sent after this one (pipelined) is still to come.
        for (const s of fresh) if (!got.has(s) && s.readsInFlight === 0) this.hooks.drained(s);
      }
    }
  }

  /** The streams of one DB of `wanting` (in turns) and how long a wait on them may block. */
  protected nextDb(
    wanting: ReplicatedStream[],
  ): { db: number; streams: ReplicatedStream[]; blockMs: number } {
    const canUnblock = this.options.canUnblock?.() ?? false;
    return planWait(wanting, { turn: this.#rotation++, blockMs: this.options.blockMs, canUnblock });
  }

  /** Sends one read per command, in one round trip; error replies are returned in their place. */
  protected async send(
    db: number,
    commands: readonly ReaderCommand[],
    blockMs: number,
  ): Promise<RespValue[]> {
    const { group, consumer, batchSize } = this.options;
    for (const c of commands) {
      for (const s of c.streams) s.readsInFlight++;
    }
    // Per read, the notified streams it reads with ">": their notification is used up by it
    // (one from now on is for entries after it: the read runs later and sees them), unless it
    // fails; a re-read of pending entries ("0", history) does not read new ones, so their
    // streams stay notified. Taken now, not when the read is encoded (after the connection is
    // ready, a microtask later): the loop's next pass, picked meanwhile, read them again.
    const used: ReplicatedStream[][] = commands.map(({ streams }) => {
      const taken: ReplicatedStream[] = [];
      for (const s of streams) {
        if (s.history === undefined && this.notified.delete(s)) taken.push(s);
      }
      return taken;
    });
    const renotify = (streams: ReplicatedStream[]) => {
      for (const s of streams) if (this.#streams.has(s)) this.notified.add(s);
    };
    try {
      const command = this.#command;
      const replies = await this.conn.batch(db, commands.length, (w) => {
        commands.forEach(({ streams, tail, count }, i) => {
          // A re-read of pending entries decided since (another read of it failed) reads no
          // new entry: the notification stays.
          for (const s of used[i]) if (s.history !== undefined) this.notified.add(s);
          command.encode(w, streams, { group, consumer, count: count ?? batchSize, blockMs, tail });
        });
      }, { buffers: true, blockMs, parse: command.parse, name: "XREADGROUP" });
      // A refused read read nothing: its streams are read again (after the reader's backoff).
      replies.forEach((r, i) => r instanceof RedisReplyError && renotify(used[i]));
      return replies; // a refused read is a RedisReplyError in its place
    } catch (error) {
      for (const streams of used) renotify(streams);
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
        for (const s of c.streams) {
          // Its read's reply (or failure) tells what comes next.
          if (this.woken.delete(s) && this.#readWoken.length < MAX_READ_WOKEN) {
            this.#readWoken.push(s);
          }
          if (--s.readsInFlight === 0) this.hooks.idle(s);
        }
      }
    }
  }

  /** The streams read because a wait saw entries of them, since the last call. */
  protected takeReadWoken(): ReplicatedStream[] {
    const out = this.#readWoken;
    this.#readWoken = [];
    return out;
  }

  /** Hands the reply of a blocking read of DB `db` to the few streams it names. */
  protected dispatchWoken(db: number, streams: ReplicatedStream[], reply: RespValue): void {
    if (!dispatchWoken(reply, { db, byId: this.byId, ...this.#context() })) {
      // Not one of this read's streams by id (cannot happen): match the slow way.
      this.#dispatch({ streams, fromHistory: false }, reply, new Set());
    }
  }

  /** Hands the entries of one XREADGROUP reply to their streams (see `_read_replies.ts`). */
  #dispatch(read: PlannedRead, reply: RespValue, got: Set<ReplicatedStream>): void {
    const { read: items, before } = this.#command.split(reply);
    for (const s of read.streams) s.probed = true;
    const context = { ...this.#context(read.count), fromHistory: read.fromHistory, got, before };
    dispatchInOrder(read.streams, items, context);
  }

  /** `count`: entries per stream that the read asked for (a full one: more is there). */
  #context(count = this.options.batchSize): DispatchContext {
    return { batchSize: count, deliver: this.hooks.deliver, passedBy: this.hooks.passedBy };
  }

  async #failedRead(
    error: unknown,
    wanting: ReplicatedStream[],
    signal: AbortSignal,
  ): Promise<void> {
    const outcome = await settleFailedRead(error, wanting, {
      where: this.conn.where,
      hooks: this.hooks,
      onError: this.options.onError,
      isolate: (streams) => this.#isolate(streams),
    });
    if (outcome) await sleep(this.#backoff.next(outcome.connection), signal);
  }

  /** Reads each stream alone (non-blocking) to find those that are gone. */
  #isolate(streams: ReplicatedStream[]): Promise<void> {
    return isolateStreams(streams, {
      hooks: this.hooks,
      owns: (stream) => this.#streams.has(stream),
      readAlone: async (stream) => (await this.send(stream.ref.db, [{ streams: [stream] }], 0))[0],
      dispatch: (stream, reply) => {
        const read = { streams: [stream], fromHistory: stream.history !== undefined };
        this.#dispatch(read, reply, new Set());
      },
    });
  }
}
