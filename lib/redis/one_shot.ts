/**
 * A connection for one command line's work (`check`, `status`, `verify`)
 * to a configured server, with its endpoint from `endpointFor`.
 *
 * @module
 */
import type { RedisServerConfig } from "../config/mod.ts";
import type { RedisClient } from "./client.ts";
import { ClusterClient } from "./cluster_client.ts";
import { ClusterRouter } from "./cluster_router.ts";
import { RedisConnection } from "./connection.ts";
import { endpointFor } from "./endpoint.ts";

/** Options for {@linkcode connectionFor}. */
export interface ConnectionForOptions {
  /** The DB selected when the connection opens. */
  db: number;
  /**
   * What the connection is for, the last part of its CLIENT SETNAME.
   * @default {"cli"}
   */
  purpose?: string;
}

/**
 * A connection for a one-shot command (`check`, `status`, `verify`) to a
 * configured server, named `redis-stream-sync-<role>-<purpose>`.
 */
export function connectionFor(
  role: string,
  server: RedisServerConfig,
  options: ConnectionForOptions,
): RedisConnection {
  const { db, purpose = "cli" } = options;
  return new RedisConnection(endpointFor(role, server), { db, name: `${role}-${purpose}` });
}

/**
 * A client for a one-shot command: {@linkcode connectionFor}'s connection
 * for one server, a client of the whole cluster (each command sent to its
 * key's master) when `*_REDIS_CLUSTER` is set.
 */
export function clientFor(
  role: string,
  server: RedisServerConfig,
  options: ConnectionForOptions,
): RedisClient {
  if (!server.cluster) return connectionFor(role, server, options);
  const router = new ClusterRouter(endpointFor(role, server), {
    name: `${role}-${options.purpose ?? "cli"}`,
  });
  return new ClusterClient(router);
}
