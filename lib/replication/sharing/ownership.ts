/**
 * Which streams this instance copies when several share a consumer group:
 * it registers itself (`instances.ts`), holds the lease of each bucket of
 * streams it copies (`lease.ts`), and every third of STREAM_LEASE_TTL
 * renews its entry and its leases, takes the free buckets it should hold
 * (of the streams found), and hands over those another live instance
 * should hold. A bucket is preferred by one live instance (rendezvous
 * hash); a bucket left free for a TTL (its preferred instance does not know
 * its streams) is taken by any instance.
 *
 * @module
 */
import type { SharingSettings } from "../../config/mod.ts";
import { Backoff } from "../../backoff.ts";
import { errorMessage, InstanceConflictError, isRetriableError } from "../../errors.ts";
import { counted, getLog } from "../../log.ts";
import type { RedisClient } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import { type InstanceIdentity, InstanceRegistry, type InstanceStatus } from "./instances.ts";
import { ConnectedInstances } from "./_connected_instances.ts";
import { OlderVersionGate } from "./_older_versions.ts";
import { type HeldBucket, LeaseKeeper, NOTHING_GIVEN_BACK, preferredOwner } from "./lease.ts";
import type { Scheduler } from "../scheduler.ts";
import type { StreamRef } from "../stream/stream_ref.ts";

const log = getLog("leases");

/** What one {@linkcode Ownership.tick} found. */
export interface OwnershipTick {
  /** Streams whose bucket's lease was found taken by another acquisition: stop them now. */
  lost: StreamRef[];
  /**
   * Streams whose bucket's lease had expired (not renewed in time: this
   * instance was paused or cut off): stop them now; they are taken again.
   */
  expired: StreamRef[];
  /** How many buckets had expired, and how long before this renewal the last one was (ms). */
  expiredBuckets?: { count: number; sinceRenewalMs: number };
  /** Streams acquired now: start them. */
  acquired: StreamRef[];
  /** Buckets held whose preferred instance is another live one: hand them over. */
  surplus: HeldBucket[];
}

/** Leases that changed hands in one step, by how. */
export interface LeaseChanges {
  /** Taken while free. */
  acquired: number;
  /** Taken from instances that are gone (no connection to the source). */
  takenOver: number;
  /** Found taken by another instance. */
  lost: number;
  /**
   * Found expired (this instance did not renew them in time).
   * @default {0}
   */
  expired?: number;
  /** Given to the instance that should hold them. */
  handedOver: number;
}

/** Options of {@linkcode Ownership}. */
export interface OwnershipOptions {
  /**
   * Called with the leases that changed hands (for metrics).
   * @default {undefined}
   */
  onChange?: (change: LeaseChanges) => void;
  /** Group, consumer name, lease TTL, instance id, source DB. */
  settings: SharingSettings;
  /** `run --once`: take every stream (no sharing), waiting for leases held by others. */
  once: boolean;
  /**
   * The host name for automatic instance ids.
   * @default {Deno.hostname()}
   */
  hostname?: string;
}

/** This instance's share of the streams; see the module doc. */
export class Ownership {
  readonly #conn: RedisClient;
  readonly #o: OwnershipOptions;
  readonly #registry: InstanceRegistry;
  #leases: LeaseKeeper | undefined;
  /** Buckets found without a lease at every look since (ms since epoch), by id. */
  readonly #seenFree = new Map<string, number>();
  /** The holder of each stream this instance does not hold, as last seen, by stream id. */
  readonly #holders = new Map<string, string>();
  #lastLive: readonly string[] = [];
  /** Which instances have a connection to the source. */
  readonly #connected: ConnectedInstances;
  /** Buckets taken because nobody preferred took them (not handed back), by id. */
  readonly #unclaimed = new Set<string>();
  /** Not while instances of an older version run, nor for a TTL after. */
  readonly #older: OlderVersionGate;
  /** When the last renewal that reached every held bucket began (ms since epoch). */
  #renewedAt = Date.now();
  /** `run --once`: since when each stream has been waited for (ms since epoch). */
  readonly #waitingSince = new Map<string, number>();

