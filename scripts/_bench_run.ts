/**
 * Helpers of `deno task bench`: one `main.ts run --once` measured from the
 * spawn to the exit, and the external references (seed_baseline.py,
 * redis-benchmark). See scripts/bench.ts.
 *
 * @module
 */
import { connect, type TestClient } from "../testing/redis.ts";
import { ConnectionSampler, Replicator } from "./_bench_proc.ts";
import {
  entryFields,
  infoNumber,
  int,
  replicatorEnv,
  tracked,
  untracked,
  within,
} from "./_bench_util.ts";

const CONNECTIONS_RECEIVED = { section: "stats", field: "total_connections_received" };

/** One `run --once` measured from the spawn to the exit. */
export interface Backfill {
  /** Entries on the target after the run, and on the source. */
  copied: number;
  expected: number;
  /** Spawn to exit (or to the kill, after a timeout), in seconds. */
  seconds: number;
  /** copied / seconds. */
  rate: number;
  timedOut: boolean;
  timeoutSeconds: number;
  exitCode?: number;
  /** Spawn to the first entry on the target (ms), when watched. */
  firstEntryMs?: number;
  /** Largest VmHWM, and largest VmRSS sample (bytes). */
  peakHwm: number;
  peakRss: number;
  /** Most connections named redis-stream-sync* at once, per server (CLIENT LIST every 100 ms). */
  maxConnections: Record<string, number>;
  /** total_connections_received during the run, per server. */
  connectionsReceived: Record<string, number>;
  /** The end of the replicator's output, when it failed. */
  output?: string;
}

interface BackfillOptions {
  src: TestClient;
  dst: TestClient;
  /** Where the replicator connects for the target (the target, or a proxy in front of it). */
  targetPort: number;
  sourcePort: number;
  /** Entries on the target now (the bench's count: XLEN sums). */
  count: () => Promise<number>;
  expected: number;
  timeoutMs: number;
  /** Watch this key on the target for the first entry (XREAD BLOCK started before the spawn). */
  firstKey?: string;
  /** The target's own port, for that watch. */
  watchPort?: number;
  env?: Record<string, string>;
}

/** Spawns `main.ts run --once`, samples it, waits (at most timeoutMs), counts the target. */
export async function backfill(o: BackfillOptions): Promise<Backfill> {
  const received = async () => ({
    source: await infoNumber(o.src, CONNECTIONS_RECEIVED),
    target: await infoNumber(o.dst, CONNECTIONS_RECEIVED),
  });
  let watcher: TestClient | undefined;
  let firstAt: number | undefined;
  if (o.firstKey) watcher = await connect({ host: "127.0.0.1", port: o.watchPort ?? o.targetPort });
  const before = await received();
  const sampler = new ConnectionSampler({ source: o.src, target: o.dst });
  const first = watcher?.send(["XREAD", "BLOCK", "0", "STREAMS", o.firstKey!, "0-0"])
    .then(() => (firstAt = performance.now()), () => {});
  await using rep = await Replicator.spawn(
    ["run", "--once"],
    replicatorEnv({ source: o.sourcePort, target: o.targetPort }, o.env),
  );
  let exitCode = await rep.waitExit(o.timeoutMs);
  const timedOut = exitCode === undefined;
  if (timedOut) exitCode = await rep.stop(0);
  const maxConnections = await sampler.stop();
  if (watcher) {
    await within(first!, 100);
    await watcher.close();
  }
  const after = await received();
  const copied = await o.count();
  const seconds = rep.seconds;
  return {
    copied,
    expected: o.expected,
    seconds,
    rate: copied / seconds,
    timedOut,
    timeoutSeconds: o.timeoutMs / 1000,
    exitCode,
    firstEntryMs: firstAt === undefined ? undefined : firstAt - rep.startedAt,
    peakHwm: rep.peakHwm,
    peakRss: rep.peakRss,
    maxConnections,
    connectionsReceived: {
      source: after.source - before.source,
      target: after.target - before.target,
    },
    output: timedOut || exitCode !== 0 || copied !== o.expected ? rep.output() : undefined,
  };
}

/** "61,234 entries/s (200,000 in 3.27 s)", or what went wrong. */
export function describeBackfill(r: Backfill): string {
  if (r.timedOut) {
    return `timeout after ${r.timeoutSeconds} s (${int(r.copied)} of ${int(r.expected)} copied)`;
  }
  const bad = r.exitCode !== 0
    ? ` EXIT ${r.exitCode}`
    : r.copied !== r.expected
    ? ` COPIED ${int(r.copied)} OF ${int(r.expected)}`
    : "";
  return `${int(r.rate)} entries/s (${int(r.copied)} in ${r.seconds.toFixed(2)} s)${bad}`;
}

/** Whether the run copied everything and exited 0 in time. */
export function complete(r: Backfill): boolean {
  return !r.timedOut && r.exitCode === 0 && r.copied === r.expected;
}

/** Runs a command with a timeout (SIGKILL); its stdout, or an error with its stderr. */
export async function runTool(
  cmd: string,
  args: string[],
  options: { timeoutMs: number },
): Promise<string> {
  const { timeoutMs } = options;
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  };
  const handle = tracked({ [Symbol.asyncDispose]: () => Promise.resolve(kill()) });
  const timer = setTimeout(kill, timeoutMs);
  try {
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (out.signal === "SIGKILL") throw new Error(`timeout after ${timeoutMs / 1000} s`);
    if (!out.success) throw new Error(`${cmd} failed (${out.code}): ${stderr.slice(-500)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    clearTimeout(timer);
    untracked(handle);
  }
}

const SEED_BASELINE = new URL("./seed_baseline.py", import.meta.url).pathname;

/**
 * seed_baseline.py (batch 100): entries copied, its rate (its own clock,
 * from after it connected and made its group) and spawn-to-exit seconds.
 */
export async function runSeed(
  ports: { source: number; target: number },
  options: { key: string; pipelined: boolean; timeoutMs: number },
): Promise<{ entries: number; rate: number; wallSeconds: number }> {
  const args = [SEED_BASELINE, String(ports.source), String(ports.target), options.key, "100"];
  if (options.pipelined) args.push("--pipelined");
  const started = performance.now();
  const out = await runTool("/usr/bin/python3", args, options);
  const wallSeconds = (performance.now() - started) / 1000;
  const [entries, rate] = out.trim().split(/\s+/).map(Number);
  if (!(entries > 0 && rate > 0)) throw new Error(`seed_baseline.py printed "${out.trim()}"`);
  return { entries, rate, wallSeconds };
}

/** `redis-benchmark -P 64 -n <n>` of `XADD <key> * <entryFields>` on the server (over TLS with `tlsCa`): requests/s. */
export async function runCeiling(
  port: number,
  options: { key: string; entries: number; timeoutMs: number; tlsCa?: string },
): Promise<number> {
  const { key, entries, timeoutMs, tlsCa } = options;
  const out = await runTool("redis-benchmark", [
    ..."-h 127.0.0.1 -P 64 --csv".split(" "),
    ...(tlsCa ? ["--tls", "--cacert", tlsCa] : []),
    ...["-p", String(port), "-n", String(entries), "XADD", key, "*", ...entryFields(1)],
  ], { timeoutMs });
  const rate = Number(out.trim().split("\n").pop()?.split(",")[1]?.replaceAll('"', ""));
  if (!Number.isFinite(rate)) throw new Error(`cannot read redis-benchmark's output: ${out}`);
  return rate;
}
