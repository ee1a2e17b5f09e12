/**
 * Heartbeats (HEARTBEAT_INTERVAL): every interval this instance adds a small
 * entry to the heartbeat stream on the source (`XADD <key> MAXLEN ~ 1000 *
 * instance <consumer>`), which the run copies like any other stream (the
 * discovery names it whatever the patterns), so that the delay of the copy
 * is measured even while no application writes.
 *
 * With several instances each writes its own (the `instance` field says
 * whose): none depends on another being alive, and whichever holds the
 * stream's lease copies them all. `MAXLEN ~ 1000` keeps the source's stream
 * small; only an outage of about 1000 intervals (divided by the instances)
 * loses heartbeats before they are copied, reported as any trim before copy.
 *
 * A source that refuses the write (a read-only replica, a user without
 * `+xadd`) is said once at WARNING; the heartbeats are tried again every
 * interval (nothing more is said until one is written again), the copy goes
 * on regardless.
 *
 * @module
 */
import type { HeartbeatSettings } from "../../config/mod.ts";
import { errorMessage, RedisReplyError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import type { RedisClient } from "../../redis/mod.ts";
import type { Scheduler } from "../scheduler.ts";

const log = getLog("orchestrator");

/** What {@linkcode keepBeating} needs. */
export interface HeartbeatOptions {
  /** Where and how often; undefined: no heartbeats (it returns at once). */
  settings: HeartbeatSettings | undefined;
  /** This instance's consumer name: the `instance` field of its heartbeats. */
  instance: string;
  /** The one timer. */
  scheduler: Scheduler;
}

/**
 * Writes a heartbeat at once (started before the first discovery pass, the
 * stream exists when that pass names it), then every interval, until
 * `signal` aborts; never rejects.
 */
export async function keepBeating(
  source: RedisClient,
  signal: AbortSignal,
  options: HeartbeatOptions,
): Promise<void> {
  const { settings, instance, scheduler } = options;
  if (!settings) return;
  const { db, key } = settings.stream;
  const command = ["XADD", key, "MAXLEN", "~", String(settings.maxlen), "*", "instance", instance];
  const label = `db${db}:${key}`;
  let refused = false;
  while (!signal.aborted) {
    try {
      await source.send(db, command);
      if (refused) log.info("Heartbeats are written to {stream} again", { stream: label });
      refused = false;
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof RedisReplyError) {
        if (!refused) {
          log.warning(
            "The source refuses the heartbeats (HEARTBEAT_INTERVAL) to {stream}: {error}; the copy goes on without them",
            { stream: label, error: error.message },
          );
        }
        refused = true;
      } else {
        // The source is away: said by its health, the next interval tries again.
        log.debug("A heartbeat to {stream} failed: {error}", {
          stream: label,
          error: errorMessage(error),
        });
      }
    }
    await scheduler.sleep(settings.everyMs, signal);
  }
}
