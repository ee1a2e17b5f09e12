/**
 * Stream leases, held by bucket: a key per bucket of streams on the source
 * (`lease_key.ts`: a stream's bucket is its cluster slot, or that modulo
 * 256 on one server), set with NX and an expiry, holding this instance's
 * lease value, renewed every third of STREAM_LEASE_TTL while the instance
 * lives: a renewal costs the same at 100 or 100,000 streams. Only the
 * holder reads the streams of a bucket, and its reads check the lease in
 * the same script (`_lease_scripts.ts` FENCED_READ): an instance that lost
 * a bucket (paused past the expiry, cut off) can never take new entries of
 * its streams again.
 *
 * Which instance should hold a bucket: the one of the live instances with
 * the highest rendezvous hash of (instance, bucket), so the buckets spread
 * evenly and only the buckets of an instance that comes or goes move.
 *
 * @module
 */
import type { RedisClient } from "../../redis/mod.ts";
import { ACQUIRE, RELEASE, RENEW, TAKE_OVER } from "./_lease_scripts.ts";
import { groupBy } from "../_group_by.ts";
import { bucketLeaseKey, STANDALONE_BUCKETS } from "./lease_key.ts";

export { preferredOwner } from "./_rendezvous.ts";
import type { StreamRef } from "../stream/stream_ref.ts";

/** Lease keys per script call. */
const KEYS_PER_CALL = 500;
/** What {@linkcode Lease.release} returns when no bucket is to be given back. */
export const NOTHING_GIVEN_BACK: Promise<void> = Promise.resolve();

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
  /**
   * The source is a Redis Cluster (a bucket is a slot).
   * @default {false}
   */
  cluster?: boolean;
}

/** A bucket of streams of one DB: the unit of the leases. */
export interface Bucket {
  /** `db<n>:<bucket>`. */
  id: string;
  /** The DB of its streams and of its lease key. */
  db: number;
  /** Its number (a cluster's slot). */
  n: number;
}

/** The outcome of {@linkcode LeaseKeeper.acquire}. */
export interface AcquireResult {
  /** Streams whose bucket this instance holds now. */
  acquired: StreamRef[];
  /** The others, with the instance that holds each (the part of its value before `/`). */
  heldBy: Map<StreamRef, string>;
  /** The others, with the whole value their bucket's lease holds. */
  values: Map<StreamRef, string>;
}

/** The outcome of {@linkcode LeaseKeeper.renew}. */
export interface RenewResult {
  /** Streams of the buckets found held by another acquisition. */
  lost: StreamRef[];
  /** Streams of the buckets whose lease key was gone (expired, or deleted). */
  expired: StreamRef[];
  /** How many buckets those are. */
  expiredBuckets: number;
  /** The renewal failed in part (the buckets it did not reach stay held). */
  failure?: unknown;
}

/** A held bucket: the value of this acquisition, and the streams of it that run here. */
export interface HeldBucket {
  /** The bucket. */
  bucket: Bucket;
  /** The value its lease holds for this acquisition. */
  value: string;
  /** Its streams this instance copies (or starts), by id. */
  members: Map<string, StreamRef>;
  /**
   * Its streams that stopped here without a call ({@linkcode LeaseKeeper.forget}: a
   * read found the lease gone first), by id: counted with the bucket's when its renewal
   * finds it lost or expired.
   */
  forgotten?: Map<string, StreamRef>;
}

/** The buckets this instance holds, and the calls that take, renew and give them back. */
export class LeaseKeeper {
  readonly #conn: RedisClient;
  readonly #o: LeaseKeeperOptions;
  /** Held buckets by id. */
  readonly #held = new Map<string, HeldBucket>();
  /**
   * Each bucket once, by DB and number, shared by its streams. A stream's
   * bucket number comes from its slot (computed once, with its name), not
   * from a map of streams: a WeakMap of 100,000 streams took 4.2 MB, and
   * every full collection had to walk it as ephemerons.
   */
  readonly #bucketsByDb = new Map<number, Bucket[]>();
  readonly #keys = new Map<string, Uint8Array>();
  /** Buckets whose lease is being taken or given back now, by id. */
  readonly #busy = new Set<string>();
  /** Held buckets being handed over: none of their streams starts here any more. */
  readonly #leaving = new Set<string>();
  #acquisitions = 0;

  constructor(conn: RedisClient, options: LeaseKeeperOptions) {
    this.#conn = conn;
    this.#o = options;
  }

  /** The bucket of `ref`. */
  bucketOf(ref: StreamRef): Bucket {
    const db = ref.db;
    const slot = ref.slot;
    const n = this.#o.cluster ? slot : slot % STANDALONE_BUCKETS; // bucketOf, no options made
    let buckets = this.#bucketsByDb.get(db);
    if (!buckets) this.#bucketsByDb.set(db, buckets = []);
    return buckets[n] ??= { id: `db${db}:${n}`, db, n };
  }

