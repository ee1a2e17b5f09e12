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
import { clusterSlot, type RedisClient } from "../../redis/mod.ts";
import { ACQUIRE, RELEASE, RENEW, TAKE_OVER } from "./_lease_scripts.ts";
import { groupBy } from "../_group_by.ts";
import { leaseKey } from "./lease_key.ts";
import type { StreamRef } from "../stream/stream_ref.ts";

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
  /**
   * What this instance's leases start with: `<instance id>/<token>`; each
   * acquisition adds `.<n>`, so that a read left over from an earlier
   * acquisition by this same process never passes the fence.
   */
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

/** A held lease: its stream and the value of this acquisition. */
interface Held {
  ref: StreamRef;
  value: string;
}

/** The leases this instance holds, and the calls that take, renew and give them back. */
export class LeaseKeeper {
  readonly #conn: RedisClient;
  readonly #o: LeaseKeeperOptions;
  /** Held leases by stream id. */
  readonly #held = new Map<string, Held>();
  readonly #keys = new WeakMap<StreamRef, Uint8Array>();
  /** Streams whose lease is being taken or given back now, by id. */
  readonly #busy = new Set<string>();
  #acquisitions = 0;

  constructor(conn: RedisClient, options: LeaseKeeperOptions) {
    this.#conn = conn;
    this.#o = options;
  }

