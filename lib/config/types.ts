/**
 * The shape of the effective configuration. See `config.ts` for how it is
 * loaded from flags, the environment and env.conf.
 *
 * @module
 */

import type { LogLevelName } from "../log.ts";

export type { LogLevelName };

/**
 * TLS to one server (`*_REDIS_TLS=true` or a `rediss://` URL). The file
 * paths come from the configuration; their contents are filled in by
 * `loadTlsFiles` (`tls_files.ts`), which reads and checks them.
 */
export interface TlsConfig {
  /** `*_TLS_CA_FILE`: PEM CA certificates trusted besides the system's; undefined = the system's only. */
  caFile?: string;
  /** `*_TLS_CERT_FILE`: PEM client certificate (chain), with `keyFile`. */
  certFile?: string;
  /** `*_TLS_KEY_FILE`: PEM private key of the client certificate (unencrypted). */
  keyFile?: string;
  /** `*_TLS_SERVERNAME`: the name sent (SNI) and checked in the server's certificate; undefined = the host. */
  servername?: string;
  /** `*_TLS_INSECURE`: the server's certificate and name are not verified. */
  insecure: boolean;
  /** The contents of `caFile`, once loaded. */
  ca?: string;
  /** The contents of `certFile`, once loaded. */
  cert?: string;
  /** The contents of `keyFile`, once loaded. Never printed. */
  key?: string;
}

/** `*_REDIS_SENTINELS`: the server is the current master of a name that these sentinels monitor. */
export interface SentinelConfig {
  /** The sentinels, `host:port` each. */
  addresses: Array<{ host: string; port: number }>;
  /** `*_REDIS_SENTINEL_MASTER`: the monitored name. */
  masterName: string;
  /** `*_REDIS_SENTINEL_USERNAME`; undefined = none. */
  username?: string;
  /** `*_REDIS_SENTINEL_PASSWORD`; undefined = none. Never printed. */
  password?: string;
  /** `*_REDIS_SENTINEL_TLS`: the sentinels speak TLS (with the server's TLS files). */
  tls: boolean;
}

/** How to reach one Redis server, and how hard to try. */
export interface RedisServerConfig {
  /** Host name or IP address. */
  host: string;
  /** TCP port, 1-65535. */
  port: number;
  /** ACL user name; undefined when not set (the `default` user). */
  username?: string;
  /** Password; undefined when empty. Never printed. */
  password?: string;
  /** The sentinels that name the server; undefined = `host` and `port` are the server. */
  sentinel?: SentinelConfig;
  /** `*_REDIS_CLUSTER`: the server is one node of a Redis Cluster (the seed of its layout). */
  cluster?: boolean;
  /** TLS settings; undefined = plain TCP. */
  tls?: TlsConfig;
  /** `*_REDIS_URL` as given, when set (host, port, user, password and DB came from it). Printed redacted. */
  url?: string;
  /** Attempts of one operation (and of the start-up check) before backing off / giving up. */
  maxRetries: number;
  /** First backoff delay, in seconds (> 0). */
  backoffBase: number;
  /** Largest backoff delay, in seconds (>= backoffBase). */
  backoffMax: number;
  /** Seconds between PINGs on an idle connection (> 0). */
  healthCheckInterval: number;
  /** Connections in the pool (>= 1). */
  poolSize: number;
  /** Seconds without a reply after which a connection is taken as hung and closed (> 0). */
  commandTimeout: number;
}

/** A stream named in REDIS_STREAMS. */
export interface ManualStream {
  /** The source DB: from a `dbN:` prefix, else SOURCE_REDIS_DB. */
  db: number;
  /** The key, as written in the configuration. */
  key: string;
}

