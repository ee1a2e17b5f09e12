/**
 * Helpers of `deno task bench` (scripts/bench.ts): the replicator as a
 * separate `deno run main.ts` process with /proc sampling, connection
 * sampling through CLIENT LIST, filling and counting streams, the seed
 * baseline and the redis-benchmark ceiling, and small statistics.
 *
 * @module
 */
import { type CliProcess, spawnCli } from "../tests/_cli.ts";
import type { TestClient } from "../tests/_redis.ts";

/** Prefix of every key the bench creates; STREAM_DISCOVERY_PATTERNS is `bench-*`. */
export const KEY_PREFIX = "bench-";
/** Entries sent per pipelined chunk when filling or counting. */
const CHUNK = 5000;
/** Where the replicator's env.conf would be looked for: an empty directory, so none is read. */
let emptyDir: string | undefined;

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
export async function infoNumber(client: TestClient, section: string, field: string) {
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
export async function poll(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

let clockTicks: number | undefined;

/** `getconf CLK_TCK`: the unit of utime/stime in /proc/<pid>/stat. */
export async function clkTck(): Promise<number> {
  if (clockTicks === undefined) {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output()
      .catch(() => undefined);
    const n = out?.success ? Number(new TextDecoder().decode(out.stdout).trim()) : NaN;
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** A /proc reading of a process: VmRSS and VmHWM in bytes, utime+stime in clock ticks. */
export interface ProcSample {
  rss: number;
  hwm: number;
  ticks: number;
}

/**
 * /proc/<pid>/status and /proc/<pid>/stat of `pid`, or undefined if it is
 * gone. Deno reads /proc/<pid>/ only with --allow-all: under the bench
 * task's flags they are read through `cat` (--allow-run), as in
 * tests/operability_test.ts.
 */
export async function procSample(pid: number): Promise<ProcSample | undefined> {
  const paths = [`/proc/${pid}/status`, `/proc/${pid}/stat`];
  let text: string;
  try {
    text = paths.map((path) => Deno.readTextFileSync(path)).join("");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) return undefined;
    const out = await new Deno.Command("cat", { args: paths, stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) return undefined;
    text = new TextDecoder().decode(out.stdout);
  }
  const kb = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1]);
  // The stat line: fields after the command name (in parentheses, may hold spaces).
  const stat = text.match(new RegExp(`^${pid} \\(.*\\) (.*)$`, "m"))?.[1].split(" ") ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]); // fields 14 and 15: utime, stime
  const rss = kb("VmRSS") * 1024, hwm = kb("VmHWM") * 1024;
  return Number.isFinite(rss) && Number.isFinite(ticks) ? { rss, hwm, ticks } : undefined;
}

