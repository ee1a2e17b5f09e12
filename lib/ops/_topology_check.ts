/**
 * The start-up check of a server's topology: `*_REDIS_CLUSTER` must say
 * what the server is (a cluster node or not), and a cluster must give its
 * layout (`CLUSTER SLOTS`, which the ACL user must be allowed). Internal
 * to the ops folder.
 *
 * @module
 */
import type { RedisServerConfig } from "../config/mod.ts";
import { ConfigError, errorMessage, RedisReplyError } from "../errors.ts";
import { getLog } from "../log.ts";
import { type RedisConnection, serverAddress } from "../redis/mod.ts";

const log = getLog("check");

/** What {@linkcode checkTopology} found. */
export interface Topology {
  /** The server is a cluster node. */
  cluster: boolean;
  /** Masters that serve slots (cluster), else 1. */
  masters: number;
}

/**
 * Compares `*_REDIS_CLUSTER` with `INFO cluster` of the server behind
 * `conn`, and reads a cluster's layout.
 *
 * @throws {ConfigError} when the key and the server disagree, or the
 * server refuses `CLUSTER SLOTS`.
 */
export async function checkTopology(
  conn: RedisConnection,
  options: { role: string; server: RedisServerConfig },
): Promise<Topology> {
  const { role, server } = options;
  const key = `${role.toUpperCase()}_REDIS_CLUSTER`;
  const address = serverAddress(server);
  const info = String(await conn.send(undefined, ["INFO", "cluster"]));
  const enabled = /^cluster_enabled:1\b/m.test(info);
  if (server.cluster && !enabled) {
    throw new ConfigError(
      `${key} is true, but the ${role} "${address}" is not a cluster node (cluster_enabled:0): ` +
        `set ${key}=false, or give the address of a node of the cluster`,
    );
  }
  if (!server.cluster && enabled) {
    throw new ConfigError(
      `The ${role} "${address}" is a Redis Cluster node (cluster_enabled:1): set ${key}=true ` +
        "(a cluster's streams live on several masters)",
    );
  }
  if (!enabled) return { cluster: false, masters: 1 };
  let slots: unknown;
  try {
    slots = await conn.send(undefined, ["CLUSTER", "SLOTS"]);
  } catch (error) {
    if (error instanceof RedisReplyError) {
      throw new ConfigError(
        `The ${role} cluster "${address}" refused CLUSTER SLOTS: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    throw error;
  }
  const masters = new Set(
    (Array.isArray(slots) ? slots : []).map((r) =>
      Array.isArray(r) && Array.isArray(r[2]) ? `${r[2][0]}:${r[2][1]}` : ""
    ),
  ).size;
  const clusterInfo = String(await conn.send(undefined, ["CLUSTER", "INFO"]).catch(() => ""));
  const state = /^cluster_state:(\w+)/m.exec(clusterInfo)?.[1] ?? "unknown";
  if (state !== "ok") {
    log.warning(
      "The {role} cluster {address} says cluster_state:{state}; the service waits for it to be ok and keeps retrying",
      { role, address, state },
    );
  }
  return { cluster: true, masters };
}
