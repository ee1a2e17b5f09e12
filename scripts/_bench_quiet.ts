/**
 * The bench's row q (issue 24): quiet streams at scale, 1,000, 10,000 and
 * 100,000 of them (`--quiet SIZES`) side by side. Per size, on fresh
 * servers: N streams of 2 entries; `run --once` (time, peak RSS); then
 * `run` left live with nothing to copy: once every stream replicates (its
 * `/metrics`) and the first reads of every stream are done (the source
 * serves fewer than 20 reads a second, 3 s in a row), both servers' `INFO commandstats` are
 * reset, and over the window: the commands per second the tool sends to
 * each server (the top ones named), the source's CPU spent on them (the
 * commands' own `usec`), the tool's CPU and RSS. Then the steady idle:
 * the tool's CPU and RSS over 30 s from 60 s after the first reads (the
 * goals are checked there: the start's last work, its heap's first
 * collections and trims, falls in the first window). Then 200 single
 * entries into random streams, 100 ms apart (20 s; with 20, p99 was the
 * slowest one): the wake-up latency (added on the
 * source to seen on the target, the target polled every 2 ms; p50, p99,
 * max, how many never arrived within 5 s), beside the same entries on a
 * REPLICAOF replica of the source started before them, polled the same way
 * in the same loop (issue 18: p99 within 3 ms of the replica's, none later
 * than 100 ms). See scripts/bench.ts.
 *
 * @module
 */
import { connect, freePort, type TestClient } from "../testing/redis.ts";
import {
  type BenchContext,
  type Check,
  fillStreams,
  int,
  keyList,
  mb,
  poll,
  progress,
  quantile,
  replicatorEnv,
  type RowResult,
  sleep,
  startServer,
} from "./_bench_util.ts";
import { clkTck, Replicator } from "./_bench_proc.ts";

/** Seconds of idle measured per size, right after the first reads are done. */
const WINDOW_S = 20;
/**
 * The steady idle window: from this many seconds after the first reads are
 * done (the start's last work over: the heap's first collections and
 * trims, the first passes of the checks that run in the background)...
 */
const STEADY_FROM_S = 60;
/** ...for this many seconds. */
const STEADY_S = 30;
/** Single entries into random quiet streams per size. */
const WAKE_ENTRIES = 200;
/** Milliseconds between two of them. */
const WAKE_GAP_MS = 100;

/** Reads a second below which the replicator's start counts as settled. */
const SETTLED_READS = 20;

/** Reads (XREADGROUP, fenced or not, and XREAD waits) the source has served so far. */
async function reads(client: TestClient): Promise<number> {
  const stats = await commandStats(client);
  let n = 0;
  for (const name of ["xreadgroup", "xread", "eval", "evalsha"]) n += stats.get(name)?.calls ?? 0;
  return n;
}

/** Per command: calls and microseconds, from INFO commandstats. */
export type CommandStats = Map<string, { calls: number; usec: number }>;

