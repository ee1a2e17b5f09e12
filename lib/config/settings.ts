/**
 * Each replication component's settings, built once from the
 * {@linkcode Config}: durations in milliseconds, retry policies ready for
 * `Backoff`. Components take their own slice, never the whole `Config`
 * (whose durations are seconds, as env.conf writes them).
 *
 * @module
 */
import type { Config, ManualStream, RedisServerConfig } from "./types.ts";

/** A retry policy, as `Backoff` and the writer take it. */
export interface RetrySettings {
  /** First delay, in milliseconds. */
  baseMs: number;
  /** Largest delay, in milliseconds. */
  maxMs: number;
  /** Retries of a lost connection made at once, before the delays start. */
  immediateRetries: number;
}

/** What the readers need. */
export interface ReadSettings {
  /** Longest wait of one blocking read (STREAM_POLL_INTERVAL), at least 1 ms. */
  blockMs: number;
  /** Retries after a failed read (the source's). */
  retry: RetrySettings;
}

/** What the writer needs. */
export interface WriteSettings {
  /** Entries a write may shrink to when the target is short of memory (STREAM_BATCH_SIZE). */
  minWriteEntries: number;
  /** TARGET_STREAM_MAXLEN (0: no trimming). */
  targetMaxlen: number;
  /**
   * This tool trims the target (TARGET_STREAM_MAXLEN, or MIRROR_SOURCE_TRIM):
   * an entry missing below a target stream's first one may have been
   * trimmed after it was copied.
   */
  targetTrims: boolean;
  /** TARGET_WAIT_REPLICAS (0: no WAIT). */
  waitReplicas: number;
  /** TARGET_WAIT_TIMEOUT, in milliseconds. */
  waitTimeoutMs: number;
  /** Retries after a failed write (the target's). */
  retry: RetrySettings;
}

/** What recovery and group maintenance need. */
export interface RecoverySettings {
  /** Retries after a failed claim (the source's). */
  retry: RetrySettings;
  /** How often each stream's group is looked after (PENDING_CHECK_INTERVAL), in milliseconds. */
  pendingCheckEveryMs: number;
  /** Consumers idle this long without pending entries are removed (CONSUMER_IDLE_TIMEOUT), in milliseconds. */
  consumerIdleMs: number;
  /** A stream behind its source without progress this long is stalled (STREAM_STALL_TIMEOUT), in milliseconds. */
  stallMs: number;
}

/** The replication engine's settings, and those of the parts it makes. */
export interface ReplicationSettings {
  /** The consumer group (CONSUMER_GROUP_NAME). */
  group: string;
  /** Entries per read (STREAM_BATCH_SIZE). */
  batchSize: number;
  /** Whether missing groups are created (AUTO_CREATE_GROUPS). */
  autoCreateGroups: boolean;
  /** The readers'. */
  read: ReadSettings;
  /** The writer's. */
  write: WriteSettings;
  /** Recovery's. */
  recovery: RecoverySettings;
}

/** What finding the streams needs (discovery passes, `status`, `verify`). */
export interface DiscoverySettings {
  /** The streams named in REDIS_STREAMS. */
  manual: readonly ManualStream[];
  /**
   * The heartbeat stream (HEARTBEAT_INTERVAL), named like those of
   * REDIS_STREAMS (copied whatever the patterns); absent without heartbeats
   * or when REDIS_STREAMS names it.
   */
  heartbeat?: ManualStream;
  /** STREAM_AUTO_DISCOVERY: SCAN for more. */
  auto: boolean;
  /** The DBs scanned (REDIS_DB_SEARCH_RANGE). */
  dbs: readonly number[];
  /** STREAM_DISCOVERY_PATTERNS. */
  patterns: readonly string[];
  /** TARGET_REDIS_DB: a DB number, or "same". */
  targetDb: number | "same";
  /** TARGET_STREAM_PREFIX. */
  prefix: string;
  /** How often a run looks for streams (STREAM_DISCOVERY_INTERVAL), in milliseconds. */
  everyMs: number;
}

/** What sharing the streams between instances needs (STREAM_LEASES). */
export interface SharingSettings {
  /** The consumer group the instances share. */
  group: string;
  /** The source DB of the instance registry. */
  db: number;
  /** STREAM_LEASE_TTL, in milliseconds. */
  ttlMs: number;
  /** INSTANCE_ID ("": the host name and the lowest free number). */
  instanceId: string;
  /** STREAM_CONSUMER_NAME (the instance id is appended). */
  consumerName: string;
}

/** Entries the heartbeat stream keeps, about (`XADD ... MAXLEN ~`). */
export const HEARTBEAT_MAXLEN = 1000;

/** The key of the heartbeat stream of consumer group `group`, on the source. */
export function heartbeatKey(group: string): string {
  return `redis-stream-sync:heartbeat:${group}`;
}

/** What the heartbeats need (HEARTBEAT_INTERVAL > 0). */
export interface HeartbeatSettings {
  /** HEARTBEAT_INTERVAL, in milliseconds. */
  everyMs: number;
  /** The heartbeat stream: {@linkcode heartbeatKey} in SOURCE_REDIS_DB. */
  stream: ManualStream;
  /** Entries it keeps, about ({@linkcode HEARTBEAT_MAXLEN}). */
  maxlen: number;
}

