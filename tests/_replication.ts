/**
 * Helpers for replication tests: a fast configuration pointing at two test
 * servers, the orchestrator run in-process with a bounded stop, log capture,
 * and stream comparisons entry by entry.
 *
 * @example
 * ```ts
 * import { connect, RedisServer } from "../testing/redis.ts";
 * import { quietLogs, replicationConfig, startReplicator, waitForCopy } from "./_replication.ts";
 *
 * Deno.test("copies a stream", async () => {
 *   await quietLogs();
 *   await using source = await RedisServer.start();
 *   await using target = await RedisServer.start();
 *   await using src = await connect(source);
 *   await using dst = await connect(target);
 *   await src.xadd("a-stream", "*", { n: "1" });
 *   await using replicator = startReplicator(replicationConfig(source, target));
 *   await waitForCopy(src, "a-stream", dst);
 *   await replicator.stop();
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/load_config.ts";
import type { Config, LogLevelName } from "../lib/config/types.ts";
import { setupLogging } from "../lib/log.ts";
import {
  Orchestrator,
  type OrchestratorHooks,
  type RunOptions,
  type RunResult,
} from "../lib/replication/mod.ts";
import { waitFor } from "../testing/cli.ts";
import type { RedisArg, TestClient } from "../testing/redis.ts";

export { waitFor } from "../testing/cli.ts";

/** A server to point the configuration at. */
export interface ServerAddress {
  /** Host; 127.0.0.1 when absent. */
  host?: string;
  /** TCP port. */
  port: number;
}

/** Configuration keys and their values (numbers and booleans are written as text). */
export type Settings = Record<string, string | number | boolean>;

/**
 * Settings that make tests fast and quiet: short poll and discovery
 * intervals, short backoffs, few retries, no metrics listener.
 */
export const FAST_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  STREAM_POLL_INTERVAL: "0.2",
  STREAM_DISCOVERY_INTERVAL: "0.3",
  LOG_LEVEL: "ERROR",
  SOURCE_REDIS_MAX_RETRIES: "2",
  SOURCE_REDIS_BACKOFF_BASE: "0.05",
  SOURCE_REDIS_BACKOFF_MAX: "0.5",
  SOURCE_REDIS_COMMAND_TIMEOUT: "5",
  TARGET_REDIS_MAX_RETRIES: "2",
  TARGET_REDIS_BACKOFF_BASE: "0.05",
  TARGET_REDIS_BACKOFF_MAX: "0.5",
  TARGET_REDIS_COMMAND_TIMEOUT: "5",
  METRICS_PORT: "0",
});

/**
 * The configuration keys (as environment variables) of a replicator from
 * `source` to `target`: {@linkcode FAST_SETTINGS}, overridden by `settings`.
 * Usable as the `env` of `runCli`/`spawnCli` too.
 */
export function replicationEnv(
  source: ServerAddress,
  target: ServerAddress,
  settings: Settings = {},
): Record<string, string> {
  const env: Record<string, string> = {
    SOURCE_REDIS_HOST: source.host ?? "127.0.0.1",
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_HOST: target.host ?? "127.0.0.1",
    TARGET_REDIS_PORT: String(target.port),
    ...FAST_SETTINGS,
  };
  for (const [key, value] of Object.entries(settings)) env[key] = String(value);
  return env;
}

/** The same keys as {@linkcode replicationEnv}, as env.conf text (single-quoted values). */
export function replicationEnvConf(
  source: ServerAddress,
  target: ServerAddress,
  settings: Settings = {},
): string {
  return Object.entries(replicationEnv(source, target, settings))
    .map(([key, value]) => `${key}=${quoteValue(value)}`)
    .join("\n") + "\n";
}

function quoteValue(value: string): string {
  if (/^[A-Za-z0-9_.,:*?\-\/$\[\]]*$/.test(value)) return value;
  if (!value.includes("'") && !/[\r\n]/.test(value)) return `'${value}'`;
  return JSON.stringify(value);
}

/**
 * The loaded configuration of a replicator from `source` to `target`, read
 * from env.conf text made by {@linkcode replicationEnvConf} (the process
 * environment is not looked at).
 */
