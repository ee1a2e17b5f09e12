/**
 * Stream leases: a key per stream on the source (`lease_key.ts`), set with
 * NX and an expiry, holding this instance's lease value, renewed every
 * third of STREAM_LEASE_TTL while the instance lives. Only the holder reads
 * the stream, and its reads check the lease in the same script
 * (`_lease_scripts.ts` FENCED_READ): an instance that lost its lease
 * (paused past the expiry, cut off) can never take new entries again.
 *
 * Which instance should hold a stream: the one of the live instances with
 * the highest rendezvous hash of (instance, stream), so the streams spread
 * evenly and only the streams of an instance that comes or goes move.
 *
 * @module
 */
import type { RedisConnection } from "../redis/connection.ts";
import { ACQUIRE, RELEASE, RENEW, TAKE_OVER } from "./_lease_scripts.ts";
import { groupBy } from "./_group_by.ts";
import { leaseKey } from "./lease_key.ts";
import type { StreamRef } from "./stream_ref.ts";

/** Lease keys per script call. */
const KEYS_PER_CALL = 500;

/**
 * The live instance that should hold `streamId`: the highest rendezvous
 * hash. `live` must not be empty.
 */
export function preferredOwner(streamId: string, live: readonly string[]): string {
  let best = live[0];
  let bestHash = -1;
  for (const id of live) {
    const h = fnv1a(`${id}\n${streamId}`);
    if (h > bestHash || (h === bestHash && id < best)) {
      best = id;
      bestHash = h;
    }
  }
  return best;
}

/** 32-bit FNV-1a of a string's UTF-16 code units, then mixed (murmur3 finaliser). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Options of {@linkcode LeaseKeeper}. */
export interface LeaseKeeperOptions {
  /** The consumer group (part of each lease key). */
  group: string;
  /** What this instance's leases hold. */
  value: string;
  /** STREAM_LEASE_TTL in milliseconds. */
  ttlMs: number;
}

/** The outcome of {@linkcode LeaseKeeper.acquire}. */
export interface AcquireResult {
  /** Streams whose lease this instance holds now. */
  acquired: StreamRef[];
  /** The others, with the instance that holds each (the part of its value before `/`). */
  heldBy: Map<StreamRef, string>;
  /** The others, with the whole value their lease holds. */
  values: Map<StreamRef, string>;
}

/** The leases this instance holds, and the calls that take, renew and give them back. */
export class LeaseKeeper {
  readonly #conn: RedisConnection;
  readonly #o: LeaseKeeperOptions;
  /** Held leases by stream id. */
  readonly #held = new Map<string, StreamRef>();
  readonly #keys = new WeakMap<StreamRef, Uint8Array>();
  /** Streams whose lease is being taken or given back now, by id. */
  readonly #busy = new Set<string>();

  constructor(conn: RedisConnection, options: LeaseKeeperOptions) {
    this.#conn = conn;
    this.#o = options;
  }

  /** What the leases hold (the fenced scripts compare with it). */
  get value(): string {
    return this.#o.value;
  }

  /** How many leases this instance holds. */
  get size(): number {
    return this.#held.size;
  }

  /** Whether this instance holds the lease of stream `id`. */
  holds(id: string): boolean {
    return this.#held.has(id);
  }

  /** The lease key of `ref` (cached). */
  keyOf(ref: StreamRef): Uint8Array {
    let key = this.#keys.get(ref);
    if (!key) {
      key = leaseKey(ref.key, { group: this.#o.group });
      this.#keys.set(ref, key);
    }
    return key;
  }

  /**
   * Takes the leases of `refs` that are free (or hold this instance's value
   * without being known here). Streams whose lease is held, being taken or
   * being given back here are left out: a stream is acquired once.
   */
  async acquire(refs: readonly StreamRef[]): Promise<AcquireResult> {
    const result: AcquireResult = { acquired: [], heldBy: new Map(), values: new Map() };
    const asked = refs.filter((r) => !this.#held.has(r.id) && !this.#busy.has(r.id));
    for (const r of asked) this.#busy.add(r.id);
    try {
      await this.#acquire(asked, result);
    } finally {
      for (const r of asked) this.#busy.delete(r.id);
    }
    return result;
  }

  async #acquire(refs: readonly StreamRef[], result: AcquireResult): Promise<void> {
    await this.#perCall(refs, [ACQUIRE, this.#o.value, String(this.#ttl())], (ref, reply) => {
      if (reply === 1) {
        this.#held.set(ref.id, ref);
        result.acquired.push(ref);
      } else {
        const holder = String(reply);
        result.values.set(ref, holder);
        result.heldBy.set(
          ref,
          holder.includes("/") ? holder.slice(0, holder.indexOf("/")) : holder,
        );
      }
    });
  }

