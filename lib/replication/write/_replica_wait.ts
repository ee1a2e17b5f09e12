/**
 * TARGET_WAIT_REPLICAS: a write counts as done only once that many replicas
 * of the target confirmed it (`WAIT n timeout` after it, on the connection
 * that wrote it). The careful path, which may only confirm entries an
 * earlier write put there (perhaps on another connection), first sends a
 * `PUBLISH`: it sets the connection's replication offset to the server's
 * (as a write does), so the `WAIT` after it covers everything the target
 * had before, whoever wrote it. On a Redis Cluster too (measured on 7.0.15:
 * a cluster sends PUBLISH over its bus, not to replicas, but the offset is
 * set all the same; `tests/cluster_failover_test.ts` checks it with a
 * stopped replica). Internal to the writer.
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import type { RedisConnection, RespValue, RespWriter } from "../../redis/mod.ts";

/** The channel of the PUBLISH that moves a connection's replication offset (nobody listens). */
export const WAIT_CHANNEL = "redis-stream-sync:wait";

/** How many replicas, for how long. */
export interface ReplicaWait {
  /** Replicas that must confirm (> 0). */
  replicas: number;
  /** Milliseconds one WAIT waits. */
  timeoutMs: number;
}

/** Appends `WAIT replicas timeoutMs` to a pipeline. */
export function encodeWait(out: RespWriter, wait: ReplicaWait): void {
  out.command(["WAIT", String(wait.replicas), String(wait.timeoutMs)]);
}

/**
 * The error of a WAIT reply that confirms fewer than `wait.replicas`
 * (NOREPLICAS, retriable), or undefined when enough did.
 */
export function waitShortfall(reply: RespValue, wait: ReplicaWait): RedisReplyError | undefined {
  if (reply instanceof RedisReplyError) return reply;
  const confirmed = typeof reply === "number" ? reply : Number(reply);
  if (confirmed >= wait.replicas) return undefined;
  return new RedisReplyError(
    `NOREPLICAS ${confirmed} of the ${wait.replicas} replicas of the target required ` +
      `(TARGET_WAIT_REPLICAS) confirmed the write within ${wait.timeoutMs} ms`,
  );
}

/**
 * Waits until `wait.replicas` replicas hold everything the target holds
 * now (PUBLISH, then WAIT, on `conn`).
 *
 * @throws {RedisReplyError} NOREPLICAS when fewer confirmed in time.
 */
export async function confirmReplicas(
  conn: RedisConnection,
  db: number,
  wait: ReplicaWait,
): Promise<void> {
  const [published, reply] = await conn.batch(db, 2, (out) => {
    out.command(["PUBLISH", WAIT_CHANNEL, ""]);
    encodeWait(out, wait);
  }, { blockMs: wait.timeoutMs, name: "PUBLISH/WAIT" });
  if (published instanceof RedisReplyError) throw published;
  const error = waitShortfall(reply, wait);
  if (error) throw error;
}