/** Streams in the state replicating, from the replicator's /metrics on `port` (0 when not served yet). */
export async function replicating(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^redis_stream_sync_streams\{state="replicating"\} (\d+)/m.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export async function commandStats(client: TestClient): Promise<CommandStats> {
  const info = String(await client.send(["INFO", "commandstats"]));
  const out: CommandStats = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

/** Calls/s and usec/s over `seconds`, without the bench's own INFO and CONFIG calls. */
export function rates(stats: CommandStats, seconds: number) {
  let calls = 0, usec = 0;
  const top: Array<[string, number, number]> = [];
  for (const [name, s] of stats) {
    if (name === "info" || name.startsWith("config")) continue;
    calls += s.calls;
    usec += s.usec;
    top.push([name, s.calls / seconds, s.usec / seconds]);
  }
  top.sort((a, b) => b[1] - a[1]);
  const byCpu = [...top].sort((a, b) => b[2] - a[2]);
  return {
    callsPerS: calls / seconds,
    cpuShare: usec / 1e6 / seconds,
    top: top.slice(0, 4).map(([n, r]) => `${n} ${r.toFixed(1)}`).join(", "),
    /** The commands that cost the server most, in µs per second. */
    topCpu: byCpu.slice(0, 4).map(([n, , u]) => `${n} ${u.toFixed(0)} µs/s`).join(", "),
    commands: Object.fromEntries(top.map(([n, r, u]) => [n, { perS: r, usecPerS: u }])),
  };
}

interface SizeResult {
  streams: number;
  onceSeconds?: number;
  onceHwm: number;
  startupSeconds?: number;
  settledSeconds?: number;
  /** The source sent `xadd` keyspace events (notify-keyspace-events Et). */
  events: boolean;
  source: ReturnType<typeof rates>;
  target: ReturnType<typeof rates>;
  toolCpu: number;
  maxRss: number;
  /** The tool's CPU (share of a core) and max RSS in the steady window. */
  steady?: { cpu: number; maxRss: number };
  wake: number[];
  missed: number;
  /** The same entries on a REPLICAOF replica of the source, probed the same way. */
  wakeReplica: number[];
  missedReplica: number;
}

async function measureSize(streams: number, events: boolean): Promise<SizeResult> {
  // With notifications (issue 24): readers wait in the tool, woken by the `xadd` events.
  await using source = await startServer(
    events ? { args: ["--notify-keyspace-events", "Et"] } : undefined,
  );
  await using target = await startServer();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = keyList("q", streams);
  progress(`q: ${int(streams)} streams of 2 entries`);
  await fillStreams(src, keys, 2);
  const env = replicatorEnv({ source: source.port, target: target.port });
  progress(`q: ${int(streams)}: run --once`);
  let onceSeconds: number | undefined, onceHwm = 0;
  {
    await using once = await Replicator.spawn(["run", "--once"], env, { timeoutMs: 600_000 });
    const code = await once.waitExit(600_000);
    onceHwm = once.peakHwm;
    if (code === 0) onceSeconds = once.seconds;
  }
  progress(`q: ${int(streams)}: run, waiting until every stream replicates (its /metrics)`);
  const port = freePort();
  await using rep = await Replicator.spawn(["run"], {
    ...env,
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: String(port),
  }, { sampleMs: 1000 });
  const tick = await clkTck();
  let startupSeconds: number | undefined;
  const started = performance.now();
  while (performance.now() - started < 900_000) {
    if (await replicating(port) >= streams) {
      startupSeconds = rep.seconds;
      break;
    }
    await sleep(1000);
  }
  // Then the first read of every stream (each may have entries, until read once): settled
  // once the source sees fewer than SETTLED_READS reads a second, 3 s in a row.
  progress(`q: ${int(streams)}: waiting until the first reads of every stream are done`);
  let settledSeconds: number | undefined;
  for (let calm = 0, last = await reads(src); performance.now() - started < 900_000;) {
    await sleep(1000);
    const now = await reads(src);
    calm = now - last < SETTLED_READS ? calm + 1 : 0;
    last = now;
    if (calm >= 3) {
      settledSeconds = rep.seconds - 3;
      break;
    }
  }
  progress(`q: ${int(streams)}: ${WINDOW_S} s of idle`);
  await src.send(["CONFIG", "RESETSTAT"]);
  await dst.send(["CONFIG", "RESETSTAT"]);
  const t0 = performance.now(), s0 = await rep.sample();
  let maxRss = 0;
  while (performance.now() - t0 < WINDOW_S * 1000) {
    await sleep(1000);
    maxRss = Math.max(maxRss, (await rep.sample())?.rss ?? 0);
  }
  const seconds = (performance.now() - t0) / 1000, s1 = await rep.sample();
  const [sourceStats, targetStats] = [await commandStats(src), await commandStats(dst)];
  const toolCpu = s0 && s1 ? (s1.ticks - s0.ticks) / tick / seconds : NaN;
  let steady: SizeResult["steady"];
  if (settledSeconds !== undefined) {
    progress(`q: ${int(streams)}: ${STEADY_S} s of steady idle, from ${STEADY_FROM_S} s after`);
    await sleep(Math.max(0, (settledSeconds + STEADY_FROM_S - rep.seconds) * 1000));
    const t2 = performance.now(), s2 = await rep.sample();
    let steadyRss = 0;
    while (performance.now() - t2 < STEADY_S * 1000) {
      await sleep(1000);
      steadyRss = Math.max(steadyRss, (await rep.sample())?.rss ?? 0);
    }
    const s3 = await rep.sample();
    if (s2 && s3) {
      const cpu = (s3.ticks - s2.ticks) / tick / ((performance.now() - t2) / 1000);
      steady = { cpu, maxRss: steadyRss };
    }
  }
  // A REPLICAOF replica of the source, started now (its sync does not fall in the idle
  // windows), probed the same way as the target in the same loop.
  progress(`q: ${int(streams)}: a replica of the source, waiting for its sync`);
  await using replica = await startServer({
    args: ["--replicaof", "127.0.0.1", String(source.port)],
  });
  await using rpl = await connect(replica);
  const synced = await poll(async () => {
    const info = String(await rpl.send(["INFO", "replication"]));
    return info.includes("master_link_status:up") && info.includes("master_sync_in_progress:0");
  }, { timeoutMs: 300_000 });
  if (!synced) throw new Error("the replica did not sync with the source within 300 s");
  progress(`q: ${int(streams)}: ${WAKE_ENTRIES} entries into random quiet streams`);
  const wake: number[] = [], wakeReplica: number[] = [];
  let missed = 0, missedReplica = 0;
  for (let k = 0; k < WAKE_ENTRIES; k++) {
    const key = keys[Math.floor(Math.random() * keys.length)];
    const id = String(await src.send(["XADD", key, "*", "wake", String(k)]));
    const added = performance.now();
    let onTarget: number | undefined, onReplica: number | undefined;
    const has = async (client: TestClient) =>
      (await client.send(["XRANGE", key, id, id]) as unknown[]).length > 0;
    while (performance.now() - added < 5000) {
      const [t, r] = await Promise.all([
        onTarget === undefined && has(dst),
        onReplica === undefined && has(rpl),
      ]);
      const at = performance.now() - added;
      if (t) onTarget = at;
      if (r) onReplica = at;
      if (onTarget !== undefined && onReplica !== undefined) break;
      await sleep(2);
    }
    if (onTarget === undefined) missed++;
    else wake.push(onTarget);
    if (onReplica === undefined) missedReplica++;
    else wakeReplica.push(onReplica);
    await sleep(WAKE_GAP_MS);
  }
  await rep.stop();
  return {
    streams,
    events,
    onceSeconds,
    onceHwm,
    startupSeconds,
    settledSeconds,
    source: rates(sourceStats, seconds),
    target: rates(targetStats, seconds),
    toolCpu,
    maxRss,
    steady,
    wake,
    missed,
    wakeReplica,
    missedReplica,
  };
}

/** Row q: quiet streams at scale, side by side (see the module doc). */
export async function rowQ(ctx: BenchContext): Promise<RowResult> {
  const sizes = ctx.quietSizes ?? [1000, 10_000, 100_000];
  const modes = ctx.events ?? [false, true];
  const results: SizeResult[] = [];
  for (const events of modes) for (const n of sizes) results.push(await measureSize(n, events));
  const checks: Check[] = [];
  for (const r of results) {
    // Side by side with the smallest size of the same mode.
    const first = results.find((f) => f.events === r.events)!;
    const n = `${int(r.streams)}${r.events ? " (events)" : ""}`;
    const sorted = [...r.wake].sort((a, b) => a - b);
    const p99 = sorted.length ? quantile(sorted, 0.99) : NaN;
    const replicaSorted = [...r.wakeReplica].sort((a, b) => a - b);
    const replicaP99 = replicaSorted.length ? quantile(replicaSorted, 0.99) : NaN;
    const big = r.streams >= 100_000;
    checks.push(
      {
        row: "q",
        figure: `${n}: run --once (2 entries each); peak RSS`,
        measured: `${r.onceSeconds?.toFixed(1) ?? "failed"} s; ${mb(r.onceHwm)}`,
        ...(big ? { goal: "<= 10 s; <= 300 MB" } : {}),
        ...(big
          ? { pass: r.onceSeconds !== undefined && r.onceSeconds <= 10 && r.onceHwm <= 300e6 }
          : {}),
      },
      {
        row: "q",
        figure: `${n}: idle commands/s to the source (top: ${r.source.top})`,
        measured: `${r.source.callsPerS.toFixed(1)} (x${
          (r.source.callsPerS / first.source.callsPerS).toFixed(2)
        } of ${int(first.streams)}); source CPU ${
          (r.source.cpuShare * 100).toFixed(2)
        }% (${r.source.topCpu})`,
        goal: "within 1.5x",
        pass: r.source.callsPerS <= 1.5 * first.source.callsPerS,
      },
      {
        row: "q",
        figure: `${n}: idle commands/s to the target (top: ${r.target.top})`,
        measured: `${r.target.callsPerS.toFixed(1)} (x${
          (r.target.callsPerS / Math.max(0.05, first.target.callsPerS)).toFixed(2)
        })`,
        goal: "within 1.5x",
        pass: r.target.callsPerS <= 1.5 * Math.max(0.05, first.target.callsPerS),
      },
      {
        row: "q",
        figure:
          `${n}: the tool's CPU; max RSS, the ${WINDOW_S} s after the start (every stream replicating after ${
            r.startupSeconds?.toFixed(0) ?? "never"
          } s, first reads done after ${r.settledSeconds?.toFixed(0) ?? "never"} s)`,
        measured: `${(r.toolCpu * 100).toFixed(2)}%; ${mb(r.maxRss)}`,
      },
      {
        row: "q",
        figure:
          `${n}: the tool's idle CPU; max RSS, steady (${STEADY_S} s from ${STEADY_FROM_S} s after the first reads)`,
        measured: r.steady
          ? `${(r.steady.cpu * 100).toFixed(2)}%; ${mb(r.steady.maxRss)}`
          : "n/a (never settled)",
        ...(big ? { goal: "<= 3%; <= 300 MB" } : {}),
        ...(big
          ? { pass: r.steady !== undefined && r.steady.cpu <= 0.03 && r.steady.maxRss <= 300e6 }
          : {}),
      },
      {
        row: "q",
        figure:
          `${n}: ${WAKE_ENTRIES} entries into random quiet streams: p50, p99, max; not within 5 s`,
        measured: sorted.length
          ? `${quantile(sorted, 0.5).toFixed(1)}, ${p99.toFixed(1)}, ${
            sorted.at(-1)!.toFixed(1)
          } ms; ${r.missed}`
          : `none arrived; ${r.missed}`,
        goal: "p99 <= 50 ms; 0",
        pass: r.missed === 0 && p99 <= 50,
      },
      {
        row: "q",
        figure:
          `${n}: the same entries on a replica (REPLICAOF source): p50, p99, max; not within 5 s`,
        measured: replicaSorted.length
          ? `${quantile(replicaSorted, 0.5).toFixed(1)}, ${replicaP99.toFixed(1)}, ${
            replicaSorted.at(-1)!.toFixed(1)
          } ms; ${r.missedReplica}`
          : `none arrived; ${r.missedReplica}`,
      },
      {
        row: "q",
        figure: `${n}: wake-ups, p99 target minus replica; slowest on the target`,
        measured: `${(p99 - replicaP99).toFixed(1)} ms; ${
          sorted.length ? sorted.at(-1)!.toFixed(1) : "n/a"
        } ms`,
        goal: "<= 3 ms; <= 100 ms",
        pass: r.missed === 0 && p99 - replicaP99 <= 3 && sorted.at(-1)! <= 100,
      },
    );
  }
  return {
    row: "q",
    title: `quiet streams at scale: ${sizes.map(int).join(", ")}, notifications ${
      modes.map((m) => (m ? "on" : "off")).join(" and ")
    }`,
    checks,
    figures: { sizes: results },
  };
}