export function replicationConfig(
  source: ServerAddress,
  target: ServerAddress,
  settings: Settings = {},
): Config {
  return loadConfig({}, {}, replicationEnvConf(source, target, settings)).config;
}

/** Options for {@linkcode startReplicator}. */
export interface StartOptions extends RunOptions {
  /** Orchestrator hooks. */
  hooks?: OrchestratorHooks;
  /**
   * How long {@linkcode RunningReplicator.stop} waits for the run to end before it fails.
   * @default {15000}
   */
  stopTimeoutMs?: number;
}

/** An orchestrator running in this process. `await using` it: disposal stops it. */
export class RunningReplicator implements AsyncDisposable {
  /** The orchestrator. */
  readonly orchestrator: Orchestrator;
  readonly #controller = new AbortController();
  readonly #done: Promise<RunResult>;
  readonly #stopTimeoutMs: number;
  #settled = false;

  /** Use {@linkcode startReplicator}. */
  constructor(config: Config, options: StartOptions = {}) {
    const { hooks, stopTimeoutMs = 15_000, ...runOptions } = options;
    this.#stopTimeoutMs = stopTimeoutMs;
    this.orchestrator = new Orchestrator(config, hooks);
    this.#done = this.orchestrator.run(this.#controller.signal, runOptions);
    this.#done.then(
      () => (this.#settled = true),
      () => (this.#settled = true),
    );
  }

  /** Whether the run has ended (it only ends by itself in once mode or on a fatal error). */
  get finished(): boolean {
    return this.#settled;
  }

  /** The run's result, once it ends. */
  get done(): Promise<RunResult> {
    return this.#done;
  }

  /**
   * Aborts the run and waits for it to return.
   *
   * @throws {Error} when it has not returned within the stop timeout, or what the run threw.
   */
  async stop(): Promise<RunResult> {
    this.#controller.abort();
    return await withTimeout(this.#done, this.#stopTimeoutMs, "the replicator to stop");
  }

  /**
   * Stops the run, ignoring its errors.
   *
   * @throws {Error} when it has not returned within the stop timeout (a hang fails the test).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#controller.abort();
    await withTimeout(
      this.#done.catch(() => {}),
      this.#stopTimeoutMs,
      "the replicator to stop (at disposal)",
    );
  }
}

/**
 * Waits until `replicator` has run `passes` whole discovery passes that
 * began after this call. A pass is visible in the status: it ends with a
 * refresh of every stream's `stats` (a new snapshot object each time), so
 * this waits for `passes + 2` snapshots of one stream (the first may
 * predate the call, the second may end a pass that began before it). Needs
 * at least one stream in the status, and a continuous run.
 *
 * @throws {Error} on timeout.
 */
export async function waitForDiscoveryPasses(
  replicator: RunningReplicator,
  passes = 1,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 10_000 } = options;
  const snapshots = new Map<string, Set<object>>();
  await waitFor(() => {
    for (const s of replicator.orchestrator.status().streams) {
      if (!s.stats) continue;
      const id = `${s.db}:${s.key}`;
      const seen = snapshots.get(id) ?? new Set<object>();
      seen.add(s.stats);
      snapshots.set(id, seen);
      if (seen.size >= passes + 2) return true;
    }
    return false;
  }, { timeoutMs, intervalMs: 20, message: `${passes} discovery passes (status stats refreshes)` });
}

/** Starts `config`'s orchestrator in this process. */
export function startReplicator(config: Config, options: StartOptions = {}): RunningReplicator {
  return new RunningReplicator(config, options);
}

/**
 * `run --once` in this process: returns the result, or fails when it has
 * not returned within `timeoutMs` (the run is aborted then).
 */
export async function runOnce(
  config: Config,
  options: { hooks?: OrchestratorHooks; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { hooks, timeoutMs = 20_000 } = options;
  await using replicator = startReplicator(config, { hooks, once: true });
  try {
    return await withTimeout(replicator.done, timeoutMs, "run --once to return");
  } catch (error) {
    await replicator.stop().catch(() => {});
    throw error;
  }
}

/** `promise`, or an error naming `what` after `ms` milliseconds. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One captured log line, split. */
export interface CapturedLine {
  /** DEBUG, INFO, WARNING, ERROR or CRITICAL. */
  level: LogLevelName;
  /** The logger name, e.g. `redis-stream-sync.orchestrator`. */
  logger: string;
  /** The rendered message. */
  message: string;
}

const LEVEL_RANK: Readonly<Record<LogLevelName, number>> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  CRITICAL: 50,
};

/** Log lines captured by {@linkcode captureLogs}. */
export class LogCapture {
  /** Every line, in order. */
  readonly lines: CapturedLine[] = [];

  /** Lines at `level` or above whose message matches `pattern` (all such lines without one). */
  atLeast(level: LogLevelName, pattern?: RegExp | string): CapturedLine[] {
    return this.lines.filter((line) =>
      LEVEL_RANK[line.level] >= LEVEL_RANK[level] && matches(line.message, pattern)
    );
  }

  /** Lines at exactly `level` whose message matches `pattern`. */
  at(level: LogLevelName, pattern?: RegExp | string): CapturedLine[] {
    return this.lines.filter((line) => line.level === level && matches(line.message, pattern));
  }

  /** Every line as text, for assertion messages. */
  toString(): string {
    return this.lines.map((l) => `${l.level} ${l.logger} ${l.message}`).join("\n");
  }
}

function matches(message: string, pattern: RegExp | string | undefined): boolean {
  if (pattern === undefined) return true;
  if (typeof pattern === "string") return message.includes(pattern);
  pattern.lastIndex = 0;
  return pattern.test(message);
}

const SEPARATOR = "\u0001";

/**
 * Sends the service's logs at `level` and above to a new {@linkcode LogCapture}
 * (instead of stderr) until the next call of this or {@linkcode quietLogs}.
 */
export async function captureLogs(level: LogLevelName = "INFO"): Promise<LogCapture> {
  const capture = new LogCapture();
  await setupLogging({
    level,
    format: `%(levelname)s${SEPARATOR}%(name)s${SEPARATOR}%(message)s`,
    write: (line) => {
      const [lvl, logger, ...rest] = line.replace(/\n$/, "").split(SEPARATOR);
      capture.lines.push({
        level: lvl as LogLevelName,
        logger,
        message: rest.join(SEPARATOR),
      });
    },
  });
  return capture;
}

/** Drops every log line (tests that do not look at logs). */
export async function quietLogs(): Promise<void> {
  await setupLogging({ level: "CRITICAL", write: () => {} });
}

export type { Entries } from "../testing/redis.ts";
import type { Entries } from "../testing/redis.ts";

/** Whether two entry lists are equal: same IDs, same field and value bytes, same order. */
export function sameEntries(a: Entries, b: Entries): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const [idA, fieldsA] = a[i];
    const [idB, fieldsB] = b[i];
    if (idA !== idB || fieldsA.length !== fieldsB.length) return false;
    for (let j = 0; j < fieldsA.length; j++) {
      if (!sameBytes(fieldsA[j], fieldsB[j])) return false;
    }
  }
  return true;
}

