/**
 * The start-up checks of what the guarantees rest on: a source that is its
 * own target (the same server and DB with no prefix, or a prefix that the
 * discovery patterns match again) is refused; settings that can lose what
 * was copied are said at WARNING (a target that may evict stream keys, a
 * target that keeps nothing on disk, a source behind sentinels that accepts
 * writes without replicas), and a source that may evict the leases' keys. Internal to the ops folder.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { ConfigError, errorMessage, RedisReplyError } from "../errors.ts";
import { getLog } from "../log.ts";
import { globExample, globMatch, type RedisConnection, serverAddress } from "../redis/mod.ts";

const log = getLog("check");

/** What one server told about itself. */
export interface ServerFacts {
  /** INFO server `run_id` (undefined: not told). */
  runId?: string;
  /** CONFIG GET maxmemory-policy (undefined: refused). */
  maxmemoryPolicy?: string;
  /** Whether it writes its data to disk (AOF or RDB snapshots; undefined: refused). */
  persistent?: boolean;
  /** CONFIG GET min-replicas-to-write (undefined: refused). */
  minReplicasToWrite?: number;
}

/** Reads what {@linkcode judgeGuarantees} needs of a server (a refused CONFIG GET leaves its part out). */
export async function serverFacts(conn: RedisConnection): Promise<ServerFacts> {
  const facts: ServerFacts = {};
  const info = String(await conn.send(undefined, ["INFO", "server"]));
  facts.runId = /^run_id:(\w+)/m.exec(info)?.[1];
  const config = async (name: string): Promise<string | undefined> => {
    try {
      const reply = await conn.send(undefined, ["CONFIG", "GET", name]);
      return Array.isArray(reply) && reply.length >= 2 ? String(reply[1]) : undefined;
    } catch (error) {
      if (!(error instanceof RedisReplyError)) throw error;
      log.debug("CONFIG GET {name} refused: {error}", { name, error: errorMessage(error) });
      return undefined;
    }
  };
  facts.maxmemoryPolicy = await config("maxmemory-policy");
  const [appendonly, save] = [await config("appendonly"), await config("save")];
  if (appendonly !== undefined && save !== undefined) {
    facts.persistent = appendonly === "yes" || save.trim() !== "";
  }
  const min = await config("min-replicas-to-write");
  if (min !== undefined) facts.minReplicasToWrite = Number(min);
  return facts;
}

/**
 * Refuses a source that is its own target; returns the warnings about the
 * guarantees (pure: from the configuration and what the servers told).
 *
 * @throws {ConfigError} when copies would land where they are read again.
 */
export function judgeGuarantees(
  config: Config,
  facts: { source: ServerFacts; target: ServerFacts },
): string[] {
  const { source, target } = facts;
  const sameServer = !config.source.cluster && !config.target.cluster &&
    source.runId !== undefined && source.runId === target.runId;
  if (sameServer) refuseSelfCopy(config);
  const warnings: string[] = [];
  const address = serverAddress(config.target);
  if (target.maxmemoryPolicy?.startsWith("allkeys-")) {
    warnings.push(
      `The target "${address}" has maxmemory-policy ${target.maxmemoryPolicy}: when it is full it may evict whole streams that were copied (they are copied again while the source still holds their entries); use noeviction (a full target refuses writes, which are retried)`,
    );
  }
  const policy = source.maxmemoryPolicy;
  if (config.leases && policy !== undefined && policy !== "noeviction") {
    warnings.push(
      `The source "${
        serverAddress(config.source)
      }" has maxmemory-policy ${policy}: when it is full it may evict the leases' keys (each has a TTL, which volatile-* policies evict first), and each stream whose lease goes stops and is taken again (fencing keeps the copy exact); use noeviction`,
    );
  }
  if (target.persistent === false && !config.targetEphemeral) {
    warnings.push(
      `The target "${address}" keeps nothing on disk (appendonly no, no save points): a restart empties it (what the source still holds is copied again; what the source trimmed meanwhile is lost); set TARGET_EPHEMERAL=true if that is intended`,
    );
  }
  if (config.source.sentinel && source.minReplicasToWrite === 0) {
    warnings.push(
      `The source "${
        serverAddress(config.source)
      }" is behind sentinels and has min-replicas-to-write 0: a master cut off from the others keeps accepting writes that the failover then drops, and they may already be copied (split brain); set min-replicas-to-write on the source`,
    );
  }
  return warnings;
}

/** Copies landing in a DB that is read, under keys that are read: the source is the target. */
function refuseSelfCopy(config: Config): void {
  const sourceDbs = new Set<number>(config.autoDiscovery ? config.dbSearchRange : []);
  for (const s of config.streams) sourceDbs.add(s.db);
  const prefix = config.targetStreamPrefix;
  const where = `source and target are the same server ("${serverAddress(config.source)}")`;
  for (const db of sourceDbs) {
    const targetDb = config.target.db === "same" ? db : config.target.db;
    if (prefix === "" && targetDb === db) {
      throw new ConfigError(
        `The ${where} and DB ${db} with no TARGET_STREAM_PREFIX: each stream would be copied onto itself. Use another target server or TARGET_REDIS_DB, or a TARGET_STREAM_PREFIX that the discovery patterns do not match`,
      );
    }
    if (!config.autoDiscovery || !config.dbSearchRange.includes(targetDb)) continue;
    for (const pattern of config.discoveryPatterns) {
      const copy = prefix + globExample(pattern);
      if (globMatch(pattern, globExample(pattern)) && globMatch(pattern, copy)) {
        throw new ConfigError(
          `The ${where}: discovery pattern "${pattern}" also matches the copies in DB ${targetDb} (e.g. "${copy}", TARGET_STREAM_PREFIX "${prefix}"), so every pass would copy the copies again, one level deeper. Use another target server or TARGET_REDIS_DB, or a prefix that the patterns do not match`,
        );
      }
    }
  }
}
