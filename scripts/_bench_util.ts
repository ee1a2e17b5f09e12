/**
 * Helpers of `deno task bench` (scripts/bench.ts): servers and processes
 * cleaned up on SIGINT/SIGTERM, the entries' shape, filling and counting
 * streams, the replicator's environment, small statistics and formatting,
 * and the table's types.
 *
 * @module
 */
import { RedisServer, type RedisServerOptions, type TestClient } from "../testing/redis.ts";

/** Prefix of every key the bench creates; STREAM_DISCOVERY_PATTERNS is `bench-*`. */
export const KEY_PREFIX = "bench-";
/** Entries sent per pipelined chunk when filling or counting. */
const CHUNK = 5000;
/** Where the replicator's env.conf would be looked for: an empty directory, so none is read. */
let emptyDir: string | undefined;

/** Servers and processes alive now, disposed if the bench is interrupted. */
const live = new Set<AsyncDisposable>();

/** Registers `resource` to be disposed if the bench is interrupted (SIGINT, SIGTERM). */
export function tracked<T extends AsyncDisposable>(resource: T): T {
  live.add(resource);
  return resource;
}

/** Forgets a resource of {@linkcode tracked} (it was disposed). */
export function untracked(resource: AsyncDisposable): void {
  live.delete(resource);
}

/** RedisServer.start, tracked. */
export async function startServer(options?: RedisServerOptions): Promise<RedisServer> {
  return tracked(await RedisServer.start(options));
}

/** The bench's temporary directory, empty: the replicator's working directory (no env.conf). */
export async function benchTempDir(): Promise<string> {
  emptyDir ??= await Deno.makeTempDir({ prefix: "redis-stream-sync-bench-" });
  return emptyDir;
}

/** Removes the bench's temporary directory. */
export async function removeTempDir(): Promise<void> {
  if (emptyDir) await Deno.remove(emptyDir, { recursive: true }).catch(() => {});
  emptyDir = undefined;
}

/**
 * On SIGINT or SIGTERM: kills every tracked server and process (newest
 * first), removes the temporary directory, exits 130 or 143.
 */
export function disposeOnSignals(): void {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, async () => {
      progress(`${signal}: stopping every server and process`);
      for (const resource of [...live].reverse()) {
        await within(Promise.resolve(resource[Symbol.asyncDispose]()).catch(() => {}), 5000);
      }
      await removeTempDir();
      Deno.exit(code);
    });
  }
}

/** Milliseconds since the epoch, sub-millisecond, comparable across processes on this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Logs a progress line to stderr (stdout carries the table only). */
export function progress(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The 5 fields of backfill entry `i`: 100 bytes of field names and values
 * (`seq` 8 digits, `ts` 13 digits, `src`, `kind`, `payload` 42 bytes).
 */
export function entryFields(i: number): string[] {
  return [
    "seq",
    String(i).padStart(8, "0"),
    "ts",
    String(1_700_000_000_000 + i),
    "src",
    "sensor-0042",
    "kind",
    "reading",
    "payload",
    "x".repeat(42),
  ];
}

/** `bench-<name>-0000` ... for `count` keys. */
export function keyList(name: string, count: number): string[] {
  const width = String(Math.max(0, count - 1)).length;
  return Array.from(
    { length: count },
    (_, i) => `${KEY_PREFIX}${name}-${String(i).padStart(width, "0")}`,
  );
}

/** Writes `perKey` entries (entryFields) to every key, pipelined, key after key. */
export async function fillStreams(
  client: TestClient,
  keys: string[],
  perKey: number,
): Promise<void> {
  let pending: Promise<unknown>[] = [];
  let n = 0;
  for (const key of keys) {
    for (let i = 0; i < perKey; i++) {
      pending.push(client.send(["XADD", key, "*", ...entryFields(n++)]));
      if (pending.length >= CHUNK) {
        await Promise.all(pending);
        pending = [];
      }
    }
  }
  await Promise.all(pending);
}

/** XLEN of every key (0 for a missing key), pipelined. */
export async function xlens(client: TestClient, keys: string[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < keys.length; i += CHUNK) {
    const part = await Promise.all(keys.slice(i, i + CHUNK).map((k) => client.send(["XLEN", k])));
    out.push(...part.map(Number));
  }
  return out;
}

export function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** One field of INFO `section` as a number (NaN if absent). */
export async function infoNumber(
  client: TestClient,
  which: { section: string; field: string },
): Promise<number> {
  const { section, field } = which;
  const text = String(await client.send(["INFO", section]));
  const m = text.match(new RegExp(`^${field}:([^\\r\\n]*)`, "m"));
  return m ? Number(m[1]) : NaN;
}

/** The value at quantile `q` (0-1) of ascending `sorted` (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** The median of `values` (the lower middle one of an even count); NaN if empty. */
export function median(values: number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5);
}

/** Least-squares slope of y over x (NaN with fewer than 2 points). */
export function slope(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return NaN;
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i];
    sy += ys[i];
    sxx += xs[i] * xs[i];
    sxy += xs[i] * ys[i];
  }
  const d = n * sxx - sx * sx;
  return d === 0 ? NaN : (n * sxy - sx * sy) / d;
}

/** Bytes as MB (10^6, the unit of the goals), one decimal. */
export function mb(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? "n/a" : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A whole number with thousands separators. */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a";
}

/** `promise`'s value, or `undefined` once `ms` have passed first. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls `check` every `intervalMs` until it returns true; false after `timeoutMs`. */
export async function poll(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const { timeoutMs, intervalMs = 100 } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** Environment of a replicator run: loopback servers, `bench-*` keys, DB 0, quiet, no listener. */
export function replicatorEnv(
  ports: { source: number; target: number },
  extra: Record<string, string> = {},
): Record<string, string> {
  const { source: sourcePort, target: targetPort } = ports;
  return {
    SOURCE_REDIS_HOST: "127.0.0.1",
    SOURCE_REDIS_PORT: String(sourcePort),
    TARGET_REDIS_HOST: "127.0.0.1",
    TARGET_REDIS_PORT: String(targetPort),
    STREAM_DISCOVERY_PATTERNS: `${KEY_PREFIX}*`,
    REDIS_DB_SEARCH_RANGE: "0",
    METRICS_PORT: "0",
    LOG_LEVEL: "WARNING",
    ...extra,
  };
}

/** The consumer group the replicator uses by default (STREAM_CONSUMER_GROUP). */
export const GROUP = "redis-sync-group";

/** One line of the table: a figure, and its goal when it has one. */
export interface Check {
  /** The row's letter. */
  row: string;
  /** What is measured. */
  figure: string;
  /** The measured value, as printed. */
  measured: string;
  /** The goal, as printed; none for figures shown for information. */
  goal?: string;
  /** Whether the goal is met; undefined without a goal. */
  pass?: boolean;
}

/** What a row produced: its table lines and its figures (for the JSON file). */
export interface RowResult {
  row: string;
  title: string;
  checks: Check[];
  figures: Record<string, unknown>;
}

/** Options shared by the rows, and figures one row passes to a later one. */
export interface BenchContext {
  /** Entries of the one-stream backfill (rows a and d). */
  entries: number;
  /** Row f's duration in seconds (only with --soak). */
  soakSeconds?: number;
  /** Rounds of row a (interleaved; medians compared). */
  repeat?: number;
  /** Row q's numbers of quiet streams. */
  quietSizes?: number[];
  /** Rows c and q with the source's `xadd` notifications off (false) and on (true). */
  events?: boolean[];
  /** Row a's entries/s, once row a has run. */
  aRate?: number;
}
