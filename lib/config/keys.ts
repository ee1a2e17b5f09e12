/**
 * The catalogue of configuration keys: every key's name, default, meaning
 * and documentation section, in the order of `--print-config` and of
 * docs/configuration.md.
 *
 * @module
 */
import { DEFAULT_LOG_FORMAT } from "../log.ts";
import { redisServerKeys } from "./_server_keys.ts";

/** The section of the documentation a key belongs to. */
export type ConfigKeyGroup =
  | "Source"
  | "Target"
  | "Streams"
  | "Discovery"
  | "Logging"
  | "Metrics"
  | "Container";

/** One configuration key, for documentation and suggestions. */
export interface ConfigKeyInfo {
  /** The key, as written in env.conf and in the environment. */
  readonly key: string;
  /** The default value, as written in env.conf ("" when empty). */
  readonly default: string;
  /** What the key means, one or two sentences of Markdown. */
  readonly description: string;
  /** The documentation section. */
  readonly group: ConfigKeyGroup;
  /** True for keys that the original Python service did not have. */
  readonly added: boolean;
  /** True for keys whose value is never printed (passwords). */
  readonly secret: boolean;
}

function info(
  group: ConfigKeyGroup,
  key: string,
  value: string,
  description: string,
  added = false,
): ConfigKeyInfo {
  return { key, default: value, description, group, added, secret: false };
}

/**
 * Every configuration key, in the order of `--print-config` and of the
 * documentation, with its default and meaning.
 */
