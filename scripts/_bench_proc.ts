/**
 * Helpers of `deno task bench`: the replicator as a separate `deno run
 * main.ts` process with /proc sampling, and connection sampling through
 * CLIENT LIST. See scripts/bench.ts.
 *
 * @module
 */
import { type CliProcess, spawnCli } from "../testing/cli.ts";
import type { TestClient } from "../testing/redis.ts";
import { benchTempDir, sleep, tracked, within } from "./_bench_util.ts";

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

/**
 * The replicator as users run it: `deno run <start task flags> main.ts
 * <args>` (testing/cli.ts spawnCli: clean environment, the start task's
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
    const cwd = await benchTempDir();
    const startedAt = performance.now();
    const cli = spawnCli(args, { env, cwd, timeoutMs: options.timeoutMs ?? 3_600_000 });
    return tracked(new Replicator(cli, startedAt, options.sampleMs ?? 100));
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