/**
 * Where two entry lists first differ (an ID, a field count, the bytes of a
 * field or value, the length), or undefined when they are equal.
 */
export function entriesDifference(a: Entries, b: Entries): string | undefined {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const [idA, fieldsA] = a[i];
    const [idB, fieldsB] = b[i];
    if (idA !== idB) return `entry #${i}: ID ${idA} vs ${idB}`;
    if (fieldsA.length !== fieldsB.length) {
      return `entry ${idA}: ${fieldsA.length} vs ${fieldsB.length} fields and values`;
    }
    for (let j = 0; j < fieldsA.length; j++) {
      if (!sameBytes(fieldsA[j], fieldsB[j])) {
        return `entry ${idA}: field/value #${j} differs (${fieldsA[j].length} vs ${
          fieldsB[j].length
        } bytes)`;
      }
    }
  }
  if (a.length !== b.length) return `${a.length} vs ${b.length} entries`;
  return undefined;
}

/** Asserts that `actual` equals `expected`: same IDs, same field and value bytes, same order. */
export function assertSameEntries(actual: Entries, expected: Entries, what = "entries"): void {
  const difference = entriesDifference(actual, expected);
  if (difference !== undefined) assert.fail(`${what} differ: ${difference}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Options for {@linkcode waitForCopy}. */
export interface WaitForCopyOptions {
  /**
   * Give up after this many milliseconds.
   * @default {20000}
   */
  timeoutMs?: number;
}

/**
 * Waits until the target stream holds exactly the entries of the source
 * stream (IDs and bytes, in order; the source must not be empty), and
 * returns them.
 *
 * @throws {Error} on timeout, showing how far the copy got.
 */
export async function waitForCopy(
  source: TestClient,
  sourceKey: RedisArg,
  target: TestClient,
  targetKey: RedisArg = sourceKey,
  options: WaitForCopyOptions = {},
): Promise<Entries> {
  const { timeoutMs = 20_000 } = options;
  let want: Entries = [];
  let got: Entries = [];
  try {
    await waitFor(async () => {
      want = await source.xrangeAll(sourceKey);
      got = await target.xrangeAll(targetKey);
      return want.length > 0 && sameEntries(want, got);
    }, { timeoutMs, intervalMs: 50, message: `the copy of ${describeKey(sourceKey)}` });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}: source has ${want.length} entries (last ${
        want.at(-1)?.[0]
      }), target has ${got.length} (last ${got.at(-1)?.[0]})`,
      { cause: error },
    );
  }
  return want;
}

