/**
 * Prints the effective configuration in env.conf syntax (`--print-config`),
 * passwords as `***`.
 *
 * @module
 */
import type { Config } from "./types.ts";
import { CONFIG_KEYS } from "./keys.ts";
import { redactUrl } from "./parsers.ts";

/**
 * Prints the configuration in env.conf syntax, one `KEY=value` line per key
 * in the order of {@linkcode CONFIG_KEYS}, for `--print-config`. Passwords
 * are printed as `***` when set. Values are quoted when needed, so that the
 * output loads back to the same configuration (but for the passwords).
 */
export function formatConfig(config: Config): string {
  const values = configValues(config);
  return CONFIG_KEYS.map(({ key, secret }) => {
    const value = values[key] ?? "";
    if (key.endsWith("_REDIS_URL")) return `${key}=${quoteEnvValue(redactUrl(value))}`;
    return `${key}=${secret && value !== "" ? "***" : quoteEnvValue(value)}`;
  }).join("\n") + "\n";
}

/** Each key's value in `config`, as text that its parser reads back. */
function configValues(config: Config): Record<string, string> {
  const values: Record<string, string> = {
    TARGET_STREAM_PREFIX: config.targetStreamPrefix,
    TARGET_STREAM_MAXLEN: String(config.targetStreamMaxlen),
    TARGET_WAIT_REPLICAS: String(config.targetWaitReplicas),
    TARGET_WAIT_TIMEOUT: String(config.targetWaitTimeout),
    MIRROR_SOURCE_TRIM: String(config.mirrorSourceTrim),
    TARGET_EPHEMERAL: String(config.targetEphemeral),
    REDIS_STREAMS: config.streams.map(({ db, key }) => `db${db}:${key}`).join(","),
    REDIS_STREAMS_ENABLED: String(config.streamsEnabled),
    STREAM_CONSUMER_GROUP: config.consumerGroup,
    STREAM_CONSUMER_NAME: config.consumerName,
    STREAM_BATCH_SIZE: String(config.batchSize),
    STREAM_POLL_INTERVAL: String(config.pollInterval),
    STREAM_START_ID: config.startId,
    STREAM_PENDING_CHECK_INTERVAL: String(config.pendingCheckInterval),
    STREAM_CONSUMER_IDLE_TIMEOUT: String(config.consumerIdleTimeout),
    STREAM_STALL_TIMEOUT: String(config.stallTimeout),
    STREAM_LEASES: String(config.leases),
    STREAM_LEASE_TTL: String(config.leaseTtl),
    INSTANCE_ID: config.instanceId,
    STREAM_AUTO_DISCOVERY: String(config.autoDiscovery),
    STREAM_DISCOVERY_PATTERNS: config.discoveryPatterns.join(","),
    STREAM_DISCOVERY_INTERVAL: String(config.discoveryInterval),
    STREAM_AUTO_CREATE_CONSUMER_GROUPS: String(config.autoCreateGroups),
    REDIS_DB_SEARCH_RANGE: formatDbRange(config.dbSearchRange),
    LOG_LEVEL: config.logLevel,
    LOG_FORMAT: config.logFormat,
    METRICS_HOST: config.metricsHost,
    METRICS_PORT: String(config.metricsPort),
    HEARTBEAT_INTERVAL: String(config.heartbeatInterval),
    STREAM_GROUPS_SYNC: config.groupsSync.join(","),
    STREAM_GROUPS_SYNC_INTERVAL: String(config.groupsSyncInterval),
    STREAM_GROUPS_SYNC_PENDING: String(config.groupsSyncPending),
    REGISTRY: config.registry,
    TAG: config.tag,
  };
  for (const [side, server] of [["SOURCE", config.source], ["TARGET", config.target]] as const) {
    const prefix = `${side}_REDIS_`;
    values[`${prefix}URL`] = server.url ?? "";
    values[`${prefix}HOST`] = server.host;
    values[`${prefix}PORT`] = String(server.port);
    values[`${prefix}USERNAME`] = server.username ?? "";
    values[`${prefix}PASSWORD`] = server.password ?? "";
    values[`${prefix}DB`] = String(server.db);
    values[`${prefix}MAX_RETRIES`] = String(server.maxRetries);
    values[`${prefix}BACKOFF_BASE`] = String(server.backoffBase);
    values[`${prefix}BACKOFF_MAX`] = String(server.backoffMax);
    values[`${prefix}HEALTH_CHECK_INTERVAL`] = String(server.healthCheckInterval);
    values[`${prefix}POOL_SIZE`] = String(server.poolSize);
    values[`${prefix}COMMAND_TIMEOUT`] = String(server.commandTimeout);
    values[`${prefix}CLUSTER`] = String(server.cluster ?? false);
    const sentinel = server.sentinel;
    values[`${prefix}SENTINELS`] = (sentinel?.addresses ?? [])
      .map(({ host, port }) => `${host.includes(":") ? `[${host}]` : host}:${port}`).join(",");
    values[`${prefix}SENTINEL_MASTER`] = sentinel?.masterName ?? "";
    values[`${prefix}SENTINEL_USERNAME`] = sentinel?.username ?? "";
    values[`${prefix}SENTINEL_PASSWORD`] = sentinel?.password ?? "";
    values[`${prefix}SENTINEL_TLS`] = sentinel ? String(sentinel.tls) : "";
    const tls = server.tls;
    values[`${prefix}TLS`] = String(tls !== undefined);
    values[`${prefix}TLS_CA_FILE`] = tls?.caFile ?? "";
    values[`${prefix}TLS_CERT_FILE`] = tls?.certFile ?? "";
    values[`${prefix}TLS_KEY_FILE`] = tls?.keyFile ?? "";
    values[`${prefix}TLS_SERVERNAME`] = tls?.servername ?? "";
    values[`${prefix}TLS_INSECURE`] = String(tls?.insecure ?? false);
  }
  return values;
}

/**
 * A value in env.conf syntax: as is when that reads back the same (and cannot
 * be mistaken for a comment), else single-quoted, else double-quoted with escapes.
 */
function quoteEnvValue(value: string): string {
  const plain = value === value.trim() && !/\s#/.test(value) && !/^["'#]/.test(value) &&
    !/[\r\n]/.test(value);
  if (plain) return value;
  if (!value.includes("'") && !/[\r\n]/.test(value)) return `'${value}'`;
  const escaped = value.replace(/[\\"\n\r\t]/g, (char) => {
    switch (char) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      default:
        return `\\${char}`;
    }
  });
  return `"${escaped}"`;
}

/** `[0, 1, 2, 3, 7]` as `0-3,7`. */
function formatDbRange(dbs: readonly number[]): string {
  const parts: string[] = [];
  let start = 0;
  while (start < dbs.length) {
    let end = start;
    while (end + 1 < dbs.length && dbs[end + 1] === dbs[end] + 1) end++;
    parts.push(end === start ? String(dbs[start]) : `${dbs[start]}-${dbs[end]}`);
    start = end + 1;
  }
  return parts.join(",");
}
