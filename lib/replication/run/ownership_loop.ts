/**
 * The loop that acts on ownership every third of STREAM_LEASE_TTL: streams
 * whose lease was lost stop at once, acquired ones start, and those another
 * live instance should copy are handed over (their writes finish, then the
 * lease is given back). One INFO line per tick says what moved.
 *
 * @module
 */
import { errorMessage, InstanceConflictError, isRetriableError } from "../../errors.ts";
import { counted, getLog } from "../../log.ts";
import type { ReplicationEngine } from "./engine.ts";
import type { LeaseChanges, Ownership } from "../sharing/ownership.ts";
import type { Scheduler } from "../scheduler.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import type { StreamTable } from "./stream_table.ts";

const log = getLog("leases");

/** Held streams looked at per tick for those neither running nor starting (see the loop). */
const STRAYS_LOOKED_PER_TICK = 10_000;

/** What the loop acts on. */
export interface OwnershipLoopOptions {
  /** The one timer. */
  scheduler: Scheduler;
  /** STREAM_LEASE_TTL in milliseconds. */
  ttlMs: number;
  /** The engine (streams stop and are handed over there). */
  engine: ReplicationEngine;
  /** The one table of this instance's streams (which run here, which are starting or waiting). */
  table: StreamTable;
  /** Starts streams whose lease was acquired (begun with the table's `beginStart`). */
  start(refs: StreamRef[]): Promise<void>;
  /**
   * Counts leases lost and handed over (for metrics; acquisitions are counted by the ownership).
   * @default {undefined}
   */
  onChange?: (change: LeaseChanges) => void;
}

/**
 * Runs until `signal` aborts; see the module doc. Rejects with
 * {@linkcode InstanceConflictError} when this instance's id was taken.
 */
export async function keepOwnership(
  ownership: Ownership,
  signal: AbortSignal,
  options: OwnershipLoopOptions,
): Promise<void> {
  const { scheduler, ttlMs, engine, table } = options;
  /** Held streams found neither running nor starting in the last round of looks. */
  let strays = new Set<string>();
  /** Those found so in this round. */
  let marking = new Set<string>();
  /** The held bucket this tick's look begins at (a round goes over them all). */
  let at = 0;
  let due = Date.now();
  while (!signal.aborted) {
    // On a deadline, not after the work of the last tick: renewals keep their pace.
    due += ttlMs / 3;
    await scheduler.sleep(Math.max(0, due - Date.now()), signal);
    if (signal.aborted) return;
    due = Math.max(due, Date.now() - ttlMs / 3);
    try {
      // Starting from now (not those running or starting here: a start of many streams may
      // take several ticks, and a discovery pass may be taking their leases now).
      const candidates = table.beginStart(table.waiting);
      const tick = await ownership.tick(candidates).catch((error) => {
        table.notTaken(candidates);
        throw error;
      });
      const taken = new Set(tick.acquired);
      table.notTaken(candidates.filter((ref) => !taken.has(ref)));
      if (tick.expiredBuckets) {
        const fields = {
          bucketCount: counted(tick.expiredBuckets.count, "bucket"),
          streamCount: counted(tick.expired.length, "stream"),
          seconds: (tick.expiredBuckets.sinceRenewalMs / 1000).toFixed(1),
          ttl: ttlMs / 1000,
          buckets: tick.expiredBuckets.count,
          streams: tick.expired.length,
        };
        if (tick.expiredBuckets.sinceRenewalMs < ttlMs) {
          // Renewed within the TTL, and gone: not a pause. Someone else removed the keys.
          log.warning(
            "The leases of {bucketCount} ({streamCount}) were gone before their TTL ran out: renewed {seconds} s before, STREAM_LEASE_TTL is {ttl} s, so something else removed them on the source (DEL, FLUSHALL, or an eviction: its maxmemory-policy should be noeviction). Their streams stop and are taken again; what they read and did not write stays pending and is copied on",
            fields,
          );
        } else {
          log.warning(
            "The leases of {bucketCount} ({streamCount}) expired before this instance renewed them: it did not renew for {seconds} s (paused, or cut off from the source), longer than STREAM_LEASE_TTL ({ttl} s). Their streams stop and are taken again; what they read and did not write stays pending and is copied on",
            fields,
          );
        }
      }
      for (const list of [tick.lost, tick.expired]) {
        for (const ref of list) {
          const stream = table.running(ref.id);
          if (stream) engine.release(stream); // waits to be taken again (the table's onEnd)
        }
      }
      if (tick.acquired.length > 0) {
        options.start(tick.acquired).catch((error) =>
          log.debug("Starting streams failed: {error}", { error: errorMessage(error) })
        );
      }
      // Held but not running (a start failed): given back when a second round of looks finds
      // it so. A tick looks at STRAYS_LOOKED_PER_TICK streams at most, bucket by bucket, going
      // on where the last stopped (at 100,000 streams a look at all of them every tick, three
      // map lookups each, was a fifth of the idle main thread); below that, a round a tick.
      const buckets = ownership.leases.buckets;
      let looked = 0;
      for (let n = 0; n < buckets.length && looked < STRAYS_LOOKED_PER_TICK; n++) {
        if (at >= buckets.length) {
          at = 0;
          strays = marking;
          marking = new Set();
        }
        for (const ref of buckets[at++].members.values()) {
          looked++;
          if (table.running(ref.id) || table.isStarting(ref.id) || table.isHandingOver(ref.id)) {
            continue;
          }
          if (taken.has(ref)) continue;
          if (strays.has(ref.id)) ownership.release([ref]).catch(() => {});
          else marking.add(ref.id);
        }
      }
      if (at >= buckets.length) {
        at = 0;
        strays = marking;
        marking = new Set();
      }
      // A bucket another instance should hold: its streams' writes finish, then it is given back.
      const moving: StreamRef[] = [];
      for (const held of tick.surplus) {
        ownership.leases.leave(held.bucket.id);
        const streams = [...held.members.values()].filter((ref) => table.beginHandOver(ref.id));
        moving.push(...streams);
        Promise.allSettled(
          streams.map((ref) =>
            engine.handOver(table.running(ref.id)!, ttlMs).finally(() => table.handedOver(ref.id))
          ),
        )
          .then(() => ownership.leases.releaseBuckets([held]))
          .catch((error) =>
            log.debug("Giving back the lease of bucket {bucket} failed: {error}", {
              bucket: held.bucket.id,
              error: errorMessage(error),
            })
          );
      }
      const ended = tick.lost.length + tick.expired.length + moving.length;
      if (tick.acquired.length + ended > 0) {
        log.info(
          "Leases: {taken} taken, {lostCount} lost to other instances, {expiredCount} expired, {moved} handed over; {heldCount} held",
          {
            taken: counted(tick.acquired.length, "stream"),
            lostCount: tick.lost.length,
            expiredCount: tick.expired.length,
            moved: moving.length,
            heldCount: counted(ownership.leases.size, "bucket"),
            acquired: tick.acquired.length,
            lost: tick.lost.length,
            expired: tick.expired.length,
            moving: moving.length,
            held: ownership.leases.size,
          },
        );
        if (ended > 0) {
          options.onChange?.({
            acquired: 0,
            takenOver: 0,
            lost: tick.lost.length,
            expired: tick.expired.length,
            handedOver: moving.length,
          });
        }
      }
    } catch (error) {
      if (error instanceof InstanceConflictError) throw error;
      const say = isRetriableError(error) ? "debug" : "warning";
      log[say]("Renewing leases failed: {error}", { error: errorMessage(error) });
    }
  }
}