/** What mirroring the applications' consumer groups needs (STREAM_GROUPS_SYNC not empty). */
export interface GroupSyncSettings {
  /** STREAM_GROUPS_SYNC: glob patterns of the group names mirrored. */
  patterns: string[];
  /** STREAM_CONSUMER_GROUP: never mirrored. */
  ownGroup: string;
  /** STREAM_GROUPS_SYNC_INTERVAL, in milliseconds. */
  everyMs: number;
  /** STREAM_GROUPS_SYNC_PENDING: consumers and pending entries follow too. */
  pending: boolean;
}

/** What a run needs: the servers, and each component's settings. */
export interface RunSettings {
  /** The source server and its default DB (the run opens its pools). */
  source: Config["source"];
  /** The target server. */
  target: Config["target"];
  /** The consumer name (without leases; with them, the instance's). */
  consumer: string;
  /** REDIS_STREAMS_ENABLED: replicate (false: discovery and stats only). */
  streamsEnabled: boolean;
  /** STREAM_START_ID: where a new consumer group starts. */
  startId: string;
  /** MIRROR_SOURCE_TRIM. */
  mirrorSourceTrim: boolean;
  /** Retries of the source. */
  sourceRetry: RetrySettings;
  /** Finding the streams. */
  discovery: DiscoverySettings;
  /** With leases (and replication on): sharing the streams; undefined without. */
  sharing?: SharingSettings;
  /** With HEARTBEAT_INTERVAL (and replication on): the heartbeats; undefined without. */
  heartbeat?: HeartbeatSettings;
  /** With STREAM_GROUPS_SYNC (and replication on): mirroring groups; undefined without. */
  groupSync?: GroupSyncSettings;
  /** The replication engine's. */
  replication: ReplicationSettings;
}

/** A server's retry policy in milliseconds. */
export function retrySettings(server: RedisServerConfig): RetrySettings {
  return {
    baseMs: server.backoffBase * 1000,
    maxMs: server.backoffMax * 1000,
    immediateRetries: server.maxRetries,
  };
}

/** The replication engine's settings, from the configuration. */
export function replicationSettings(config: Config): ReplicationSettings {
  return {
    group: config.consumerGroup,
    batchSize: config.batchSize,
    autoCreateGroups: config.autoCreateGroups,
    read: {
      blockMs: Math.max(1, Math.round(config.pollInterval * 1000)),
      retry: retrySettings(config.source),
    },
    write: {
      minWriteEntries: config.batchSize,
      targetMaxlen: config.targetStreamMaxlen,
      targetTrims: config.targetStreamMaxlen > 0 || config.mirrorSourceTrim,
      waitReplicas: config.targetWaitReplicas,
      waitTimeoutMs: Math.round(config.targetWaitTimeout * 1000),
      retry: retrySettings(config.target),
    },
    recovery: {
      retry: retrySettings(config.source),
      pendingCheckEveryMs: config.pendingCheckInterval * 1000,
      consumerIdleMs: config.consumerIdleTimeout * 1000,
      stallMs: config.stallTimeout * 1000,
    },
  };
}

/** The heartbeats' settings, from the configuration; undefined when HEARTBEAT_INTERVAL is 0. */
export function heartbeatSettings(config: Config): HeartbeatSettings | undefined {
  if (!(config.heartbeatInterval > 0)) return undefined;
  return {
    everyMs: config.heartbeatInterval * 1000,
    stream: { db: config.source.db, key: heartbeatKey(config.consumerGroup) },
    maxlen: HEARTBEAT_MAXLEN,
  };
}

/** What finding the streams needs, from the configuration. */
export function discoverySettings(config: Config): DiscoverySettings {
  const beat = heartbeatSettings(config)?.stream;
  const named = beat && !config.streams.some((s) => s.db === beat.db && s.key === beat.key);
  return {
    manual: config.streams,
    ...(named ? { heartbeat: beat } : {}),
    auto: config.autoDiscovery,
    dbs: config.dbSearchRange,
    patterns: config.discoveryPatterns,
    targetDb: config.target.db,
    prefix: config.targetStreamPrefix,
    everyMs: config.discoveryInterval * 1000,
  };
}

/** What sharing the streams needs, from the configuration. */
export function sharingSettings(config: Config): SharingSettings {
  return {
    group: config.consumerGroup,
    db: config.source.db,
    ttlMs: config.leaseTtl * 1000,
    instanceId: config.instanceId,
    consumerName: config.consumerName,
  };
}

/** Mirroring the applications' groups, from the configuration; undefined when off. */
export function groupSyncSettings(config: Config): GroupSyncSettings | undefined {
  if (config.groupsSync.length === 0) return undefined;
  return {
    patterns: config.groupsSync,
    ownGroup: config.consumerGroup,
    everyMs: config.groupsSyncInterval * 1000,
    pending: config.groupsSyncPending,
  };
}

/** Every setting of a run, from the configuration: built once, when the run is made. */
export function runSettings(config: Config): RunSettings {
  return {
    source: config.source,
    target: config.target,
    consumer: config.consumerName,
    streamsEnabled: config.streamsEnabled,
    startId: config.startId,
    mirrorSourceTrim: config.mirrorSourceTrim,
    sourceRetry: retrySettings(config.source),
    discovery: discoverySettings(config),
    ...(config.leases && config.streamsEnabled ? { sharing: sharingSettings(config) } : {}),
    ...(config.streamsEnabled && config.heartbeatInterval > 0
      ? { heartbeat: heartbeatSettings(config) }
      : {}),
    ...(config.streamsEnabled && config.groupsSync.length > 0
      ? { groupSync: groupSyncSettings(config) }
      : {}),
    replication: replicationSettings(config),
  };
}
