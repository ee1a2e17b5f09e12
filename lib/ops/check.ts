/**
 * The start-up check: both servers answer, with bounded retries and
 * exponential backoff, before anything else happens. Used by `check` and
 * before `run`.
 *
 * @module
 */
import { backoffDelay, sleep } from "../backoff.ts";
import { type Config, type RedisServerConfig, retrySettings } from "../config/mod.ts";
import {
  AuthError,
  ConfigError,
  ConnectionError,
  errorMessage,
  RedisReplyError,
  TlsError,
  UnreachableError,
} from "../errors.ts";
import { isMissingDbError } from "../replication/mod.ts";
import { getLog } from "../log.ts";
import {
  connectionFor,
  type RedisClient,
  type RedisConnection,
  serverAddress,
} from "../redis/mod.ts";
import { checkTopology } from "./_topology_check.ts";
import { judgeGuarantees, type ServerFacts, serverFacts } from "./_guarantee_check.ts";

const log = getLog("check");

/** Options for {@linkcode checkConnectivity}. */
export interface CheckOptions {
  /**
   * Stops the retries early.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * A host name that does not resolve is not retried (the `check` command:
   * retrying cannot fix it). `run` retries it: in a compose file or a pod,
   * the other server's name may resolve only once it is up.
   * @default {false}
   */
  failFast?: boolean;
}

/** What the check found. */
export interface CheckResult {
  /** The source DBs (search range and manual streams) that the server has. */
  sourceDbs: number[];
  /** The source DBs it does not have. */
  missingSourceDbs: number[];
  /** Server versions, e.g. `7.0.15`. */
  sourceVersion: string;
  /** Target server version. */
  targetVersion: string;
}

/**
 * Checks that the target and at least one source DB answer. Retries each
 * server up to its MAX_RETRIES times with backoff; throws
 * {@linkcode UnreachableError} (exit 69) when a server never answered,
 * {@linkcode AuthError} (exit 78) at once when it refused the credentials,
 * {@linkcode TlsError} (78) at once when TLS failed for its configuration,
 * {@linkcode ConfigError} (78) when the source has none of the DBs asked for.
 */
