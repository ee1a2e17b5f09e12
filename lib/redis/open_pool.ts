/**
 * The one place that picks the pool of a side: a cluster's when
 * `*_REDIS_CLUSTER` is set, else one server's; its endpoint made from the
 * configuration by `endpoint.ts` (the pools themselves take no configuration).
 *
 * @module
 */
import type { RedisServerConfig } from "../config/mod.ts";
import { ClusterPool } from "./cluster_pool.ts";
import { endpointFor } from "./endpoint.ts";
import { ConnectionPool, type ConnectionPoolOptions } from "./pool.ts";
import type { ServerPool } from "./server_pool.ts";

/** The pool for `server`: a cluster's when `*_REDIS_CLUSTER` is set, else one server's. */
export function openPool(
  role: string,
  server: RedisServerConfig,
  options: Omit<ConnectionPoolOptions, "poolSize">,
): ServerPool {
  const endpoint = endpointFor(role, server, { healthChecks: true });
  const pool = { ...options, poolSize: server.poolSize };
  return server.cluster
    ? new ClusterPool(role, endpoint, pool)
    : new ConnectionPool(role, endpoint, pool);
}
