/**
 * Group maintenance on a timer: every tick the engine looks after the
 * streams whose check is due (claims what other consumers left pending,
 * removes idle consumers; see `engine.maintain`).
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import { getLog } from "../../log.ts";
import type { Scheduler } from "../scheduler.ts";

const log = getLog("orchestrator");

/** How often group maintenance looks for streams due, at most. */
const MAINTENANCE_TICK_MS = 1000;

/** Options for {@linkcode keepMaintaining}. */
export interface KeepMaintainingOptions {
  /** The run's scheduler. */
  scheduler: Scheduler;
  /** STREAM_PENDING_CHECK_INTERVAL in milliseconds: a tick is at most a quarter of it. */
  everyMs: number;
}

/** Calls `maintain` every tick until `signal` aborts; a failure is logged at DEBUG. */
export async function keepMaintaining(
  maintain: () => Promise<void>,
  signal: AbortSignal,
  options: KeepMaintainingOptions,
): Promise<void> {
  const tick = Math.max(50, Math.min(MAINTENANCE_TICK_MS, options.everyMs / 4));
  while (!signal.aborted) {
    await options.scheduler.sleep(tick, signal);
    if (signal.aborted) return;
    try {
      await maintain();
    } catch (error) {
      log.debug("Group maintenance failed: {error}", { error: errorMessage(error) });
    }
  }
}