export async function checkConnectivity(
  config: Config,
  options: CheckOptions = {},
): Promise<CheckResult> {
  const targetDb = config.target.db === "same" ? 0 : config.target.db;
  const open = new Set<RedisConnection>();
  const onAbort = () => {
    for (const conn of open) conn.close();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // A server that answered the connect may still stop answering within the check (paused,
    // restarted, cut): the whole check again, as often as a connect is retried.
    const retries = Math.max(config.source.maxRetries, config.target.maxRetries);
    for (let attempt = 0;; attempt++) {
      try {
        return await check(config, { ...options, open, targetDb });
      } catch (error) {
        if (!(error instanceof ConnectionError) || options.signal?.aborted) throw error;
        if (attempt >= retries) {
          throw new UnreachableError(
            `The start-up check lost its connection ${attempt + 1} times: ${errorMessage(error)}`,
            { cause: error },
          );
        }
        const delay = backoffDelay(attempt, retrySettings(config.target));
        log.warning("The start-up check lost its connection ({error}); again in {seconds} s", {
          error: errorMessage(error),
          seconds: (delay / 1000).toFixed(1),
        });
        await sleep(delay, options.signal);
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

async function check(
  config: Config,
  options: CheckOptions & { open: Set<RedisConnection>; targetDb: number },
): Promise<CheckResult> {
  const { open, targetDb, signal, failFast = false } = options;
  // Both at once: a broken source is reported with a broken target, not after it is fixed.
  const [target, source] = await connectBoth([
    connectWithRetries("target", config.target, { db: targetDb, signal, open, failFast }),
    connectWithRetries("source", config.source, { db: 0, signal, open, failFast }),
  ], [serverAddress(config.target), serverAddress(config.source)]);
  let targetVersion: string;
  let targetFacts: ServerFacts;
  try {
    const info = String(await target.send(undefined, ["INFO", "server"]));
    targetVersion = versionOf(info);
    requireVersion("target", config.target, targetVersion);
    const topology = await checkTopology(target, { role: "target", server: config.target });
    const replication = String(await target.send(undefined, ["INFO", "replication"]));
    if (!topology.cluster && /^role:slave\b/m.test(replication)) {
      log.warning(
        "The target {address} is a replica: it refuses writes (READONLY) until it is promoted; the service keeps retrying",
        { address: serverAddress(config.target) },
      );
    }
    targetFacts = await serverFacts(target);
  } catch (error) {
    source.close();
    throw error;
  } finally {
    target.close();
  }
  try {
    const sourceVersion = versionOf(String(await source.send(undefined, ["INFO", "server"])));
    requireVersion("source", config.source, sourceVersion);
    await checkTopology(source, { role: "source", server: config.source });
    if (config.leases && config.streamsEnabled) await requireScripting(source, config);
    const wanted = new Set<number>(config.dbSearchRange);
    for (const s of config.streams) wanted.add(s.db);
    wanted.add(config.source.db);
    const sourceDbs: number[] = [];
    const missingSourceDbs: number[] = [];
    for (const db of [...wanted].sort((a, b) => a - b)) {
      try {
        await source.send(db, ["PING"]);
        sourceDbs.push(db);
      } catch (error) {
        if (!isMissingDbError(error)) throw error;
        missingSourceDbs.push(db);
      }
    }
    const warnings = judgeGuarantees(config, {
      source: await serverFacts(source),
      target: targetFacts,
    });
    for (const warning of warnings) log.warning("{warning}", { warning });
    if (sourceDbs.length === 0) {
      throw new ConfigError(
        `Source "${serverAddress(config.source)}" has none of the DBs ${
          [...wanted].join(",")
        } (REDIS_DB_SEARCH_RANGE, REDIS_STREAMS)`,
      );
    }
    return { sourceDbs, missingSourceDbs, sourceVersion, targetVersion };
  } finally {
    source.close();
  }
}

/**
 * The target's and the source's connections; when one fails, the other is
 * closed and said to answer, and when both fail, both are told (the error
 * of the one that retrying cannot fix first).
 */
async function connectBoth(
  connecting: [Promise<RedisConnection>, Promise<RedisConnection>],
  addresses: [string, string],
): Promise<[RedisConnection, RedisConnection]> {
  const [target, source] = await Promise.allSettled(connecting);
  if (target.status === "fulfilled" && source.status === "fulfilled") {
    return [target.value, source.value];
  }
  const roles = ["target", "source"];
  const failed: Error[] = [];
  [target, source].forEach((result, i) => {
    if (result.status === "fulfilled") {
      result.value.close();
      log.info("The {role} {address} answers", { role: roles[i], address: addresses[i] });
    } else failed.push(result.reason as Error);
  });
  if (failed.length === 1) throw failed[0];
  const [first, second] = failed.sort((a, b) => severity(b) - severity(a));
  first.message = `${first.message}; and ${second.message.replace(/^./, (c) => c.toLowerCase())}`;
  throw first;
}

/** Errors retrying cannot fix (credentials, TLS, configuration) come first. */
function severity(error: Error): number {
  return error instanceof UnreachableError ? 0 : 1;
}

async function connectWithRetries(
  role: string,
  server: RedisServerConfig,
  options: { db: number; signal?: AbortSignal; open: Set<RedisConnection>; failFast: boolean },
): Promise<RedisConnection> {
  const { db, signal, open, failFast } = options;
  const address = serverAddress(server);
  for (let attempt = 0;; attempt++) {
    if (signal?.aborted) {
      throw new UnreachableError(`Stopped while connecting to ${role} "${address}"`);
    }
    const conn = connectionFor(role, server, { db, purpose: "check" });
    open.add(conn); // a stop request closes it: no connect or command can hang a shutdown
    try {
      await conn.connect();
      await conn.send(undefined, ["PING"]);
      return conn;
    } catch (error) {
      open.delete(conn);
      conn.close();
      if (error instanceof AuthError || error instanceof TlsError) throw error;
      if (isMissingDbError(error)) {
        throw new ConfigError(
          `${
            role === "target" ? "TARGET" : "SOURCE"
          }_REDIS_DB ${db}: ${role} "${address}" has no such DB`,
          {
            cause: error,
          },
        );
      }
      const unknownHost = failFast && /host not found/.test(errorMessage(error));
      if (attempt >= server.maxRetries || signal?.aborted || unknownHost) {
        throw new UnreachableError(
          `Cannot connect to ${role} "${address}" after ${attempt + 1} attempt${
            attempt === 0 ? "" : "s"
          }: ${errorMessage(error).replace(/^Cannot connect to \w+ "[^"]*": /, "")}`,
          { cause: error },
        );
      }
      const delay = backoffDelay(attempt, retrySettings(server));
      log.warning(
        "Cannot connect to {role} {address} yet ({error}); retry {attempt} of {max} in {seconds} s",
        {
          role,
          address,
          error: errorMessage(error).replace(/^Cannot connect to \w+ "[^"]*": /, ""),
          attempt: attempt + 1,
          max: server.maxRetries,
          seconds: (delay / 1000).toFixed(1),
        },
      );
      await sleep(delay, signal);
    }
  }
}

function versionOf(info: string): string {
  return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? "unknown";
}

/** XAUTOCLAIM and XPENDING's exclusive ranges need Redis 6.2; stream `lag` needs 7.0. */
function requireVersion(role: string, server: RedisServerConfig, version: string): void {
  const [major, minor] = version.split(".").map(Number);
  if (Number.isNaN(major) || major > 6 || (major === 6 && minor >= 2)) return;
  throw new ConfigError(
    `The ${role} "${
      serverAddress(server)
    }" runs Redis ${version}: redis-stream-sync needs Redis 6.2 or newer (XAUTOCLAIM)`,
  );
}

/** Options for {@linkcode connectOrThrow}. */
export interface ConnectOrThrowOptions {
  /** "source" or "target", for the message. */
  role: string;
  /** The server `conn` goes to, for the message. */
  server: { host: string; port: number };
}

/** Connects once; an unreachable server is {@linkcode UnreachableError} (exit 69). */
export async function connectOrThrow(
  client: RedisClient,
  options: ConnectOrThrowOptions,
): Promise<void> {
  const { role, server } = options;
  try {
    // A cluster's layout is read, and each master connected.
    for (const conn of await client.masters()) await conn.connect();
  } catch (error) {
    if (error instanceof AuthError || error instanceof TlsError) throw error;
    throw new UnreachableError(
      `Cannot connect to ${role} "${serverAddress(server)}": ${
        (error as Error).message.replace(/^Cannot connect to \w+ "[^"]*": /, "")
      }`,
      { cause: error },
    );
  }
}

/**
 * Leases need scripts on the source (the fenced reads): a user that may not
 * run EVAL is a configuration error (78), said at start-up rather than on
 * every read.
 */
async function requireScripting(source: RedisConnection, config: Config): Promise<void> {
  try {
    await source.send(undefined, ["EVAL", "return 1", "0"]);
  } catch (error) {
    if (error instanceof RedisReplyError && error.code === "NOPERM") {
      throw new ConfigError(
        `Source "${
          serverAddress(config.source)
        }" refused EVAL (${error.message}): STREAM_LEASES=true (the default) needs EVAL on the source for the leases of the streams; grant it (+eval, see "Several instances" in docs/operating.md) or set STREAM_LEASES=false for a single instance`,
      );
    }
    throw error;
  }
}
