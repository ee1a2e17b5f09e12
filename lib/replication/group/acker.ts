/**
 * Acknowledgements on the source: an entry is acked (XACK) once it, and
 * every earlier entry of its stream, is confirmed on the target (the writer
 * hands over whole writes, in order, one at a time per stream). The acks of
 * every stream leave together in one pipeline (one per DB): at the end of
 * the tick when there are many, within a few milliseconds when they trickle.
 *
 * @module
 */
import { errorMessage, isRetriableError, RedisReplyError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import type { RawEntry, RedisClient, RespWriter } from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const log = getLog("replicator");

/** Acks queued beyond this leave at the end of the tick; fewer wait for {@linkcode ACK_DELAY_MS}. */
const FLUSH_AT_ONCE = 1000;
/**
 * How long a trickle of acks waits to share one write with more: the
 * entries are on the target already; a later ack only keeps them pending
 * a moment longer (and saves the source a command and a wake-up per entry).
 */
const ACK_DELAY_MS = 5;

/** What the acknowledger tells the engine. */
export interface AckHooks {
  /** `count` acks of `stream` were applied on the source. */
  acked(stream: ReplicatedStream, count: number): void;
  /** Acks of `stream` failed: its entries stay pending (claimed again and found on the target). */
  failed(stream: ReplicatedStream, error: unknown): void;
}

interface Ack {
  stream: ReplicatedStream;
  ids: Array<string | RawEntry>;
}

/** Sends the streams' acks, coalesced per tick. */
export class Acknowledger {
  readonly #conn: RedisClient;
  readonly #group: string;
  readonly #hooks: AckHooks;
  #queue = new Map<ReplicatedStream, Array<string | RawEntry>>();
  #flushQueued = false;
  #queued = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight = 0;
  #idleWaiters: Array<() => void> = [];
  /** Acks of each stream queued or in flight, and who waits for them. */
  readonly #perStream = new Map<ReplicatedStream, { count: number; waiters: Array<() => void> }>();

  constructor(conn: RedisClient, group: string, hooks: AckHooks) {
    this.#conn = conn;
    this.#group = group;
    this.#hooks = hooks;
  }

  /** Acks of `stream` sent or queued and not answered yet. */
  get inflight(): number {
    return this.#inflight + this.#queue.size;
  }

  /** Whether acks of `stream` are queued or in flight. */
  busy(stream: ReplicatedStream): boolean {
    return this.#perStream.has(stream);
  }

  /** Queues the acks of `ids` (of `stream`), sent at the end of the tick. */
  ack(stream: ReplicatedStream, ids: ReadonlyArray<string | RawEntry>): void {
    if (ids.length === 0) return;
    const list = this.#queue.get(stream);
    if (list) { for (const id of ids) list.push(id); }
    else {
      // One entry of the queue, answered by one XACK: counted once.
      this.#queue.set(stream, [...ids]);
      const busy = this.#perStream.get(stream);
      if (busy) busy.count++;
      else this.#perStream.set(stream, { count: 1, waiters: [] });
    }

    this.#queued += ids.length;
    if (this.#queued >= FLUSH_AT_ONCE) {
      // Enough for a full pipeline: at the end of this tick.
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    } else if (this.#timer === undefined && !this.#flushQueued) {
      // A trickle (live traffic): acks wait a moment and share one write to the source.
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flush();
      }, ACK_DELAY_MS);
    }
  }

  /**
   * Resolves once every ack of `stream` queued so far was answered (those
   * waiting for company are sent now).
   */
  whenStreamIdle(stream: ReplicatedStream): Promise<void> {
    const busy = this.#perStream.get(stream);
    if (!busy) return Promise.resolve();
    if (this.#queue.has(stream) && !this.#flushQueued) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
    return new Promise((resolve) => busy.waiters.push(resolve));
  }

  /** Resolves once every ack queued so far was answered. */
  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** One ack call of `stream` was answered (or failed). */
  #settled(stream: ReplicatedStream): void {
    const busy = this.#perStream.get(stream);
    if (!busy || --busy.count > 0) return;
    this.#perStream.delete(stream);
    for (const resolve of busy.waiters) resolve();
  }

  /** Drops the acks not sent yet (shutdown: their entries stay pending, on the target already). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = new Map();
    this.#queued = 0;
    for (const busy of this.#perStream.values()) for (const resolve of busy.waiters) resolve();
    this.#perStream.clear();
    if (this.#inflight === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    this.#queued = 0;
    // One pipeline per DB and node (a cluster's master of the key).
    const byRoute = new Map<string, Ack[]>();
    for (const [stream, ids] of this.#queue) {
      const route = `${stream.ref.db}/${this.#conn.nodeOf(stream.ref.key)}`;
      const list = byRoute.get(route);
      if (list) list.push({ stream, ids });
      else byRoute.set(route, [{ stream, ids }]);
    }
    this.#queue = new Map();
    for (const acks of byRoute.values()) this.#send(acks[0].stream.ref.db, acks);
  }

  async #send(db: number, acks: Ack[]): Promise<void> {
    this.#inflight++;
    const group = this.#group;
    try {
      let replies;
      try {
        const conn = this.#conn.connectionFor(acks[0].stream.ref.key);
        replies = await conn.batch(db, acks.length, (w: RespWriter) => {
          for (const { stream, ids } of acks) {
            w.arrayHeader(3 + ids.length);
            w.bulk("XACK");
            w.bulk(stream.ref.key);
            w.bulk(group);
            for (const id of ids) {
              if (typeof id === "string") w.bulk(id);
              else w.bulkSlice(id.buffer, id.idStart, id.idEnd);
            }
          }
        }, { name: "XACK" });
      } catch (error) {
        for (const { stream } of acks) this.#hooks.failed(stream, error);
        return;
      }
      acks.forEach(({ stream, ids }, i) => {
        const reply = replies[i];
        if (reply instanceof RedisReplyError) {
          if (!isRetriableError(reply) && reply.code !== "NOGROUP" && reply.code !== "WRONGTYPE") {
            log.error("XACK on {stream} failed: {error}", {
              stream: stream.ref.label,
              error: errorMessage(reply),
            });
          }
          this.#hooks.failed(stream, reply);
        } else this.#hooks.acked(stream, ids.length);
      });
    } finally {
      for (const { stream } of acks) this.#settled(stream);
      this.#inflight--;
      if (this.inflight === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }
}
