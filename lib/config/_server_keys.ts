/**
 * The configuration keys of one Redis server (SOURCE_REDIS_* or
 * TARGET_REDIS_*): the same for both sides. Internal to the config folder.
 *
 * @module
 */
import type { ConfigKeyGroup, ConfigKeyInfo } from "./keys.ts";

/** The keys of the `side` server, in the order of the documentation. */
export function redisServerKeys(side: "SOURCE" | "TARGET"): ConfigKeyInfo[] {
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