/** Environment of a replicator run: loopback servers, `bench-*` keys, DB 0, quiet, no listener. */
export function replicatorEnv(
  sourcePort: number,
  targetPort: number,
  extra: Record<string, string> = {},
): Record<string, string> {
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

/**
 * The replicator as users run it: `deno run <start task flags> main.ts
 * <args>` (tests/_cli.ts spawnCli: clean environment, the start task's
 * permissions), in an empty working directory (no env.conf). Samples
 * /proc/<pid> every `sampleMs` while it runs. `await using` it: disposal
 * kills it if it still runs.
 */
export class Replicator implements AsyncDisposable {
  /** performance.now() just before the spawn. */
  readonly startedAt: number;
  /** performance.now() when the process exited (undefined while it runs). */
  exitedAt: number | undefined;
  readonly pid: number;
  /** Largest VmHWM seen, and every VmRSS sample (t: ms since the spawn). */
  peakHwm = 0;
  readonly rss: Array<{ t: number; rss: number }> = [];
  readonly #cli: CliProcess;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #status: Promise<Deno.CommandStatus>;
  #sampling = false;

  private constructor(cli: CliProcess, startedAt: number, sampleMs: number) {
    this.#cli = cli;
    this.startedAt = startedAt;
    this.pid = cli.process.pid;
    this.#status = cli.process.status.then((status) => {
      this.exitedAt = performance.now();
      return status;
    });
    this.#timer = setInterval(() => {
      if (this.#sampling) return;
      this.#sampling = true;
      this.sample().finally(() => (this.#sampling = false));
    }, sampleMs);
  }

  static async spawn(
    args: string[],
    env: Record<string, string>,
    options: { sampleMs?: number; timeoutMs?: number } = {},
  ): Promise<Replicator> {
    emptyDir ??= await Deno.makeTempDir({ prefix: "redis-stream-sync-bench-" });
    const startedAt = performance.now();
    const cli = spawnCli(args, { env, cwd: emptyDir, timeoutMs: options.timeoutMs ?? 3_600_000 });
    return new Replicator(cli, startedAt, options.sampleMs ?? 100);
  }

  /** Reads /proc now; returns the sample (undefined once the process is gone). */
  async sample(): Promise<ProcSample | undefined> {
    const s = await procSample(this.pid);
    if (s && this.exitedAt === undefined) {
      this.peakHwm = Math.max(this.peakHwm, s.hwm);
      this.rss.push({ t: performance.now() - this.startedAt, rss: s.rss });
    }
    return s;
  }

  get running(): boolean {
    return this.exitedAt === undefined;
  }

  /** Largest VmRSS sample. */
  get peakRss(): number {
    return this.rss.reduce((m, s) => Math.max(m, s.rss), 0);
  }

  /** Seconds from the spawn to the exit (or to now). */
  get seconds(): number {
    return ((this.exitedAt ?? performance.now()) - this.startedAt) / 1000;
  }

  /** Waits at most `ms` for the exit: its code, or undefined on timeout. */
  async waitExit(ms: number): Promise<number | undefined> {
    const status = await within(this.#status, ms);
    return status?.code;
  }

  /** What it printed (standard error then standard output), last `chars` characters. */
  output(chars = 2000): string {
    return `${this.#cli.stderr()}${this.#cli.stdout()}`.slice(-chars);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit. */
  async stop(graceMs = 10_000): Promise<number | undefined> {
    if (this.running) this.#cli.signal("SIGTERM");
    const code = await this.waitExit(graceMs);
    if (code === undefined) this.#cli.signal("SIGKILL");
    await this.#status;
    clearInterval(this.#timer);
    return code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#timer);
    await this.#cli[Symbol.asyncDispose]().catch(() => {});
  }
}

/**
 * Samples CLIENT LIST on each server every `intervalMs` and keeps, per
 * server, the most connections named `redis-stream-sync*` seen at once.
 */
export class ConnectionSampler {
  readonly max: Record<string, number> = {};
  readonly #servers: Record<string, TestClient>;
  readonly #loop: Promise<void>;
  #stopped = false;

  constructor(servers: Record<string, TestClient>, intervalMs = 100) {
    this.#servers = servers;
    for (const name of Object.keys(servers)) this.max[name] = 0;
    this.#loop = this.#run(intervalMs);
  }

  async #run(intervalMs: number): Promise<void> {
    while (!this.#stopped) {
      await this.sample();
      await sleep(intervalMs);
    }
  }

  async sample(): Promise<void> {
    for (const [name, client] of Object.entries(this.#servers)) {
      try {
        const clients = await client.clientList();
        const ours = clients.filter((c) => c.name?.startsWith("redis-stream-sync")).length;
        this.max[name] = Math.max(this.max[name], ours);
      } catch {
        // The server is busy or gone: the next sample counts.
      }
    }
  }

  async stop(): Promise<Record<string, number>> {
    this.#stopped = true;
    await this.#loop;
    return this.max;
  }
}

/** Runs a command with a timeout (SIGKILL); its stdout, or an error with its stderr. */
export async function runTool(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }, timeoutMs);
  try {
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (out.signal === "SIGKILL") throw new Error(`timeout after ${timeoutMs / 1000} s`);
    if (!out.success) throw new Error(`${cmd} failed (${out.code}): ${stderr.slice(-500)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    clearTimeout(timer);
  }
}

const SEED_BASELINE = new URL("../../shared/bench/seed_baseline.py", import.meta.url).pathname;

/** seed_baseline.py (batch 100): entries copied and its rate (from its own clock, after connecting). */
export async function runSeed(
  sourcePort: number,
  targetPort: number,
  key: string,
  options: { pipelined: boolean; timeoutMs: number },
): Promise<{ entries: number; rate: number }> {
  const args = [SEED_BASELINE, String(sourcePort), String(targetPort), key, "100"];
  if (options.pipelined) args.push("--pipelined");
  const out = await runTool("/usr/bin/python3", args, options.timeoutMs);
  const [entries, rate] = out.trim().split(/\s+/).map(Number);
  return { entries, rate };
}

/** `redis-benchmark -P 64 -n <n>` of `XADD <key> * <entryFields>` on the server: requests/s. */
export async function runCeiling(port: number, key: string, n: number, timeoutMs: number) {
  const out = await runTool("redis-benchmark", [
    ..."-h 127.0.0.1 -P 64 --csv".split(" "),
    ...["-p", String(port), "-n", String(n), "XADD", key, "*", ...entryFields(1)],
  ], timeoutMs);
  const rate = Number(out.trim().split("\n").pop()?.split(",")[1]?.replaceAll('"', ""));
  if (!Number.isFinite(rate)) throw new Error(`cannot read redis-benchmark's output: ${out}`);
  return rate;
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
  /** Row a's entries/s, once row a has run. */
  aRate?: number;
}
