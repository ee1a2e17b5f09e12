/**
 * Where the consumer groups this tool made at "$" started: one hash per
 * group on the source (`redis-stream-sync:starts:<group length>:<group>`,
 * field: the stream key, value: the ID the group began after), in the
 * stream's DB. With STREAM_START_ID=$ the entries before that point were
 * passed on purpose; the entries after it were delivered, so a target
 * stream that lost all of them while the tool was stopped is told from one
 * that never held any. A user that may not write the hash loses only that.
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import { getLog } from "../../log.ts";
import { type RedisClient, text } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const log = getLog("replicator");

/** The hash of the start points of `group`. */
export function startPointsKey(group: string): string {
  return `redis-stream-sync:starts:${new TextEncoder().encode(group).length}:${group}`;
}

/** Records where the groups of `points` (made now at "$") began. */
export async function recordStartPoints(
  control: RedisClient,
  points: ReadonlyArray<{ stream: ReplicatedStream; at: string }>,
  options: { group: string },
): Promise<void> {
  const key = startPointsKey(options.group);
  for (const [db, list] of groupBy(points, (p) => p.stream.ref.db)) {
    const replies = await control.pipeline(
      db,
      list.map((p) => ["HSET", key, p.stream.ref.key, p.at]),
    ).catch((error) => [{ status: "rejected" as const, reason: error }]);
    const failed = replies.find((r) => r.status === "rejected");
    if (failed) {
      log.debug("Recording where groups began failed: {error}", {
        error: errorMessage((failed as PromiseRejectedResult).reason),
      });
    }
  }
}

/** Where the groups of `streams` began, as recorded (those with none are left out). */
export async function readStartPoints(
  control: RedisClient,
  streams: readonly ReplicatedStream[],
  options: { group: string },
): Promise<Map<ReplicatedStream, string>> {
  const key = startPointsKey(options.group);
  const out = new Map<ReplicatedStream, string>();
  for (const [db, list] of groupBy(streams, (s) => s.ref.db)) {
    const replies = await control.pipeline(db, list.map((s) => ["HGET", key, s.ref.key]));
    list.forEach((s, i) => {
      const r = replies[i];
      if (r.status === "fulfilled" && r.value !== null && r.value !== undefined) {
        out.set(s, text(r.value));
      }
    });
  }
  return out;
}