  /** The value the lease of `ref` holds for this instance ("" when it holds none). */
  valueOf(ref: StreamRef): string {
    return this.#held.get(ref.id)?.value ?? "";
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
   * Takes the leases of `refs` that are free. Streams whose lease is held,
   * being taken or being given back here are left out: a stream is acquired
   * once. Every reply that came is applied before a failure is thrown.
   */
  async acquire(refs: readonly StreamRef[]): Promise<AcquireResult> {
    const result: AcquireResult = { acquired: [], heldBy: new Map(), values: new Map() };
    const asked = refs.filter((r) => !this.#held.has(r.id) && !this.#busy.has(r.id));
    const values = new Map(asked.map((r) => [r.id, this.#newValue()]));
    for (const r of asked) this.#busy.add(r.id);
    try {
      await this.#perCall(asked, {
        script: ACQUIRE,
        head: [String(this.#ttl())],
        perKey: [(r) => values.get(r.id)!],
      }, (ref, reply) => {
        if (reply === 1) {
          this.#held.set(ref.id, { ref, value: values.get(ref.id)! });
          result.acquired.push(ref);
          return;
        }
        const holder = String(reply);
        result.values.set(ref, holder);
        result.heldBy.set(
          ref,
          holder.includes("/") ? holder.slice(0, holder.indexOf("/")) : holder,
        );
      });
    } finally {
      for (const r of asked) this.#busy.delete(r.id);
    }
    return result;
  }

  /**
   * Takes over the leases of `all` whose holder is known to be gone, each
   * only if it still holds the value seen (compare and set); returns those
   * taken.
   */
  async takeOver(all: ReadonlyArray<{ ref: StreamRef; value: string }>): Promise<StreamRef[]> {
    const out: StreamRef[] = [];
    const taken = all.filter((t) => !this.#held.has(t.ref.id) && !this.#busy.has(t.ref.id));
    const seen = new Map(taken.map((t) => [t.ref.id, t.value]));
    const values = new Map(taken.map((t) => [t.ref.id, this.#newValue()]));
    for (const t of taken) this.#busy.add(t.ref.id);
    try {
      await this.#perCall(taken.map((t) => t.ref), {
        script: TAKE_OVER,
        head: [String(this.#ttl())],
        perKey: [(r) => values.get(r.id)!, (r) => seen.get(r.id)!],
      }, (ref, reply) => {
        if (reply !== 1) return;
        this.#held.set(ref.id, { ref, value: values.get(ref.id)! });
        out.push(ref);
      });
    } finally {
      for (const t of taken) this.#busy.delete(t.ref.id);
    }
    return out;
  }

  /**
   * Renews every lease held; returns the streams whose lease was found
   * taken or expired (no longer held: their replication must stop), also
   * when a part of the renewal failed (connection lost): that failure comes
   * beside them, and the leases it could not renew stay held until the next
   * renewal tells.
   */
  async renew(): Promise<{ lost: StreamRef[]; failure?: unknown }> {
    const lost: StreamRef[] = [];
    const held = [...this.#held.values()];
    const values = new Map(held.map((h) => [h.ref.id, h.value]));
    return await this.#perCall(held.map((h) => h.ref), {
      script: RENEW,
      head: [String(this.#ttl())],
      perKey: [(r) => values.get(r.id)!],
    }, (ref, reply) => {
      // Only if still this acquisition (it may have been released meanwhile).
      if (reply === 1 || this.#held.get(ref.id)?.value !== values.get(ref.id)) return;
      this.#held.delete(ref.id);
      lost.push(ref);
    }).then(() => ({ lost }), (failure) => ({ lost, failure }));
  }

  /** Gives the leases of `refs` back (those still holding the value of their acquisition). */
  async release(refs: readonly StreamRef[]): Promise<void> {
    const mine = refs.filter((r) => this.#held.has(r.id) && !this.#busy.has(r.id));
    const values = new Map(mine.map((r) => [r.id, this.#held.get(r.id)!.value]));
    for (const r of refs) this.#held.delete(r.id);
    for (const r of mine) this.#busy.add(r.id);
    try {
      await this.#perCall(mine, { script: RELEASE, head: [], perKey: [(r) => values.get(r.id)!] });
    } finally {
      for (const r of mine) this.#busy.delete(r.id);
    }
  }

  /**
   * Gives back leases that are not held any more here (their stream ended
   * as handed over), each only if it still holds the value given.
   */
  async releaseValues(list: ReadonlyArray<{ ref: StreamRef; value: string }>): Promise<void> {
    const values = new Map(list.map((l) => [l.ref.id, l.value]));
    const refs = list.filter((l) => l.value !== "" && !this.#held.has(l.ref.id)).map((l) => l.ref);
    await this.#perCall(refs, { script: RELEASE, head: [], perKey: [(r) => values.get(r.id)!] });
  }

  /** Stops renewing the lease of stream `id`, without a call (another instance holds it now). */
  forget(id: string): void {
    this.#held.delete(id);
  }

  /** Every stream whose lease is held. */
  get held(): StreamRef[] {
    return [...this.#held.values()].map((h) => h.ref);
  }

  #newValue(): string {
    return `${this.#o.value}.${++this.#acquisitions}`;
  }

  #ttl(): number {
    return Math.max(1000, Math.round(this.#o.ttlMs));
  }

  /**
   * One script call per DB and chunk of keys: `KEYS` the lease keys, `ARGV`
   * `head` then, for each `perKey` function in turn, its value for every
   * key. `each` gets every key's reply; chunks that failed are thrown after
   * the others were applied.
   */
  async #perCall(
    refs: readonly StreamRef[],
    call: { script: string; head: string[]; perKey: Array<(ref: StreamRef) => string> },
    each: (ref: StreamRef, reply: unknown) => void = () => {},
  ): Promise<void> {
    let failure: unknown;
    // In a cluster, one call per slot (a script's keys must share one); all the calls of a DB
    // in one pipeline (a cluster client splits it per master: one round trip for all slots).
    const cluster = this.#conn.cluster;
    const slotOf = (r: StreamRef) => cluster ? clusterSlot(this.keyOf(r)) : 0;
    for (const list of groupBy(refs, (r) => r.db).values()) {
      const db = list[0].db;
      const chunks: StreamRef[][] = [];
      for (const group of groupBy(list, slotOf).values()) {
        for (let i = 0; i < group.length; i += KEYS_PER_CALL) {
          chunks.push(group.slice(i, i + KEYS_PER_CALL));
        }
      }
      let replies: PromiseSettledResult<unknown>[];
      try {
        replies = await this.#conn.pipeline(
          db,
          chunks.map((chunk) => [
            "EVAL",
            call.script,
            String(chunk.length),
            ...chunk.map((r) => this.keyOf(r)),
            ...call.head,
            ...call.perKey.flatMap((f) => chunk.map(f)),
          ]),
        );
      } catch (error) {
        failure ??= error; // the other DBs are still renewed
        continue;
      }
      replies.forEach((r, c) => {
        if (r.status === "rejected") {
          failure ??= r.reason;
          return;
        }
        const values = Array.isArray(r.value) ? r.value : [];
        chunks[c].forEach((ref, i) => each(ref, values[i]));
      });
    }
    if (failure !== undefined) throw failure;
  }
}
