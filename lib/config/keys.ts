/**
 * The catalogue of configuration keys: every key's name, default, meaning
 * and documentation section, in the order of `--print-config` and of the
 * README.
 *
 * @module
 */
import { DEFAULT_LOG_FORMAT } from "../log.ts";

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

function redisServerKeys(side: "SOURCE" | "TARGET"): ConfigKeyInfo[] {
  const group: ConfigKeyGroup = side === "SOURCE" ? "Source" : "Target";
  const name = side === "SOURCE" ? "source" : "target";
  const prefix = `${side}_REDIS_`;
  const entry = (key: string, value: string, description: string, added = false) => ({
    key: prefix + key,
    default: value,
    description,
    group,
    added,
    secret: key === "PASSWORD" || key === "URL" || key === "SENTINEL_PASSWORD",
  });
  return [
    entry(
      "URL",
      "",
      `The ${name} as \`redis://[user[:password]@]host[:port][/db]\` (user and password ` +
        "percent-encoded), or `rediss://...` for TLS (as `" + prefix + "TLS=true`); overrides " +
        "HOST, PORT, USERNAME, PASSWORD and, with a path, DB. Printed with the password as `***`.",
      true,
    ),
    entry("HOST", `${name}-redis`, `Host name or IP address of the ${name} Redis.`),
    entry("PORT", "6379", `TCP port of the ${name} Redis (1-65535).`),
    entry(
      "USERNAME",
      "",
      "ACL user name; empty = none (the `default` user).",
      true,
    ),
    entry("PASSWORD", "", "Password; empty = no authentication. Never printed nor logged."),
    side === "SOURCE"
      ? entry(
        "DB",
        "0",
        "DB of the bare keys of `REDIS_STREAMS`, and the connection's default DB (0-15).",
      )
      : entry(
        "DB",
        "0",
        "DB the streams are written to (0-15), or `same` (any case): each stream goes to the " +
          "DB number it has on the source.",
      ),
    entry(
      "MAX_RETRIES",
      "5",
      "Start-up: connection attempts after the first before giving up (exit 69). While " +
        "running: failed operations retried at once before backing off; the service itself " +
        "never gives up (integer >= 0).",
    ),
    entry(
      "BACKOFF_BASE",
      "1.0",
      `First delay between retries, in seconds (> 0, at most \`${prefix}BACKOFF_MAX\`); ` +
        "later delays grow exponentially, with jitter.",
    ),
    entry("BACKOFF_MAX", "30.0", "Largest delay between retries, in seconds."),
    entry("HEALTH_CHECK_INTERVAL", "60", "Seconds between PINGs on an idle connection (> 0)."),
    entry("POOL_SIZE", "10", "Connections in the pool (integer >= 1)."),
    entry(
      "COMMAND_TIMEOUT",
      "10",
      "Seconds without a reply after which a connection is taken as hung and closed (> 0). " +
        "Sending gets 1 ms more per KB written; a reply gets no more, so on a slow link keep it " +
        "above the time the largest reply takes to arrive (a write of up to 25,000 entries or " +
        "16 MiB, a read of STREAM_BATCH_SIZE entries per stream).",
      true,
    ),
    entry(
      "CLUSTER",
      "false",
      `The ${name} is a Redis Cluster: HOST and PORT (or the URL) name one of its nodes, the ` +
        "others are found with `CLUSTER SLOTS` and followed through failovers and slot " +
        "migrations. Every node gets the same user, password, TLS and timeouts. Only DB 0 " +
        "exists in a cluster.",
      true,
    ),
    entry(
      "SENTINELS",
      "",
      `Sentinels that monitor the ${name}, as \`host:port\` comma-separated; empty = none. Set: ` +
        "the server is the master they name for `" + prefix + "SENTINEL_MASTER`, asked at every " +
        "connect; HOST and PORT (and a URL's host and port) are not used.",
      true,
    ),
    entry(
      "SENTINEL_MASTER",
      "",
      "The monitored master's name (`sentinel monitor <name> ...`).",
      true,
    ),
    entry("SENTINEL_USERNAME", "", "ACL user on the sentinels; empty = none.", true),
    entry(
      "SENTINEL_PASSWORD",
      "",
      "Password of the sentinels (`requirepass` in their configuration); empty = none. Never " +
        "printed nor logged.",
      true,
    ),
    entry(
      "SENTINEL_TLS",
      "",
      "The sentinels speak TLS (with the same CA and client files); empty = as `" + prefix +
        "TLS`.",
      true,
    ),
    entry(
      "TLS",
      "false",
      `Connect to the ${name} over TLS. The server's certificate and name are verified ` +
        "(against the public CAs Deno trusts and `" + prefix + "TLS_CA_FILE`).",
      true,
    ),
    entry(
      "TLS_CA_FILE",
      "",
      "PEM file of the CA certificates that signed the server's certificate (trusted besides " +
        "the public CAs Deno trusts); empty = those only.",
      true,
    ),
    entry(
      "TLS_CERT_FILE",
      "",
      "PEM file of a client certificate (and its chain), for servers that require one " +
        "(`tls-auth-clients yes`); with `" + prefix + "TLS_KEY_FILE`.",
      true,
    ),
    entry(
      "TLS_KEY_FILE",
      "",
      "PEM file of the client certificate's private key (not encrypted). Its contents are " +
        "never printed.",
      true,
    ),
    entry(
      "TLS_SERVERNAME",
      "",
      "Name sent to the server (SNI) and checked in its certificate; empty = " +
        "`" + prefix + "HOST` (behind sentinels: the address they name). For a server reached by " +
        "address whose certificate names a host.",
      true,
    ),
    entry(
      "TLS_INSECURE",
      "false",
      "Do not verify the server's certificate nor its name (anyone on the path could read and " +
        "change the data). Logs a WARNING at every start.",
      true,
    ),
  ];
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
  info("Container", "REGISTRY", "localhost:5000", "Image registry for `scripts/build_image.sh`."),
  info("Container", "TAG", "latest", "Image tag for `scripts/build_image.sh`."),
].map((entry) => Object.freeze(entry)));

export const KEY_INFO: ReadonlyMap<string, ConfigKeyInfo> = new Map(
  CONFIG_KEYS.map((entry) => [entry.key, entry]),
);