export const CONFIG_KEYS: readonly ConfigKeyInfo[] = Object.freeze([
  ...redisServerKeys("SOURCE"),
  ...redisServerKeys("TARGET"),
  info(
    "Target",
    "TARGET_STREAM_PREFIX",
    "",
    "Prefix added to every stream key on the target (e.g. `synced:`); empty = none.",
  ),
  info(
    "Target",
    "TARGET_STREAM_MAXLEN",
    "0",
    "Caps each target stream at about this many entries (`XADD ... MAXLEN ~ n`, trimmed as " +
      "part of the writes); 0 = no cap (integer >= 0).",
    true,
  ),
  info(
    "Target",
    "TARGET_WAIT_REPLICAS",
    "0",
    "Entries are acknowledged on the source only once this many replicas of the target hold " +
      "them (`WAIT` after each write), so a failover of the target loses nothing acknowledged; " +
      "0 = once the target itself holds them (integer 0-64).",
    true,
  ),
  info(
    "Target",
    "TARGET_WAIT_TIMEOUT",
    "1",
    "Seconds a write waits for `TARGET_WAIT_REPLICAS` replicas (> 0, below " +
      "`TARGET_REDIS_COMMAND_TIMEOUT`); when fewer confirmed, nothing of it is acknowledged and " +
      "it is checked again with backoff.",
    true,
  ),
  info(
    "Target",
    "MIRROR_SOURCE_TRIM",
    "false",
    "Mirrors source trimming (XTRIM, MAXLEN on XADD, XDEL at the head) onto the target: every " +
      "discovery interval the target is trimmed to the source's first ID (XTRIM MINID).",
    true,
  ),
  info(
    "Target",
    "TARGET_EPHEMERAL",
    "false",
    "The target is meant to keep nothing on disk (a cache, a test copy): `check` and `run` no " +
      "longer warn that it has no persistence. A restart of it then empties it, and what the " +
      "source still holds is copied again; what the source trimmed meanwhile is lost.",
    true,
  ),
  info(
    "Streams",
    "REDIS_STREAMS",
    "",
    "Streams to replicate in any case, comma-separated: `key` (in `SOURCE_REDIS_DB`) or " +
      "`dbN:key` (N 0-15), e.g. `stream1,db1:stream2`. Other colons are part of the key.",
  ),
  info("Streams", "REDIS_STREAMS_ENABLED", "true", "Enables stream processing."),
  info(
    "Streams",
    "STREAM_CONSUMER_GROUP",
    "redis-sync-group",
    "Consumer group read on the source streams.",
  ),
  info(
    "Streams",
    "STREAM_CONSUMER_NAME",
    "redis-sync-consumer",
    "Consumer name in that group. With STREAM_LEASES (the default) each instance appends its " +
      "INSTANCE_ID (`redis-sync-consumer-web-1-1`); without, it is used as is (the original " +
      "service appended its PID).",
  ),
  info("Streams", "STREAM_BATCH_SIZE", "100", "Entries per read (1-100000)."),
  info(
    "Streams",
    "STREAM_POLL_INTERVAL",
    "1",
    "Seconds a read waits for new entries (> 0, may be fractional); a wait over many quiet " +
      "streams lasts 5 ms per stream when that is longer (at most 30 s): it wakes for any new " +
      "entry.",
  ),
  info(
    "Streams",
    "STREAM_START_ID",
    "0",
    "Where a newly created consumer group starts: `0` (the whole stream), `$` (new entries " +
      "only) or an entry ID `ms-seq` / `ms`.",
    true,
  ),
  info(
    "Streams",
    "STREAM_PENDING_CHECK_INTERVAL",
    "60",
    "Seconds between checks of each stream's consumer group: entries left pending by other " +
      "consumers are claimed and copied, idle consumers with nothing pending are removed (> 0).",
    true,
  ),
  info(
    "Streams",
    "STREAM_CONSUMER_IDLE_TIMEOUT",
    "3600",
    "Seconds after which another consumer of the group with nothing pending counts as dead and " +
      "is removed (XGROUP DELCONSUMER) (> 0).",
    true,
  ),
  info(
    "Streams",
    "STREAM_STALL_TIMEOUT",
    "5",
    "Seconds a stream may have entries on the source beyond its copy without any progress " +
      "before the watchdog (at each stats pass of it) says so at WARNING, shows it as `stalled` " +
      "and reads it at once; still stalled at the next pass, it is recovered (what is pending " +
      "claimed). > 0.",
    true,
  ),
  info(
    "Streams",
    "STREAM_LEASES",
    "true",
    "Each stream is copied by one instance at a time, through the lease key of its bucket on " +
      "the source (`redis-stream-sync:bucket:...`, 256 buckets per DB, a cluster's slots; " +
      "renewed while the instance lives); several instances with the same configuration share " +
      "the streams. `false` for a single instance that " +
      "creates no lease keys: two instances at once can then leave a hole on the target.",
    true,
  ),
  info(
    "Streams",
    "STREAM_LEASE_TTL",
    "10",
    "Seconds a lease lives without renewal (renewed every third of it; >= 1): the streams of " +
      "an instance that died are taken over by the others within this time.",
    true,
  ),
  info(
    "Streams",
    "INSTANCE_ID",
    "",
    "This instance's name among those sharing the streams, appended to STREAM_CONSUMER_NAME " +
      "(letters, digits, `.`, `_`, `-`). Empty: the host name and the lowest free number, " +
      "e.g. `web-1-1`.",
    true,
  ),
  info(
    "Streams",
    "STREAM_GROUPS_SYNC",
    "",
    "Comma-separated Redis glob patterns of the applications' consumer groups to mirror on the " +
      "target (`*` = all); empty = none. Each matching group of a replicated stream is created, " +
      "moved (`XGROUP SETID ... ENTRIESREAD`) and destroyed on the target as on the source, never " +
      "past what the target holds, so that consumers can move to the target after a failover. " +
      "`STREAM_CONSUMER_GROUP` is never mirrored. Needs Redis 7.0 or later on the target.",
    true,
  ),
  info(
    "Streams",
    "STREAM_GROUPS_SYNC_INTERVAL",
    "5",
    "Seconds (> 0) in which the groups of every replicated stream are mirrored once (spread " +
      "over the interval, at most 2,000 streams a second): after a failover, at most the entries " +
      "delivered on the source in about this time are delivered again on the target.",
    true,
  ),
  info(
    "Streams",
    "STREAM_GROUPS_SYNC_PENDING",
    "false",
    "With `STREAM_GROUPS_SYNC`: the mirrored groups' consumers and pending entries follow too " +
      "(`XGROUP CREATECONSUMER`, `XCLAIM ... FORCE JUSTID` with the same idle time and delivery " +
      "count, `XACK`, `XGROUP DELCONSUMER`), so that after a failover unacknowledged entries are " +
      "pending under the same consumer names. Off: the target's group stands before the oldest " +
      "pending entry, and those entries are delivered again as new.",
    true,
  ),
  info(
    "Discovery",
    "STREAM_AUTO_DISCOVERY",
    "true",
    "Scans the source DBs for streams whose key matches `STREAM_DISCOVERY_PATTERNS`.",
  ),
  info(
    "Discovery",
    "STREAM_DISCOVERY_PATTERNS",
    "*-stream,device:*:stream,biosignal-*",
    "Comma-separated Redis glob patterns of the keys to discover (at least one when " +
      "discovery is on).",
  ),
  info("Discovery", "STREAM_DISCOVERY_INTERVAL", "10", "Seconds between discovery scans (> 0)."),
  info(
    "Discovery",
    "STREAM_AUTO_CREATE_CONSUMER_GROUPS",
    "true",
    "Creates the consumer group on a stream that does not have it yet.",
  ),
  info(
    "Discovery",
    "REDIS_DB_SEARCH_RANGE",
    "0-15",
    "Source DBs to scan: DB numbers and ascending ranges, e.g. `0-15`, `0,1,5`, `0-3,7`.",
  ),
  info(
    "Logging",
    "LOG_LEVEL",
    "INFO",
    "`DEBUG`, `INFO`, `WARNING` (or `WARN`), `ERROR` or `CRITICAL`, any case. " +
      "`--log-level` overrides it.",
  ),
  info(
    "Logging",
    "LOG_FORMAT",
    DEFAULT_LOG_FORMAT,
    "Python `logging` format string of text logs, or `json` (any case) for JSON lines. " +
      "`--log-format json` overrides it.",
  ),
  info(
    "Metrics",
    "METRICS_HOST",
    "127.0.0.1",
    "Address the metrics HTTP listener binds to.",
    true,
  ),
  info(
    "Metrics",
    "METRICS_PORT",
    "9108",
    "Port of the metrics HTTP listener (0-65535); 0 = no listener.",
    true,
  ),
  info(
    "Metrics",
    "HEARTBEAT_INTERVAL",
    "0",
    "Seconds between heartbeats (> 0), or 0: none, nothing is written to the source. Each " +
      "instance adds an entry (`instance` = its consumer name) to the source stream " +
      "`redis-stream-sync:heartbeat:<STREAM_CONSUMER_GROUP>` in `SOURCE_REDIS_DB` (`XADD ... " +
      "MAXLEN ~ 1000`), copied like the others whatever the discovery patterns, so that " +
      "`replication_delay_seconds` moves when no application writes. Refused (a source user " +
      "without `+xadd`): one WARNING, the copy goes on without. Its copy on the target grows " +
      "unless `MIRROR_SOURCE_TRIM` trims it.",
    true,
  ),
  info("Container", "REGISTRY", "localhost:5000", "Image registry for `scripts/build_image.sh`."),
  info("Container", "TAG", "latest", "Image tag for `scripts/build_image.sh`."),
].map((entry) => Object.freeze(entry)));

export const KEY_INFO: ReadonlyMap<string, ConfigKeyInfo> = new Map(
  CONFIG_KEYS.map((entry) => [entry.key, entry]),
);