  constructor(conn: RedisClient, options: OwnershipOptions) {
    this.#conn = conn;
    this.#o = options;
    const { settings } = options;
    this.#connected = new ConnectedInstances(conn);
    this.#older = new OlderVersionGate(settings.group, settings.ttlMs);
    this.#registry = new InstanceRegistry(conn, {
      group: settings.group,
      db: settings.db,
      ttlMs: settings.ttlMs,
      instanceId: settings.instanceId,
      consumerName: settings.consumerName,
      hostname: options.hostname,
      passive: options.once,
    });
  }

  /** Registers this instance; its identity names its consumer and its leases. */
  async register(signal: AbortSignal): Promise<InstanceIdentity> {
    const identity = await this.#registry.register(signal);
    this.#leases = new LeaseKeeper(this.#conn, {
      group: this.#o.settings.group,
      value: identity.leaseValue,
      ttlMs: this.#o.settings.ttlMs,
      cluster: this.#conn.cluster,
    });
    this.#lastLive = this.#registry.live;
    if (this.#o.once && this.#registry.older.length > 0) {
      throw new InstanceConflictError(
        `Instances of an older version of redis-stream-sync (one lease per stream) run in group "${this.#o.settings.group}": ${
          this.#registry.older.join(", ")
        }. Their leases and this version's do not exclude each other; stop them first`,
      );
    }
    log.info("Instance {id} (consumer {consumer}); {instances} of group {group} live", {
      instances: counted(this.#registry.live.length, "instance"),
      id: identity.id,
      consumer: identity.consumer,
      count: this.#registry.live.length,
      group: this.#o.settings.group,
    });
    return identity;
  }

  /**
   * Registers this instance, retrying while the source cannot be reached;
   * undefined when `signal` aborts first.
   */
  async registerWithRetry(
    signal: AbortSignal,
    options: {
      scheduler: Scheduler;
      backoffBaseMs: number;
      backoffMaxMs: number;
      onRetry: (error: unknown) => void;
      /** Called with the id: the names of the connections opened from now on carry it. */
      named: (id: string) => void;
    },
  ): Promise<InstanceIdentity | undefined> {
    const backoff = new Backoff({ baseMs: options.backoffBaseMs, maxMs: options.backoffMaxMs });
    while (!signal.aborted) {
      try {
        const identity = await this.register(signal);
        // Connection names carry the instance id: the others can tell when this one is gone.
        options.named(identity.id);
        await this.#conn.rename(`control@${identity.id}`).catch(() => {});
        return identity;
      } catch (error) {
        if (signal.aborted) return undefined;
        if (!isRetriableError(error)) throw error;
        options.onRetry(error);
        await options.scheduler.sleep(backoff.next(), signal);
      }
    }
    return undefined;
  }

  /**
   * `run --once`: the streams of `refs` still to wait for (not `done`).
   * One held by a live instance for more than two TTLs is left to it (said
   * once, `leftToOthers`).
   */
  stillWaiting(
    refs: readonly StreamRef[],
    options: { done: (id: string) => boolean; leftToOthers: (ref: StreamRef) => void },
  ): StreamRef[] {
    const now = Date.now();
    const ttlMs = this.#o.settings.ttlMs;
    return refs.filter((ref) => {
      if (options.done(ref.id)) return false;
      const since = this.#waitingSince.get(ref.id) ?? now;
      this.#waitingSince.set(ref.id, since);
      const holder = this.holderOf(ref.id);
      if (now - since > 2 * ttlMs && holder !== undefined && this.#lastLive.includes(holder)) {
        log.warning("Stream {stream} is being copied by instance {holder}; left to it", {
          stream: ref.label,
          holder,
        });
        options.leftToOthers(ref);
        return false;
      }
      return true;
    });
  }

  /** The leases (after {@linkcode Ownership.register}): the readers' fence. */
  get leases(): LeaseKeeper {
    if (!this.#leases) throw new Error("Ownership.register() first");
    return this.#leases;
  }

  /** Who this instance is, the live ones, its leases (after {@linkcode Ownership.register}). */
  status(): InstanceStatus {
    const { id, consumer } = this.#registry.identity;
    return { id, consumer, live: [...this.#lastLive], leases: this.leases.size };
  }

  /** At `run --once`'s end: the consumers whose pending entries nobody else copies. */
  answersFor(consumer: string): (name: string) => boolean {
    const live = new Set(this.#lastLive.map((id) => `${this.#o.settings.consumerName}-${id}`));
    return (name) => name === consumer || !live.has(name);
  }

  /** The live instances at the last tick, this one included. */
  get live(): readonly string[] {
    return this.#lastLive;
  }

  /** The instance last seen holding stream `id` (undefined when this one holds it or none). */
  holderOf(id: string): string | undefined {
    return this.#holders.get(id);
  }

  /**
   * Takes the leases of those of `candidates` (streams found and not
   * running here) this instance should copy now.
   */
  async take(candidates: readonly StreamRef[]): Promise<StreamRef[]> {
    const leases = this.leases;
    if (!this.#older.mayTake(this.#registry.older)) return [];
    const me = this.#registry.identity.id;
    // Instances gone (no connection) drop out at once, not when their entry expires.
    if (!this.#o.once) this.#lastLive = await this.#connected.withoutGone(this.#lastLive, me);
    const live = this.#lastLive.length > 0 ? this.#lastLive : [me];
    const ttlMs = this.#o.settings.ttlMs;
    const wanted: StreamRef[] = [];
    const others: StreamRef[] = [];
    const unclaimed = new Set<string>();
    for (const ref of candidates) {
      const bucket = leases.bucketOf(ref).id;
      if (this.#o.once || preferredOwner(bucket, live) === me) wanted.push(ref);
      else if (Date.now() - (this.#seenFree.get(bucket) ?? Infinity) >= ttlMs) {
        wanted.push(ref);
        unclaimed.add(bucket);
      } else others.push(ref);
    }
    await this.#lookFree(others);
    const { acquired, heldBy, values } = await leases.acquire(wanted);
    const free = acquired.length;
    let takenOver = 0;
    if (heldBy.size > 0) {
      // A holder with no connection to the source is gone (killed, crashed): its leases are
      // taken over now, not after their TTL (safe if it comes back: its reads check the
      // lease). The list of the look above when there was one (one CLIENT LIST per take).
      const connected = this.#o.once ? await this.#connected.look() : this.#connected.last;
      if (connected) {
        // An earlier acquisition of this instance (its release failed) is taken back too.
        const orphans = [...heldBy].filter(([, h]) => h === me || !connected.has(h));
        const taken = await leases.takeOver(
          orphans.map(([ref]) => ({ ref, value: values.get(ref)! })),
        );
        for (const ref of taken) heldBy.delete(ref);
        acquired.push(...taken);
        takenOver = taken.length;
        if (taken.length > 0) {
          log.info("Took over {count} streams from instances that are gone: {from}", {
            count: taken.length,
            from: [...new Set(orphans.map(([, h]) => h))].join(", "),
          });
        }
      }
    }
    for (const ref of acquired) {
      const bucket = leases.bucketOf(ref).id;
      this.#holders.delete(ref.id);
      this.#seenFree.delete(bucket);
      // Nobody preferred took it: not handed back to the preferred instance, which does not.
      if (unclaimed.has(bucket)) this.#unclaimed.add(bucket);
    }
    for (const [ref, holder] of heldBy) this.#holders.set(ref.id, holder);
    if (acquired.length > 0) {
      this.#o.onChange?.({ acquired: free, takenOver, lost: 0, handedOver: 0 });
    }
    return acquired;
  }

  /**
   * Renews this instance's entry and its leases, then takes what it should
   * among `candidates`; says which streams stop, start and move.
   */
  async tick(candidates: readonly StreamRef[]): Promise<OwnershipTick> {
    const leases = this.leases;
    // Leases first (not to expire for a registry not written); what a part that answered
    // found lost is stopped even when another part failed.
    const started = Date.now();
    const renewal = await leases.renew();
    const { lost, expired } = renewal;
    const expiredBuckets = renewal.expiredBuckets > 0
      ? { count: renewal.expiredBuckets, sinceRenewalMs: started - this.#renewedAt }
      : undefined;
    if (renewal.failure !== undefined) {
      log.debug("Renewing leases failed: {error}", { error: errorMessage(renewal.failure) });
      return { lost, expired, expiredBuckets, acquired: [], surplus: [] };
    }
    this.#renewedAt = started;
    let live = this.#lastLive;
    try {
      live = await this.#registry.heartbeat();
    } catch (error) {
      if (error instanceof InstanceConflictError || !isRetriableError(error)) throw error;
      log.debug("Renewing this instance's entry failed: {error}", { error: errorMessage(error) });
    }
    const before = this.#lastLive;
    this.#lastLive = live;
    if (this.#registry.older.length > 0 && leases.size > 0) {
      // Their per-stream leases do not exclude this instance's buckets: every stream here stops.
      const held = leases.held;
      await leases.releaseAll();
      this.#older.mayTake(this.#registry.older);
      return { lost: [...lost, ...held], expired, expiredBuckets, acquired: [], surplus: [] };
    }
    // One look for instances that are gone (no connection): in take(), as on a discovery pass.
    const acquired = await this.take(candidates);
    live = this.#lastLive;
    if (live.join(",") !== before.join(",")) {
      log.info("Instances of group {group} live: {live}", {
        group: this.#o.settings.group,
        live: live.join(", "),
      });
    }
    const me = this.#registry.identity.id;
    for (const id of this.#unclaimed) if (!leases.holdsBucket(id)) this.#unclaimed.delete(id);
    const surplus = this.#o.once
      ? []
      : leases.buckets.filter((h) =>
        !this.#unclaimed.has(h.bucket.id) && !leases.isLeaving(h.bucket.id) &&
        preferredOwner(h.bucket.id, live) !== me
      );
    return { lost, expired, expiredBuckets, acquired, surplus };
  }

  /**
   * A stream ended here. `released` (lost, or handed over: the loop gives
   * its bucket back): nothing to give back. Else its bucket is given back
   * now when none of its streams runs here any more (or it expires after
   * STREAM_LEASE_TTL).
   */
  ended(ref: StreamRef, released: boolean): void {
    if (!this.#leases) return;
    if (released) this.#leases.forget(ref);
    else {
      const giving = this.#leases.release([ref]);
      // A failed give-back is no loss (the lease expires after STREAM_LEASE_TTL); no handler
      // made for the streams whose bucket stays held (most of them).
      if (giving !== NOTHING_GIVEN_BACK) giving.catch(() => {});
    }
  }

  /** The streams of `refs` stopped here: their buckets are given back when nothing of them runs here. */
  release(refs: readonly StreamRef[]): Promise<void> {
    return refs.length > 0 ? this.leases.release(refs) : NOTHING_GIVEN_BACK;
  }

  /** At shutdown: every lease back, this instance out of the registry. */
  async stop(): Promise<void> {
    if (!this.#leases) return;
    await this.#leases.releaseAll();
    await this.#registry.unregister();
  }

  /** Notes, for the buckets of streams this instance would not take yet, since when they are free. */
  async #lookFree(refs: readonly StreamRef[]): Promise<void> {
    const leases = this.leases;
    const seen = new Set<string>();
    const buckets = [...groupBy(refs, (r) => leases.bucketOf(r).id).values()].map((l) => l[0]);
    for (const [db, list] of groupBy(buckets, (r) => r.db)) {
      const replies = await this.#conn.pipeline(
        db,
        list.map((r) => ["EXISTS", leases.keyOf(r)]),
      );
      list.forEach((ref, i) => {
        const r = replies[i];
        if (r.status !== "fulfilled") return;
        const id = leases.bucketOf(ref).id;
        seen.add(id);
        if (Number(r.value) !== 0) this.#seenFree.delete(id);
        else if (!this.#seenFree.has(id)) this.#seenFree.set(id, Date.now());
      });
    }
    for (const id of this.#seenFree.keys()) if (!seen.has(id)) this.#seenFree.delete(id);
  }
}