  /** The value the lease of `ref`'s bucket holds for this instance ("" when it holds none). */
  valueOf(ref: StreamRef): string {
    return this.#held.get(this.bucketOf(ref).id)?.value ?? "";
  }

  /** The lease key of `ref`'s bucket. */
  keyOf(ref: StreamRef): Uint8Array {
    return this.#keyOfBucket(this.bucketOf(ref));
  }

  /** How many buckets this instance holds. */
  get size(): number {
    return this.#held.size;
  }

  /** Whether this instance holds bucket `id`. */
  holdsBucket(id: string): boolean {
    return this.#held.has(id);
  }

  /** Every stream of a held bucket that runs (or starts) here. */
  get held(): StreamRef[] {
    return [...this.#held.values()].flatMap((h) => [...h.members.values()]);
  }

  /** The held buckets. */
  get buckets(): HeldBucket[] {
    return [...this.#held.values()];
  }

  /**
   * Takes the buckets of `refs`: a stream whose bucket is held here (and
   * not being handed over) is acquired at once, the free buckets are
   * taken. Buckets being taken or given back here are left out. Every reply
   * that came is applied before a failure is thrown.
   */
  async acquire(refs: readonly StreamRef[]): Promise<AcquireResult> {
    const result: AcquireResult = { acquired: [], heldBy: new Map(), values: new Map() };
    const ask: Array<{ bucket: Bucket; refs: StreamRef[] }> = [];
    for (const list of groupBy(refs, (r) => this.bucketOf(r).id).values()) {
      const bucket = this.bucketOf(list[0]);
      const held = this.#held.get(bucket.id);
      if (held) {
        if (this.#leaving.has(bucket.id)) continue;
        for (const r of list) {
          held.members.set(r.id, r);
          held.forgotten?.delete(r.id);
        }
        result.acquired.push(...list);
      } else if (!this.#busy.has(bucket.id)) ask.push({ bucket, refs: list });
    }
    const values = new Map(ask.map((a) => [a.bucket.id, this.#newValue()]));
    for (const a of ask) this.#busy.add(a.bucket.id);
    try {
      await this.#perCall(ask, {
        script: ACQUIRE,
        head: [String(this.#ttl())],
        perKey: [(a) => values.get(a.bucket.id)!],
      }, (a, reply) => {
        const value = values.get(a.bucket.id)!;
        if (reply === 1) {
          this.#held.set(a.bucket.id, {
            bucket: a.bucket,
            value,
            members: new Map(a.refs.map((r) => [r.id, r])),
          });
          result.acquired.push(...a.refs);
          return;
        }
        const holder = String(reply);
        const instance = holder.includes("/") ? holder.slice(0, holder.indexOf("/")) : holder;
        for (const r of a.refs) {
          result.values.set(r, holder);
          result.heldBy.set(r, instance);
        }
      });
    } finally {
      for (const a of ask) this.#busy.delete(a.bucket.id);
    }
    return result;
  }

  /**
   * Takes over the buckets of the streams of `all` whose holder is known to
   * be gone, each only if its lease still holds the value seen (compare and
   * set); returns the streams taken.
   */
  async takeOver(all: ReadonlyArray<{ ref: StreamRef; value: string }>): Promise<StreamRef[]> {
    const out: StreamRef[] = [];
    const ask: Array<{ bucket: Bucket; refs: StreamRef[]; seen: string }> = [];
    for (const list of groupBy(all, (t) => this.bucketOf(t.ref).id).values()) {
      const bucket = this.bucketOf(list[0].ref);
      if (this.#held.has(bucket.id) || this.#busy.has(bucket.id)) continue;
      ask.push({ bucket, refs: list.map((t) => t.ref), seen: list[0].value });
    }
    const values = new Map(ask.map((a) => [a.bucket.id, this.#newValue()]));
    for (const a of ask) this.#busy.add(a.bucket.id);
    try {
      await this.#perCall(ask, {
        script: TAKE_OVER,
        head: [String(this.#ttl())],
        perKey: [(a) => values.get(a.bucket.id)!, (a) => a.seen],
      }, (a, reply) => {
        if (reply !== 1) return;
        this.#held.set(a.bucket.id, {
          bucket: a.bucket,
          value: values.get(a.bucket.id)!,
          members: new Map(a.refs.map((r) => [r.id, r])),
        });
        out.push(...a.refs);
      });
    } finally {
      for (const a of ask) this.#busy.delete(a.bucket.id);
    }
    return out;
  }

  /**
   * Renews every bucket held; returns the streams of those found no longer
   * held (their replication must stop): `lost`, taken by another
   * acquisition, and `expired`, whose key is gone (this instance did not
   * renew it within the TTL: paused, cut off; or someone deleted it). Also
   * when a part of the renewal failed (connection lost): that failure comes
   * beside them, and the buckets it could not renew stay held until the
   * next renewal tells.
   */
  async renew(): Promise<RenewResult> {
    const out: RenewResult = { lost: [], expired: [], expiredBuckets: 0 };
    const held = [...this.#held.values()];
    return await this.#perCall(held.map((h) => ({ bucket: h.bucket, held: h })), {
      script: RENEW,
      head: [String(this.#ttl())],
      perKey: [(i) => i.held.value],
    }, ({ bucket, held: h }, reply) => {
      // Only if still this acquisition (it may have been released meanwhile).
      if (reply === 1 || this.#held.get(bucket.id) !== h) return;
      this.#held.delete(bucket.id);
      this.#leaving.delete(bucket.id);
      if (reply === 0) out.expiredBuckets++;
      const list = reply === 0 ? out.expired : out.lost;
      for (const ref of h.members.values()) list.push(ref);
      for (const ref of h.forgotten?.values() ?? []) list.push(ref); // stopped already
    }).then(() => out, (failure) => ({ ...out, failure }));
  }

  /**
   * The streams of `refs` stopped here: a bucket none of whose streams runs
   * here any more is given back (when it still holds the value of its
   * acquisition).
   */
  release(refs: readonly StreamRef[]): Promise<void> {
    let empty: HeldBucket[] | undefined;
    for (const r of refs) {
      const h = this.#held.get(this.bucketOf(r).id);
      if (!h || !h.members.delete(r.id)) continue;
      if (h.members.size === 0 && !this.#busy.has(h.bucket.id)) (empty ??= []).push(h);
    }
    // Most streams that end leave others in their bucket: nothing to send, nothing made (run
    // --once at 100,000 streams ends 100,000 of them, a few hundred buckets).
    return empty === undefined ? NOTHING_GIVEN_BACK : this.#giveBack(empty);
  }

  /**
   * Gives back the buckets of `buckets` (handed over: their streams ended
   * here), each only if its lease still holds the value given.
   */
  async releaseBuckets(buckets: readonly HeldBucket[]): Promise<void> {
    await this.#giveBack(buckets.filter((h) => this.#held.get(h.bucket.id) === h));
  }

  /** Bucket `id` is being handed over: none of its streams is acquired here any more. */
  leave(id: string): void {
    if (this.#held.has(id)) this.#leaving.add(id);
  }

  /** Whether bucket `id` is being handed over. */
  isLeaving(id: string): boolean {
    return this.#leaving.has(id);
  }

  /** The stream `ref` ended here without a call (its bucket was lost or is being handed over). */
  forget(ref: StreamRef): void {
    const h = this.#held.get(this.bucketOf(ref).id);
    if (h?.members.delete(ref.id)) (h.forgotten ??= new Map()).set(ref.id, ref);
  }

  /** Every bucket back (at shutdown). */
  async releaseAll(): Promise<void> {
    await this.#giveBack([...this.#held.values()]);
  }

  async #giveBack(buckets: readonly HeldBucket[]): Promise<void> {
    if (buckets.length === 0) return;
    const mine = buckets.filter((h) => !this.#busy.has(h.bucket.id));
    for (const h of mine) {
      this.#held.delete(h.bucket.id);
      this.#leaving.delete(h.bucket.id);
      this.#busy.add(h.bucket.id);
    }
    try {
      await this.#perCall(mine.map((h) => ({ bucket: h.bucket, held: h })), {
        script: RELEASE,
        head: [],
        perKey: [(i) => i.held.value],
      });
    } finally {
      for (const h of mine) this.#busy.delete(h.bucket.id);
    }
  }

  #keyOfBucket(bucket: Bucket): Uint8Array {
    let key = this.#keys.get(bucket.id);
    if (!key) {
      key = bucketLeaseKey(bucket.n, { group: this.#o.group, cluster: this.#o.cluster });
      this.#keys.set(bucket.id, key);
    }
    return key;
  }

  #newValue(): string {
    return `${this.#o.value}.${++this.#acquisitions}`;
  }

  #ttl(): number {
    return Math.max(1000, Math.round(this.#o.ttlMs));
  }

  /**
   * One script call per DB and chunk of buckets: `KEYS` the lease keys,
   * `ARGV` `head` then, for each `perKey` function in turn, its value for
   * every bucket. `each` gets every bucket's reply; chunks that failed are
   * thrown after the others were applied.
   */
  async #perCall<T extends { bucket: Bucket }>(
    items: readonly T[],
    call: { script: string; head: string[]; perKey: Array<(item: T) => string> },
    each: (item: T, reply: unknown) => void = () => {},
  ): Promise<void> {
    let failure: unknown;
    // In a cluster, one call per slot (a script's keys must share one); all the calls of a DB
    // in one pipeline (a cluster client splits it per master: one round trip for all slots).
    const cluster = this.#conn.cluster;
    for (const list of groupBy(items, (i) => i.bucket.db).values()) {
      const db = list[0].bucket.db;
      const chunks: T[][] = [];
      for (const group of groupBy(list, (i) => cluster ? i.bucket.n : 0).values()) {
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
            ...chunk.map((i) => this.#keyOfBucket(i.bucket)),
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
        chunks[c].forEach((item, i) => each(item, values[i]));
      });
    }
    if (failure !== undefined) throw failure;
  }
}
