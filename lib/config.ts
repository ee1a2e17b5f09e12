/**
 * Loads, validates and prints the configuration.
 *
 * Every key is read, in order of precedence, from a command-line flag (for
 * the few keys that have one), the process environment (same key names),
 * the env file (`env.conf`, see `env_file.ts`) and finally its default. The
 * keys and defaults of the original Python service are kept, so an env.conf
 * written for it loads unchanged.
 *
 * @module
 */

import type { Config, LogLevelName, ManualStream, RedisServerConfig } from "./config_types.ts";
import { ConfigError } from "./errors.ts";
import { type EnvFile, parseEnvFile } from "./env_file.ts";
import { DEFAULT_LOG_FORMAT } from "./log.ts";

/** Command-line overrides of configuration keys. */
export interface ConfigFlags {
  /** `--log-level`: overrides LOG_LEVEL; same values. */
  logLevel?: string;
  /** `--log-format`: `text` or `json`. `text` keeps LOG_FORMAT unless it is `json`. */
  logFormat?: string;
}

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * The name of the env file, used in messages.
   * @default {"env.conf"}
   */
  fileName?: string;
}

/** The result of {@linkcode loadConfig}. */
export interface LoadConfigResult {
  /** The effective, validated configuration. */
  config: Config;
  /** Things worth telling the user that do not stop the service (unknown keys...). */
  warnings: string[];
}

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

/** Redis' default `databases` count: DB numbers are 0 to this minus one. */
const DB_COUNT = 16;
/** The largest STREAM_BATCH_SIZE. */
const MAX_BATCH_SIZE = 100_000;
/** The smallest duration in seconds: a 0 ms XREADGROUP BLOCK would block for ever. */
const MIN_SECONDS = 0.001;
/** The largest duration in seconds that a timer can wait (2^31 - 1 ms). */
const MAX_SECONDS = 2_147_483;
/** The largest part of a stream ID (unsigned 64-bit). */
const MAX_ID_PART = 2n ** 64n - 1n;

const LOG_LEVELS: ReadonlyMap<string, LogLevelName> = new Map([
  ["DEBUG", "DEBUG"],
  ["INFO", "INFO"],
  ["WARNING", "WARNING"],
  ["WARN", "WARNING"],
  ["ERROR", "ERROR"],
  ["CRITICAL", "CRITICAL"],
]);

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["1", true],
  ["yes", true],
  ["on", true],
  ["false", false],
  ["0", false],
  ["no", false],
  ["off", false],
]);

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
    secret: key === "PASSWORD",
  });
  return [
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
        "above the time one batch (STREAM_BATCH_SIZE entries) takes to arrive.",
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
    "MIRROR_SOURCE_TRIM",
    "false",
    "Mirrors source trimming (XTRIM, MAXLEN on XADD, XDEL at the head) onto the target: every " +
      "discovery interval the target is trimmed to the source's first ID (XTRIM MINID).",
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
    "Consumer name in that group, used as is (the original service appended its PID).",
  ),
  info("Streams", "STREAM_BATCH_SIZE", "100", "Entries per read (1-100000)."),
  info(
    "Streams",
    "STREAM_POLL_INTERVAL",
    "1",
    "Seconds a read waits for new entries (> 0, may be fractional).",
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

const KEY_INFO: ReadonlyMap<string, ConfigKeyInfo> = new Map(
  CONFIG_KEYS.map((entry) => [entry.key, entry]),
);

/** The outcome of parsing one value: the value, or what was expected. */
type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; detail?: string };

/** Where a raw value comes from, for messages. */
interface RawValue {
  text: string;
  /** " (env.conf line 3)", " (from the environment)", " (default)", or "" for a flag. */
  origin: string;
}

/** The state of one {@linkcode loadConfig} call. */
interface LoadContext {
  env: Record<string, string | undefined>;
  file: EnvFile | undefined;
  fileName: string;
  problems: string[];
  /** Keys whose value was invalid (their fallback must not be used for cross-checks). */
  invalid: Set<string>;
}

