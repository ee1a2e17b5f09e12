/**
 * The loop that acts on ownership every third of STREAM_LEASE_TTL: streams
 * whose lease was lost stop at once, acquired ones start, and those another
 * live instance should copy are handed over (their writes finish, then the
 * lease is given back). One INFO line per tick says what moved.
 *
 * @module
 */
import { errorMessage, InstanceConflictError, isRetriableError } from "../errors.ts";
import { getLog } from "../log.ts";
import type { ReplicationEngine } from "./engine.ts";
import type { LeaseChanges, Ownership } from "./ownership.ts";
import type { Scheduler } from "./scheduler.ts";
import type { ReplicatedStream } from "./stream.ts";
import type { StreamRef } from "./stream_ref.ts";

const log = getLog("leases");

/** What the loop acts on. */
export interface OwnershipLoopOptions {
  /** The one timer. */
  scheduler: Scheduler;
  /** STREAM_LEASE_TTL in milliseconds. */
  ttlMs: number;
  /** The engine (streams stop and are handed over there). */
  engine: ReplicationEngine;
  /** Streams found and not running here. */
  waiting(): readonly StreamRef[];
  /** The streams running here, by id. */
  active(): ReadonlyMap<string, ReplicatedStream>;
  /** Whether stream `id` is being started here now. */
  starting(id: string): boolean;
  /** Starts streams whose lease was acquired. */
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
  const { scheduler, ttlMs, engine } = options;
  const handing = new Set<string>();
  /** Held streams found neither running nor starting at the last tick. */
  let strays = new Set<string>();
  let due = Date.now();
  while (!signal.aborted) {
    // On a deadline, not after the work of the last tick: renewals keep their pace.
    due += ttlMs / 3;
    await scheduler.sleep(Math.max(0, due - Date.now()), signal);
    if (signal.aborted) return;
    due = Math.max(due, Date.now() - ttlMs / 3);
    try {
      const active = options.active();
      const tick = await ownership.tick(options.waiting().filter((r) => !active.has(r.id)));
      for (const ref of tick.lost) {
        const stream = active.get(ref.id);
        if (stream) engine.release(stream);
      }
      if (tick.acquired.length > 0) {
        options.start(tick.acquired).catch((error) =>
          log.debug("Starting streams failed: {error}", { error: errorMessage(error) })
        );
      }
      // Held but not running (a start failed): given back at the second look.
      const now = new Set<string>();
      for (const ref of ownership.leases.held) {
        if (active.has(ref.id) || options.starting(ref.id) || handing.has(ref.id)) continue;
        if (tick.acquired.includes(ref)) continue;
        if (strays.has(ref.id)) ownership.release([ref]).catch(() => {});
        else now.add(ref.id);
      }
      strays = now;
      const moving = tick.surplus.filter((ref) => !handing.has(ref.id) && active.has(ref.id));
      for (const ref of moving) {
        handing.add(ref.id);
        // The value of this acquisition: the stream's end forgets the lease before it is given back.
        const value = ownership.leases.valueOf(ref);
        engine.handOver(active.get(ref.id)!, ttlMs)
          .then(() => ownership.leases.releaseValues([{ ref, value }]))
          .catch((error) =>
            log.debug("Giving back the lease of {stream} failed: {error}", {
              stream: ref.label,
              error: errorMessage(error),
            })
          )
          .finally(() => handing.delete(ref.id));
      }
      if (tick.lost.length + tick.acquired.length + moving.length > 0) {
        log.info(
          "Leases: {acquired} streams taken, {lost} lost to other instances, {moving} handed over; {held} held",
          {
            acquired: tick.acquired.length,
            lost: tick.lost.length,
            moving: moving.length,
            held: ownership.leases.size,
          },
        );
        if (tick.lost.length + moving.length > 0) {
          options.onChange?.({
            acquired: 0,
            takenOver: 0,
            lost: tick.lost.length,
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