/** The effective configuration of the service. */
export interface Config {
  source: RedisServerConfig & {
    /** SOURCE_REDIS_DB: DB of bare keys in REDIS_STREAMS, and the connection's default DB. */
    db: number;
  };
  target: RedisServerConfig & {
    /** TARGET_REDIS_DB: a DB number, or "same" (each stream to its source DB number). */
    db: number | "same";
  };
  /** TARGET_STREAM_PREFIX, prepended to every source key on the target. */
  targetStreamPrefix: string;
  /** TARGET_STREAM_MAXLEN: approximate cap of each target stream; 0 = none. */
  targetStreamMaxlen: number;
  /** TARGET_WAIT_REPLICAS: replicas of the target that must hold a write before its entries are acked; 0 = none. */
  targetWaitReplicas: number;
  /** TARGET_WAIT_TIMEOUT: seconds a write waits for them (> 0). */
  targetWaitTimeout: number;
  /** MIRROR_SOURCE_TRIM: trim the target to the source's first ID every discovery interval. */
  mirrorSourceTrim: boolean;
  /** TARGET_EPHEMERAL: a target without persistence is intended (no warning about it). */
  targetEphemeral: boolean;
  /** REDIS_STREAMS, parsed. */
  streams: ManualStream[];
  /** REDIS_STREAMS_ENABLED. */
  streamsEnabled: boolean;
  /** STREAM_CONSUMER_GROUP. */
  consumerGroup: string;
  /** STREAM_CONSUMER_NAME (with leases, the instance id is appended at run time). */
  consumerName: string;
  /** STREAM_BATCH_SIZE, entries per read (>= 1). */
  batchSize: number;
  /** STREAM_POLL_INTERVAL, seconds a read blocks (> 0). */
  pollInterval: number;
  /** STREAM_START_ID: where a new consumer group starts: "0", "$" or an explicit ID. */
  startId: string;
  /** STREAM_PENDING_CHECK_INTERVAL, seconds between group maintenance passes of each stream (> 0). */
  pendingCheckInterval: number;
  /** STREAM_CONSUMER_IDLE_TIMEOUT, seconds after which an idle consumer with nothing pending is removed. */
  consumerIdleTimeout: number;
  /** STREAM_STALL_TIMEOUT, seconds a stream may lag without progress before the watchdog acts. */
  stallTimeout: number;
  /** STREAM_LEASES: one instance at a time per stream, through lease keys on the source. */
  leases: boolean;
  /** STREAM_LEASE_TTL, seconds (>= 1). */
  leaseTtl: number;
  /** INSTANCE_ID; "" = the host name and the lowest free number. */
  instanceId: string;
  /** STREAM_AUTO_DISCOVERY. */
  autoDiscovery: boolean;
  /** STREAM_DISCOVERY_PATTERNS, Redis glob patterns. */
  discoveryPatterns: string[];
  /** STREAM_DISCOVERY_INTERVAL, seconds (> 0). */
  discoveryInterval: number;
  /** STREAM_AUTO_CREATE_CONSUMER_GROUPS. */
  autoCreateGroups: boolean;
  /** REDIS_DB_SEARCH_RANGE, expanded, sorted, unique. */
  dbSearchRange: number[];
  /** LOG_LEVEL (or --log-level), normalised (WARN -> WARNING). */
  logLevel: LogLevelName;
  /** LOG_FORMAT: a Python-style format string, or "json" (also set by --log-format json). */
  logFormat: string;
  /** METRICS_HOST. */
  metricsHost: string;
  /** METRICS_PORT; 0 = no metrics listener. */
  metricsPort: number;
  /** HEARTBEAT_INTERVAL, seconds between heartbeats on the source; 0 = none. */
  heartbeatInterval: number;
  /** STREAM_GROUPS_SYNC, glob patterns of the source's consumer groups mirrored on the target; empty = none. */
  groupsSync: string[];
  /** STREAM_GROUPS_SYNC_INTERVAL, seconds (> 0) in which every stream's groups are mirrored once. */
  groupsSyncInterval: number;
  /** STREAM_GROUPS_SYNC_PENDING: the mirrored groups' pending entries and consumers follow too. */
  groupsSyncPending: boolean;
  /** REGISTRY, for scripts/build_image.sh. */
  registry: string;
  /** TAG, for scripts/build_image.sh. */
  tag: string;
}