/**
 * Loads the configuration from the command-line `flags`, the process
 * environment `env` and the text of the env file (undefined when there is
 * none), validates every value and returns the configuration with warnings
 * (unknown keys in the file...). Pure: reads nothing else.
 *
 * @throws {ConfigError} listing every problem found, when any value is invalid.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const { config } = loadConfig({ logLevel: "debug" }, { SOURCE_REDIS_HOST: "10.0.0.5" }, "TAG=v1\n");
 * config.source.host; // "10.0.0.5"
 * config.logLevel; // "DEBUG"
 * ```
 */
export function loadConfig(
  flags: ConfigFlags,
  env: Record<string, string | undefined>,
  fileText: string | undefined,
  options: LoadConfigOptions = {},
): LoadConfigResult {
  const fileName = options.fileName ?? "env.conf";
  const warnings: string[] = [];
  const problems: string[] = [];
  let file: EnvFile | undefined;
  if (fileText !== undefined) {
    file = parseEnvFile(fileText, { fileName });
    problems.push(...file.problems);
    warnings.push(...file.warnings);
    for (const [key, line] of file.lines) {
      if (!KEY_INFO.has(key)) warnings.push(unknownKeyWarning(key, fileName, line));
    }
  }
  const ctx: LoadContext = { env, file, fileName, problems, invalid: new Set() };

  const source = readServer(ctx, "SOURCE", parseDb);
  const target = readServer(ctx, "TARGET", parseTargetDb);
  const targetStreamPrefix = lookUp(ctx, "TARGET_STREAM_PREFIX").text;
  const streams = resolveStreams(read(ctx, "REDIS_STREAMS", parseStreamList), source.db);
  const config: Config = {
    source,
    target,
    targetStreamPrefix,
    targetStreamMaxlen: read(ctx, "TARGET_STREAM_MAXLEN", integer(0, Number.MAX_SAFE_INTEGER)),
    mirrorSourceTrim: read(ctx, "MIRROR_SOURCE_TRIM", parseBoolean),
    streams: streams.map(({ db, key }) => ({ db, key })),
    streamsEnabled: read(ctx, "REDIS_STREAMS_ENABLED", parseBoolean),
    consumerGroup: read(ctx, "STREAM_CONSUMER_GROUP", nonEmpty("a non-empty consumer group name")),
    consumerName: read(ctx, "STREAM_CONSUMER_NAME", nonEmpty("a non-empty consumer name")),
    batchSize: read(ctx, "STREAM_BATCH_SIZE", integer(1, MAX_BATCH_SIZE)),
    pollInterval: read(ctx, "STREAM_POLL_INTERVAL", parseSeconds),
    startId: read(ctx, "STREAM_START_ID", parseStartId),
    pendingCheckInterval: read(ctx, "STREAM_PENDING_CHECK_INTERVAL", parseSeconds),
    consumerIdleTimeout: read(ctx, "STREAM_CONSUMER_IDLE_TIMEOUT", parseSeconds),
    autoDiscovery: read(ctx, "STREAM_AUTO_DISCOVERY", parseBoolean),
    discoveryPatterns: read(ctx, "STREAM_DISCOVERY_PATTERNS", parseList),
    discoveryInterval: read(ctx, "STREAM_DISCOVERY_INTERVAL", parseSeconds),
    autoCreateGroups: read(ctx, "STREAM_AUTO_CREATE_CONSUMER_GROUPS", parseBoolean),
    dbSearchRange: read(ctx, "REDIS_DB_SEARCH_RANGE", parseDbRange),
    logLevel: flags.logLevel === undefined
      ? read(ctx, "LOG_LEVEL", parseLogLevel)
      : readFlag(ctx, "--log-level", flags.logLevel, parseLogLevel, "INFO"),
    logFormat: readLogFormat(ctx, flags.logFormat),
    metricsHost: read(ctx, "METRICS_HOST", nonEmpty("a non-empty host name or IP address")),
    metricsPort: read(ctx, "METRICS_PORT", integer(0, 65535)),
    registry: read(ctx, "REGISTRY", nonEmpty("a non-empty registry address")),
    tag: read(ctx, "TAG", nonEmpty("a non-empty image tag")),
  };

  // Rules that involve several keys, checked only when each of those keys is valid.
  checkBackoff(ctx, "SOURCE", config.source);
  checkBackoff(ctx, "TARGET", config.target);
  if (!ctx.invalid.has("SOURCE_REDIS_DB") && !ctx.invalid.has("TARGET_REDIS_DB")) {
    checkCollisions(ctx, streams, config.target.db, targetStreamPrefix);
  }
  if (
    config.autoDiscovery && config.discoveryPatterns.length === 0 &&
    !ctx.invalid.has("STREAM_AUTO_DISCOVERY")
  ) {
    const raw = lookUp(ctx, "STREAM_DISCOVERY_PATTERNS");
    problems.push(
      `STREAM_DISCOVERY_PATTERNS must list at least one pattern when STREAM_AUTO_DISCOVERY is ` +
        `on: got ${JSON.stringify(raw.text)}${raw.origin}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (config.streamsEnabled && !config.autoDiscovery && config.streams.length === 0) {
    warnings.push(
      "No stream to replicate: REDIS_STREAMS is empty and STREAM_AUTO_DISCOVERY is off",
    );
  }
  return { config, warnings };
}

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
    return `${key}=${secret && value !== "" ? "***" : quoteEnvValue(value)}`;
  }).join("\n") + "\n";
}

/** Each key's value in `config`, as text that its parser reads back. */
function configValues(config: Config): Record<string, string> {
  const values: Record<string, string> = {
    TARGET_STREAM_PREFIX: config.targetStreamPrefix,
    TARGET_STREAM_MAXLEN: String(config.targetStreamMaxlen),
    MIRROR_SOURCE_TRIM: String(config.mirrorSourceTrim),
    REDIS_STREAMS: config.streams.map(({ db, key }) => `db${db}:${key}`).join(","),
    REDIS_STREAMS_ENABLED: String(config.streamsEnabled),
    STREAM_CONSUMER_GROUP: config.consumerGroup,
    STREAM_CONSUMER_NAME: config.consumerName,
    STREAM_BATCH_SIZE: String(config.batchSize),
    STREAM_POLL_INTERVAL: String(config.pollInterval),
    STREAM_START_ID: config.startId,
    STREAM_PENDING_CHECK_INTERVAL: String(config.pendingCheckInterval),
    STREAM_CONSUMER_IDLE_TIMEOUT: String(config.consumerIdleTimeout),
    STREAM_AUTO_DISCOVERY: String(config.autoDiscovery),
    STREAM_DISCOVERY_PATTERNS: config.discoveryPatterns.join(","),
    STREAM_DISCOVERY_INTERVAL: String(config.discoveryInterval),
    STREAM_AUTO_CREATE_CONSUMER_GROUPS: String(config.autoCreateGroups),
    REDIS_DB_SEARCH_RANGE: formatDbRange(config.dbSearchRange),
    LOG_LEVEL: config.logLevel,
    LOG_FORMAT: config.logFormat,
    METRICS_HOST: config.metricsHost,
    METRICS_PORT: String(config.metricsPort),
    REGISTRY: config.registry,
    TAG: config.tag,
  };
  for (const [side, server] of [["SOURCE", config.source], ["TARGET", config.target]] as const) {
    const prefix = `${side}_REDIS_`;
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

/** The raw value of a known key: from the environment, else the file, else its default. */
function lookUp(ctx: LoadContext, key: string): RawValue {
  const fromEnv = ctx.env[key];
  if (fromEnv !== undefined) return { text: fromEnv, origin: " (from the environment)" };
  const fromFile = ctx.file?.values.get(key);
  if (fromFile !== undefined) {
    return { text: fromFile, origin: ` (${ctx.fileName} line ${ctx.file?.lines.get(key)})` };
  }
  return { text: KEY_INFO.get(key)?.default ?? "", origin: " (default)" };
}

/**
 * Reads and parses one key. On failure, records a problem and returns the
 * parsed default so that loading can go on and report every problem.
 */
function read<T>(ctx: LoadContext, key: string, parse: (text: string) => Parsed<T>): T {
  const raw = lookUp(ctx, key);
  const parsed = parse(raw.text);
  if (parsed.ok) return parsed.value;
  ctx.invalid.add(key);
  ctx.problems.push(describeProblem(key, raw, parsed));
  const fallback = parse(KEY_INFO.get(key)?.default ?? "");
  if (!fallback.ok) throw new Error(`The default of ${key} is invalid`);
  return fallback.value;
}

/** Reads a command-line flag's value; on failure, records a problem and returns `fallback`. */
function readFlag<T>(
  ctx: LoadContext,
  flag: string,
  text: string,
  parse: (text: string) => Parsed<T>,
  fallback: T,
): T {
  const parsed = parse(text);
  if (parsed.ok) return parsed.value;
  ctx.problems.push(describeProblem(flag, { text, origin: "" }, parsed));
  return fallback;
}

/** `KEY must be <expected>: got "<value>"[, <detail>][ (<origin>)]`; secrets are not shown. */
function describeProblem(
  key: string,
  raw: RawValue,
  failure: { expected: string; detail?: string },
): string {
  if (KEY_INFO.get(key)?.secret) return `${key} must be ${failure.expected}${raw.origin}`;
  const detail = failure.detail === undefined ? "" : `, ${failure.detail}`;
  return `${key} must be ${failure.expected}: got ${
    JSON.stringify(raw.text)
  }${detail}${raw.origin}`;
}

/** The settings of the source or the target Redis; `parseDb` reads its `*_REDIS_DB`. */
function readServer<Db>(
  ctx: LoadContext,
  side: "SOURCE" | "TARGET",
  parseDb: (text: string) => Parsed<Db>,
): RedisServerConfig & { db: Db } {
  const prefix = `${side}_REDIS_`;
  const host = read(ctx, `${prefix}HOST`, parseHost);
  const port = read(ctx, `${prefix}PORT`, integer(1, 65535));
  const username = lookUp(ctx, `${prefix}USERNAME`).text;
  const password = lookUp(ctx, `${prefix}PASSWORD`).text;
  return {
    host,
    port,
    ...(username === "" ? {} : { username }),
    ...(password === "" ? {} : { password }),
    db: read(ctx, `${prefix}DB`, parseDb),
    maxRetries: read(ctx, `${prefix}MAX_RETRIES`, integer(0)),
    backoffBase: read(ctx, `${prefix}BACKOFF_BASE`, parseSeconds),
    backoffMax: read(ctx, `${prefix}BACKOFF_MAX`, parseSeconds),
    healthCheckInterval: read(ctx, `${prefix}HEALTH_CHECK_INTERVAL`, parseSeconds),
    poolSize: read(ctx, `${prefix}POOL_SIZE`, integer(1)),
    commandTimeout: read(ctx, `${prefix}COMMAND_TIMEOUT`, parseSeconds),
  };
}

/** Reports a backoff base larger than the backoff max. */
function checkBackoff(
  ctx: LoadContext,
  side: "SOURCE" | "TARGET",
  server: RedisServerConfig,
): void {
  const baseKey = `${side}_REDIS_BACKOFF_BASE`;
  const maxKey = `${side}_REDIS_BACKOFF_MAX`;
  if (server.backoffBase <= server.backoffMax) return;
  if (ctx.invalid.has(baseKey) || ctx.invalid.has(maxKey)) return;
  const base = lookUp(ctx, baseKey);
  const max = lookUp(ctx, maxKey);
  ctx.problems.push(
    `${baseKey} must be <= ${maxKey}: got ${JSON.stringify(base.text)}${base.origin} and ` +
      `${JSON.stringify(max.text)}${max.origin}`,
  );
}

/** LOG_FORMAT, with `--log-format` applied. */
function readLogFormat(ctx: LoadContext, flag: string | undefined): string {
  if (flag === undefined) return read(ctx, "LOG_FORMAT", parseLogFormat);
  const choice = flag.trim().toLowerCase();
  if (choice === "json") return "json";
  if (choice === "text") {
    const configured = read(ctx, "LOG_FORMAT", parseLogFormat);
    return configured === "json" ? DEFAULT_LOG_FORMAT : configured;
  }
  ctx.problems.push(`--log-format must be "text" or "json": got ${JSON.stringify(flag)}`);
  return DEFAULT_LOG_FORMAT;
}

/** The warning for a key of the env file that is not a configuration key. */
function unknownKeyWarning(key: string, fileName: string, line: number): string {
  const suggestion = nearestKey(key);
  const where = `Unknown key ${JSON.stringify(key)} in ${fileName} (line ${line})`;
  return suggestion === undefined
    ? `${where}, ignored`
    : `${where}: did you mean ${JSON.stringify(suggestion)}?`;
}

/** The known key closest to `key` (ignoring case), when it is close enough to be a typo. */
function nearestKey(key: string): string | undefined {
  const wanted = key.toUpperCase();
  const limit = Math.max(2, Math.floor(wanted.length / 5));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const { key: candidate } of CONFIG_KEYS) {
    const distance = editDistance(wanted, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** The Levenshtein distance between two strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}

// ---------------------------------------------------------------------------
// Value parsers

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function fail<T>(expected: string, detail?: string): Parsed<T> {
  return detail === undefined ? { ok: false, expected } : { ok: false, expected, detail };
}

/** A plain decimal integer (optional sign, surrounding whitespace allowed), or undefined. */
function toInteger(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A parser of integers in `[min, max]` (no upper bound when `max` is undefined). */
function integer(min: number, max?: number): (text: string) => Parsed<number> {
  const expected = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return (text) => {
    const value = toInteger(text);
    if (value === undefined || value < min || (max !== undefined && value > max)) {
      return fail(expected);
    }
    return ok(value);
  };
}

function parseDb(text: string): Parsed<number> {
  const value = toInteger(text);
  if (value === undefined || value < 0 || value >= DB_COUNT) {
    return fail(`a DB number from 0 to ${DB_COUNT - 1}`);
  }
  return ok(value);
}

function parseTargetDb(text: string): Parsed<number | "same"> {
  if (text.trim().toLowerCase() === "same") return ok("same");
  const value = toInteger(text);
  if (value === undefined || value < 0 || value >= DB_COUNT) {
    return fail(`a DB number from 0 to ${DB_COUNT - 1}, or "same"`);
  }
  return ok(value);
}

/** A duration in seconds: a decimal number > 0, fractions allowed. */
function parseSeconds(text: string): Parsed<number> {
  const expected = "a number of seconds > 0";
  const trimmed = text.trim();
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(trimmed)) return fail(expected);
  const value = Number(trimmed);
  if (!(value > 0)) return fail(expected);
  if (value < MIN_SECONDS) return fail(expected, `the smallest is ${MIN_SECONDS}`);
  if (value > MAX_SECONDS) return fail(expected, `the largest is ${MAX_SECONDS}`);
  return ok(value);
}

function parseBoolean(text: string): Parsed<boolean> {
  const value = BOOLEANS.get(text.trim().toLowerCase());
  return value === undefined ? fail("true or false (or 1/0, yes/no, on/off)") : ok(value);
}

function parseHost(text: string): Parsed<string> {
  const trimmed = text.trim();
  if (trimmed === "" || /\s/.test(trimmed)) {
    return fail("a non-empty host name or IP address, without spaces");
  }
  return ok(trimmed);
}

function nonEmpty(expected: string): (text: string) => Parsed<string> {
  return (text) => (text.trim() === "" ? fail(expected) : ok(text));
}

function parseLogLevel(text: string): Parsed<LogLevelName> {
  const level = LOG_LEVELS.get(text.trim().toUpperCase());
  return level === undefined
    ? fail("one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL")
    : ok(level);
}

function parseLogFormat(text: string): Parsed<string> {
  if (text.trim() === "") return fail('a Python logging format string, or "json"');
  return ok(text.trim().toLowerCase() === "json" ? "json" : text);
}

/** `0`, `$`, `ms` or `ms-seq` (each part an unsigned 64-bit integer). */
function parseStartId(text: string): Parsed<string> {
  const trimmed = text.trim();
  if (trimmed === "$") return ok(trimmed);
  const match = /^(\d+)(?:-(\d+))?$/.exec(trimmed);
  if (match && BigInt(match[1]) <= MAX_ID_PART && BigInt(match[2] ?? "0") <= MAX_ID_PART) {
    return ok(trimmed);
  }
  return fail('"0", "$" or a stream ID like "1700000000000-0"');
}

/** A comma-separated list: entries trimmed, empty ones and duplicates dropped. */
function parseList(text: string): Parsed<string[]> {
  return ok([...new Set(text.split(",").map((part) => part.trim()).filter((part) => part))]);
}

function parseDbRange(text: string): Parsed<number[]> {
  const expected = 'DB numbers from 0 to 15 and ascending ranges, like "0-15", "0,1,5" or "0-3,7"';
  const dbs = new Set<number>();
  const errors: string[] = [];
  const parts = text.split(",").map((part) => part.trim()).filter((part) => part);
  if (parts.length === 0) return fail(expected);
  for (const part of parts) {
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) {
      errors.push(`${JSON.stringify(part)} is not a DB number or range`);
      continue;
    }
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    if (low >= DB_COUNT || high >= DB_COUNT) {
      errors.push(`${JSON.stringify(part)} is beyond DB ${DB_COUNT - 1}`);
    } else if (low > high) {
      errors.push(`${JSON.stringify(part)} is not ascending`);
    } else {
      for (let db = low; db <= high; db++) dbs.add(db);
    }
  }
  if (errors.length > 0) return fail(expected, `where ${errors.join(", ")}`);
  return ok([...dbs].sort((a, b) => a - b));
}

/** One entry of REDIS_STREAMS, as written, with its explicit DB if any. */
interface StreamEntry {
  text: string;
  db: number | undefined;
  key: string;
}

/** A manual stream, with the entry of REDIS_STREAMS it comes from. */
interface ResolvedStream extends ManualStream {
  text: string;
}

function parseStreamList(text: string): Parsed<StreamEntry[]> {
  const expected = 'a comma-separated list of "key" or "dbN:key" with N from 0 to 15';
  const entries: StreamEntry[] = [];
  const errors: string[] = [];
  for (const part of text.split(",").map((entry) => entry.trim()).filter((entry) => entry)) {
    const match = /^db(\d+):(.*)$/s.exec(part);
    if (!match) {
      entries.push({ text: part, db: undefined, key: part });
      continue;
    }
    const db = Number(match[1]);
    const key = match[2].trim();
    if (db >= DB_COUNT) errors.push(`${JSON.stringify(part)} names DB ${match[1]}`);
    else if (key === "") errors.push(`${JSON.stringify(part)} has no key`);
    else entries.push({ text: part, db, key });
  }
  if (errors.length > 0) return fail(expected, `where ${errors.join(", ")}`);
  return ok(entries);
}

/** Gives bare keys the source DB and drops duplicates (same DB and key). */
function resolveStreams(entries: readonly StreamEntry[], sourceDb: number): ResolvedStream[] {
  const seen = new Set<string>();
  const streams: ResolvedStream[] = [];
  for (const { text, db, key } of entries) {
    const resolved = { text, db: db ?? sourceDb, key };
    const id = `${resolved.db}\n${key}`;
    if (seen.has(id)) continue;
    seen.add(id);
    streams.push(resolved);
  }
  return streams;
}

/** Reports manual streams of different source DBs that would share one target stream. */
function checkCollisions(
  ctx: LoadContext,
  streams: readonly ResolvedStream[],
  targetDb: number | "same",
  prefix: string,
): void {
  if (targetDb === "same") return;
  const firstByKey = new Map<string, ResolvedStream>();
  for (const stream of streams) {
    const first = firstByKey.get(stream.key);
    if (first === undefined) {
      firstByKey.set(stream.key, stream);
      continue;
    }
    ctx.problems.push(
      `REDIS_STREAMS entries ${JSON.stringify(first.text)} and ${JSON.stringify(stream.text)} ` +
        `would both be written to target stream ${JSON.stringify(prefix + stream.key)} ` +
        `in DB ${targetDb}`,
    );
  }
}
