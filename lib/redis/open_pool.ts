/**
 * The one place that picks the pool of a side: a cluster's when
 * `*_REDIS_CLUSTER` is set, else one server's.
 *
 * @module
 */
import type { RedisServerConfig } from "../config/mod.ts";
import { ClusterPool } from "./cluster_pool.ts";
import { ConnectionPool, type ConnectionPoolOptions } from "./pool.ts";
import type { ServerPool } from "./server_pool.ts";

/** The pool for `server`: a cluster's when `*_REDIS_CLUSTER` is set, else one server's. */
export function openPool(
  role: string,
  server: RedisServerConfig,
  options: ConnectionPoolOptions,
): ServerPool {
  return server.cluster
    ? new ClusterPool(role, server, options)
    : new ConnectionPool(role, server, options);
}