  /**
   * Renews every lease held; returns the streams whose lease was found
   * taken or expired (no longer held: their replication must stop). A
   * failed call (connection lost) throws, and the leases stay held until
   * the next renewal tells.
   */
  async renew(): Promise<StreamRef[]> {
    const lost: StreamRef[] = [];
    await this.#perCall(
      [...this.#held.values()],
      [RENEW, this.#o.value, String(this.#ttl())],
      (ref, reply) => {
        if (reply !== 1) {
          this.#held.delete(ref.id);
          lost.push(ref);
        }
      },
    );
    return lost;
  }

  /**
   * Takes over the leases of `taken` whose holder is known to be gone, each
   * only if it still holds the value seen (compare and set); returns those
   * taken.
   */
  async takeOver(all: ReadonlyArray<{ ref: StreamRef; value: string }>): Promise<StreamRef[]> {
    const out: StreamRef[] = [];
    const taken = all.filter((t) => !this.#held.has(t.ref.id) && !this.#busy.has(t.ref.id));
    for (const [db, list] of groupBy(taken, (t) => t.ref.db)) {
      for (let i = 0; i < list.length; i += KEYS_PER_CALL) {
        const chunk = list.slice(i, i + KEYS_PER_CALL);
        const reply = await this.#conn.send(db, [
          "EVAL",
          TAKE_OVER,
          String(chunk.length),
          ...chunk.map((t) => this.keyOf(t.ref)),
          this.#o.value,
          String(this.#ttl()),
          ...chunk.map((t) => t.value),
        ]);
        const values = Array.isArray(reply) ? reply : [];
        chunk.forEach((t, j) => {
          if (values[j] !== 1) return;
          this.#held.set(t.ref.id, t.ref);
          out.push(t.ref);
        });
      }
    }
    return out;
  }

  /** Gives the leases of `refs` back (only those still holding this instance's value). */
  async release(refs: readonly StreamRef[]): Promise<void> {
    for (const ref of refs) this.#held.delete(ref.id);
    const mine = refs.filter((r) => !this.#busy.has(r.id));
    for (const r of mine) this.#busy.add(r.id);
    try {
      await this.#release(mine);
    } finally {
      for (const r of mine) this.#busy.delete(r.id);
    }
  }

  async #release(refs: readonly StreamRef[]): Promise<void> {
    for (const [db, list] of groupBy(refs, (r) => r.db)) {
      for (let i = 0; i < list.length; i += KEYS_PER_CALL) {
        const chunk = list.slice(i, i + KEYS_PER_CALL);
        await this.#conn.send(db, [
          "EVAL",
          RELEASE,
          String(chunk.length),
          ...chunk.map((r) => this.keyOf(r)),
          this.#o.value,
        ]);
      }
    }
  }

  /** Forgets a lease without a call (its stream ended; the lease expires or is released later). */
  forget(id: string): void {
    this.#held.delete(id);
  }

  /** Every stream whose lease is held. */
  get held(): StreamRef[] {
    return [...this.#held.values()];
  }

  #ttl(): number {
    return Math.max(1000, Math.round(this.#o.ttlMs));
  }

  /** One script call per DB and chunk of keys; `each` gets every key's reply. */
  async #perCall(
    refs: readonly StreamRef[],
    [script, ...args]: string[],
    each: (ref: StreamRef, reply: unknown) => void,
  ): Promise<void> {
    for (const [db, list] of groupBy(refs, (r) => r.db)) {
      const calls: Uint8Array[][] = [];
      const chunks: StreamRef[][] = [];
      for (let i = 0; i < list.length; i += KEYS_PER_CALL) {
        const chunk = list.slice(i, i + KEYS_PER_CALL);
        chunks.push(chunk);
        calls.push(chunk.map((r) => this.keyOf(r)));
      }
      const replies = await this.#conn.pipeline(
        db,
        calls.map((keys) => ["EVAL", script, String(keys.length), ...keys, ...args]),
      );
      replies.forEach((r, c) => {
        if (r.status === "rejected") throw r.reason;
        const values = Array.isArray(r.value) ? r.value : [];
        chunks[c].forEach((ref, i) => each(ref, values[i]));
      });
    }
  }
}
