/**
 * Loads and validates the configuration (`loadConfig`).
 *
 * Every key is read, in order of precedence, from a command-line flag (for
 * the few keys that have one), the process environment (same key names),
 * the env file (`env.conf`, see `env_file.ts`) and finally its default. The
 * keys and defaults of the original Python service are kept, so an env.conf
 * written for it loads unchanged.
 *
 * @module
 */
import type { Config, ManualStream, RedisServerConfig } from "./types.ts";
import { ConfigError } from "../errors.ts";
import { type EnvFile, parseEnvFile } from "./env_file.ts";
import { describeProblem, type LoadContext, lookUp, read } from "./_load_context.ts";
import { readServer } from "./_read_server.ts";
import { applyClusterRules } from "./_cluster_rules.ts";
import { DEFAULT_LOG_FORMAT } from "../log.ts";
import { CONFIG_KEYS, KEY_INFO } from "./keys.ts";
import {
  integer,
  MAX_BATCH_SIZE,
  nonEmpty,
  parseBoolean,
  type Parsed,
  parseDb,
  parseDbRange,
  parseInstanceId,
  parseLeaseTtl,
  parseList,
  parseLogFormat,
  parseLogLevel,
  parseSeconds,
  parseSecondsOrZero,
  parseStartId,
  parseStreamList,
  parseTargetDb,
  type StreamEntry,
} from "./parsers.ts";

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
 * import { loadConfig } from "./load_config.ts";
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
  const ctx: LoadContext = { env, file, fileName, problems, warnings, invalid: new Set() };

  const source = readServer(ctx, "SOURCE", parseDb);
  const target = readServer(ctx, "TARGET", parseTargetDb);
  const targetStreamPrefix = lookUp(ctx, "TARGET_STREAM_PREFIX").text;
  const streams = resolveStreams(read(ctx, "REDIS_STREAMS", parseStreamList), source.db);
  const config: Config = {
    source,
    target,
    targetStreamPrefix,
    targetStreamMaxlen: read(ctx, "TARGET_STREAM_MAXLEN", integer(0, Number.MAX_SAFE_INTEGER)),
    targetWaitReplicas: read(ctx, "TARGET_WAIT_REPLICAS", integer(0, 64)),
    targetWaitTimeout: read(ctx, "TARGET_WAIT_TIMEOUT", parseSeconds),
    mirrorSourceTrim: read(ctx, "MIRROR_SOURCE_TRIM", parseBoolean),
    targetEphemeral: read(ctx, "TARGET_EPHEMERAL", parseBoolean),
    streams: streams.map(({ db, key }) => ({ db, key })),
    streamsEnabled: read(ctx, "REDIS_STREAMS_ENABLED", parseBoolean),
    consumerGroup: read(ctx, "STREAM_CONSUMER_GROUP", nonEmpty("a non-empty consumer group name")),
    consumerName: read(ctx, "STREAM_CONSUMER_NAME", nonEmpty("a non-empty consumer name")),
    batchSize: read(ctx, "STREAM_BATCH_SIZE", integer(1, MAX_BATCH_SIZE)),
    pollInterval: read(ctx, "STREAM_POLL_INTERVAL", parseSeconds),
    startId: read(ctx, "STREAM_START_ID", parseStartId),
    pendingCheckInterval: read(ctx, "STREAM_PENDING_CHECK_INTERVAL", parseSeconds),
    consumerIdleTimeout: read(ctx, "STREAM_CONSUMER_IDLE_TIMEOUT", parseSeconds),
    stallTimeout: read(ctx, "STREAM_STALL_TIMEOUT", parseSeconds),
    leases: read(ctx, "STREAM_LEASES", parseBoolean),
    leaseTtl: read(ctx, "STREAM_LEASE_TTL", parseLeaseTtl),
    instanceId: read(ctx, "INSTANCE_ID", parseInstanceId),
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
    heartbeatInterval: read(ctx, "HEARTBEAT_INTERVAL", parseSecondsOrZero),
    groupsSync: read(ctx, "STREAM_GROUPS_SYNC", parseList),
    groupsSyncInterval: read(ctx, "STREAM_GROUPS_SYNC_INTERVAL", parseSeconds),
    groupsSyncPending: read(ctx, "STREAM_GROUPS_SYNC_PENDING", parseBoolean),
    registry: read(ctx, "REGISTRY", nonEmpty("a non-empty registry address")),
    tag: read(ctx, "TAG", nonEmpty("a non-empty image tag")),
  };

  // Rules that involve several keys, checked only when each of those keys is valid.
  checkBackoff(ctx, "SOURCE", config.source);
  checkBackoff(ctx, "TARGET", config.target);
  if (config.targetWaitReplicas > 0 && config.targetWaitTimeout >= config.target.commandTimeout) {
    // Commands pipelined behind a WAIT would pass their deadline while it blocks.
    problems.push(
      `TARGET_WAIT_TIMEOUT must be below TARGET_REDIS_COMMAND_TIMEOUT: got ` +
        `${config.targetWaitTimeout} s and ${config.target.commandTimeout} s`,
    );
  }
  applyClusterRules(ctx, config, streams);
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
  if (problems.length > 0) {
    // A typo of a key is often why another is wrong or missing: its hint goes with the errors.
    throw new ConfigError([...problems, ...warnings.filter((w) => w.includes("did you mean"))]);
  }
  if (config.streamsEnabled && !config.autoDiscovery && config.streams.length === 0) {
    warnings.push(
      "No stream to replicate: REDIS_STREAMS is empty and STREAM_AUTO_DISCOVERY is off",
    );
  }
  return { config, warnings };
}

/** The raw value of a known key: from the environment, else the file, else its default. */
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

/** A manual stream, with the entry of REDIS_STREAMS it comes from. */
interface ResolvedStream extends ManualStream {
  text: string;
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