/**
 * Waits until the target stream has at least `count` entries and returns them.
 *
 * @throws {Error} on timeout.
 */
export async function waitForEntries(
  target: TestClient,
  key: RedisArg,
  count: number,
  options: WaitForCopyOptions = {},
): Promise<Entries> {
  const { timeoutMs = 20_000 } = options;
  let got: Entries = [];
  await waitFor(async () => {
    got = await target.xrangeAll(key);
    return got.length >= count;
  }, { timeoutMs, message: `${count} entries in ${describeKey(key)}` });
  return got;
}

function describeKey(key: RedisArg): string {
  return typeof key === "string" ? key : `<${key.length} bytes>`;
}

/**
 * Appends `count` entries (`n` = 0..count-1 and a payload) with `XADD *`,
 * 500 at a time in one pipeline: a backlog, fast.
 */
export async function fillStream(client: TestClient, key: RedisArg, count: number): Promise<void> {
  for (let done = 0; done < count; done += 500) {
    const batch = [];
    for (let i = done; i < Math.min(count, done + 500); i++) {
      batch.push(client.xadd(key, "*", { n: String(i), payload: `entry ${i} `.repeat(4) }));
    }
    await Promise.all(batch);
  }
}

/** Appends `count` entries (`n` = 1..count, plus `extra` fields) with `XADD *`; returns their IDs. */
export async function addEntries(
  client: TestClient,
  key: RedisArg,
  count: number,
  extra: Record<string, string> = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; n <= count; n++) {
    ids.push(await client.xadd(key, "*", { n: String(n), ...extra }));
  }
  return ids;
}

/** The names of the consumer groups of a stream ([] when the key does not exist). */
export async function groupNames(client: TestClient, key: RedisArg): Promise<string[]> {
  try {
    const groups = await client.send(["XINFO", "GROUPS", key]) as unknown[];
    return groups.map((group) => {
      const flat = group as unknown[];
      const at = flat.findIndex((item) => String(item) === "name");
      return String(flat[at + 1]);
    });
  } catch (error) {
    if (/no such key/i.test(String((error as Error).message))) return [];
    throw error;
  }
}

/** The number of entries pending in `group` of a stream (XPENDING summary). */
export async function pendingCount(
  client: TestClient,
  key: RedisArg,
  group: string,
): Promise<number> {
  const reply = await client.send(["XPENDING", key, group]) as unknown[];
  return Number(reply[0]);
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
