/**
 * The bench's live rows (`main.ts run`): c (latency at 5,000 entries/s
 * against a REPLICAOF replica of the source), e (idle with 10,000 streams)
 * and f (--soak). The producer and the latency probes are separate
 * processes (scripts/_bench_load.ts). See scripts/bench.ts.
 *
 * @module
 */
import { connect, type RedisServer, type TestClient } from "../testing/redis.ts";
import {
  type BenchContext,
  type Check,
  fillStreams,
  int,
  keyList,
  mb,
  poll,
  progress,
  replicatorEnv,
  type RowResult,
  sleep,
  slope,
  startServer,
  sum,
  xlens,
} from "./_bench_util.ts";
import { clkTck, Replicator } from "./_bench_proc.ts";
import {
  GRACE_MS,
  GROWTH_MARGIN_MS,
  livePhase,
  type Phase,
  type ProbeResult,
  RATE,
} from "./_bench_load.ts";

function ms(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? "n/a" : `${n.toFixed(2)} ms`;
}

function latencyChecks(label: string, phase: Phase): Check[] {
  const t = phase.probes.target, r = phase.probes.replica;
  if (!t || !r || "error" in t || "error" in r) {
    const error = t && "error" in t ? t.error : r && "error" in r ? r.error : "no figures";
    return [{
      row: "c",
      figure: `${label}: ${error}`,
      measured: "n/a",
      goal: "figures",
      pass: false,
    }];
  }
  const p = phase.producer!;
  const line = (x: ProbeResult) =>
    `p50 ${ms(x.p50)}, p99 ${ms(x.p99)}, p99.9 ${ms(x.p999)}, max ${
      ms(x.max)
    }, ${x.over100} > 100 ms`;
  return [
    {
      row: "c",
      figure: `${label}: producer`,
      measured: `${int(p.acked)} entries in ${p.seconds.toFixed(1)} s (${
        int(p.acked / p.seconds)
      }/s), ${int(p.failed)} failed`,
    },
    { row: "c", figure: `${label}: replica (REPLICAOF source)`, measured: line(r) },
    { row: "c", figure: `${label}: redis-stream-sync target`, measured: line(t) },
    {
      row: "c",
      figure: `${label}: p99, target minus replica`,
      measured: ms(t.p99 - r.p99),
      goal: "<= 3 ms",
      pass: t.p99 - r.p99 <= 3,
    },
    {
      row: "c",
      figure: `${label}: slowest entry on the target`,
      measured: ms(t.max),
      goal: "<= 100 ms",
      pass: t.max <= 100 && t.missing === 0,
    },
    {
      row: "c",
      figure: `${label}: missing ${GRACE_MS / 1000} s after; p50 1st -> last quarter`,
      measured: `${t.missing}; ${ms(t.firstQuarterP50)} -> ${ms(t.lastQuarterP50)}`,
      goal: `0; <= 2x + ${GROWTH_MARGIN_MS} ms`,
      pass: !t.behind,
    },
  ];
}

/** One entry in each key, so that the streams exist and get their group before the load. */
async function createStreams(src: TestClient, keys: string[]): Promise<void> {
  await fillStreams(src, keys, 1);
}

/** Starts `main.ts run` and waits until the target has every key (so every group exists). */
async function startLive(
  servers: { source: RedisServer; target: RedisServer; dst: TestClient },
  options: { keys: number; timeoutMs: number },
): Promise<{ rep: Replicator; readySeconds?: number }> {
  const { source, target, dst } = servers;
  const env = replicatorEnv({ source: source.port, target: target.port });
  const rep = await Replicator.spawn(["run"], env, { sampleMs: 1000 });
  const ok = await poll(async () => Number(await dst.send(["DBSIZE"])) >= options.keys, {
    timeoutMs: options.timeoutMs,
    intervalMs: 200,
  });
  return { rep, readySeconds: ok ? rep.seconds : undefined };
}

/** Row c's third phase: its streams are created while the tool runs. */
const NEW_STREAMS = "1,000 streams created while running";

/**
 * Row c: latency at 5,000 entries/s into 1 stream, then into 1,000, then
 * into 1,000 created while the tool runs, against a replica; with the
 * source's `xadd` notifications off, then on (`--events`).
 */
export async function rowC(ctx: BenchContext): Promise<RowResult> {
  const checks: Check[] = [];
  const figures: Record<string, unknown> = {};
  for (const events of ctx.events ?? [false, true]) {
    const one = await liveLatency(events);
    checks.push(...one.checks);
    figures[events ? "notifications" : "blocking waits"] = one.figures;
  }
  return {
    row: "c",
    title: "live: 5,000 entries/s, latency to a reader on the target",
    checks,
    figures,
  };
}

/** Row c with the source's notifications off or on: its checks and figures. */
async function liveLatency(
  events: boolean,
): Promise<{ checks: Check[]; figures: Record<string, unknown> }> {
  const seconds = 20;
  const suffix = events ? " (events)" : "";
  await using source = await startServer({
    args: [
      "--repl-diskless-sync-delay",
      "0",
      ...(events ? ["--notify-keyspace-events", "Et"] : []),
    ],
  });
  await using target = await startServer();
  await using replica = await startServer({
    args: ["--replicaof", "127.0.0.1", String(source.port)],
  });
  await using src = await connect(source);
  await using dst = await connect(target);
  await using rpl = await connect(replica);
  const one = keyList("c-one", 1);
  const many = keyList("c", 1000);
  await createStreams(src, [...one, ...many]);
  const linked = await poll(
    async () =>
      String(await rpl.send(["INFO", "replication"])).includes("master_link_status:up") &&
      Number(await rpl.send(["DBSIZE"])) === 1001,
    { timeoutMs: 60_000 },
  );
  if (!linked) throw new Error("the replica did not sync with the source within 60 s");
  progress("c: starting redis-stream-sync run (1,001 streams)");
  const { rep, readySeconds } = await startLive({ source, target, dst }, {
    keys: 1001,
    timeoutMs: 120_000,
  });
  await using _rep = rep;
  const checks: Check[] = [];
  const figures: Record<string, unknown> = { rate: RATE, seconds, graceMs: GRACE_MS, readySeconds };
  if (readySeconds === undefined) {
    checks.push({
      row: "c",
      figure: "start-up: every stream's first entry copied",
      measured: `timeout after 120 s (${await dst.send(["DBSIZE"])} of 1001)`,
      goal: "started",
      pass: false,
    });
    return { checks, figures };
  }
  await sleep(2000); // past the start-up work that follows the first copies
  const ports = { target: target.port, replica: replica.port };
  const ticksPerS = await clkTck();
  const later = keyList("c-new", 1000);
  const phases = [["1 stream", one], ["1,000 streams", many], [NEW_STREAMS, later]] as const;
  for (const [name, keys] of phases) {
    const label = name + suffix;
    if (keys === later) {
      // Streams made while the tool runs: found by a discovery pass, placed on running readers.
      progress("c: 1,000 streams created while the tool runs; waiting for their first copies");
      await createStreams(src, later);
      const found = await poll(async () => Number(await dst.send(["DBSIZE"])) >= 2001, {
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      if (!found) {
        checks.push({
          row: "c",
          figure: `${label}: first entries copied`,
          measured: `timeout after 60 s (${await dst.send(["DBSIZE"])} of 2001 keys)`,
          goal: "copied",
          pass: false,
        });
        break;
      }
      await sleep(2000);
    }
    progress(`c: ${RATE}/s for ${seconds} s into ${label}`);
    const before = await rep.sample(), started = performance.now();
    const phase = await livePhase(keys, { sourcePort: source.port, probePorts: ports, seconds });
    const after = await rep.sample(), wall = (performance.now() - started) / 1000;
    const cpu = before && after ? (after.ticks - before.ticks) / ticksPerS / wall : NaN;
    figures[label] = { ...phase, replicatorCpuShare: cpu };
    checks.push(...latencyChecks(label, phase));
    const share = (n: number | undefined) => `${((n ?? NaN) * 100).toFixed(0)}%`;
    const probe = (x: Phase["probes"][string] | undefined) =>
      share(x && "cpuShare" in x ? x.cpuShare : undefined);
    checks.push({
      row: "c",
      figure: `${label}: CPU (share of a core) during the phase`,
      measured: `replicator ${share(cpu)}, producer ${share(phase.producer?.cpuShare)}, probes ${
        probe(phase.probes.target)
      } (target) ${probe(phase.probes.replica)} (replica)`,
    });
  }
  figures.peakHwm = rep.peakHwm;
  checks.push({ row: "c", figure: `peak RSS (VmHWM)${suffix}`, measured: mb(rep.peakHwm) });
  const code = await rep.stop();
  if (code !== 0) {
    checks.push({ row: "c", figure: `exit on SIGTERM${suffix}`, measured: String(code) });
  }
  return { checks, figures };
}

/**
 * One entry into each of 10 streams that have been quiet (spread over the
 * keys, 1 s apart): how long until each is on the target (10 s at most).
 */
async function quietEntries(
  src: TestClient,
  dst: TestClient,
  keys: readonly string[],
): Promise<{ delays: number[] }> {
  const delays: number[] = [];
  for (let k = 0; k < 10; k++) {
    const key = keys[(k * 997 + 13) % keys.length];
    const id = String(await src.send(["XADD", key, "*", "quiet", String(k)]));
    const added = performance.now();
    while (performance.now() - added < 10_000) {
      if ((await dst.send(["XRANGE", key, id, id]) as unknown[]).length > 0) {
        delays.push(performance.now() - added);
        break;
      }
      await sleep(2);
    }
    await sleep(1000);
  }
  return { delays };
}

/** Row e: 10,000 streams, no traffic, default intervals: CPU and RSS over 30 s, then 10 entries into quiet streams. */
export async function rowE(ctx: BenchContext): Promise<RowResult> {
  const results: RowResult[] = [];
  for (const events of ctx.events ?? [false, true]) results.push(await idleRow(events));
  return {
    row: "e",
    title: results.map((r) => r.title).join("; "),
    checks: results.flatMap((r) => r.checks),
    figures: Object.fromEntries(
      results.map((
        r,
        i,
      ) => [(ctx.events ?? [false, true])[i] ? "notifications" : "blocking waits", r.figures]),
    ),
  };
}

/** Row e with the source's notifications off or on. */
async function idleRow(events: boolean): Promise<RowResult> {
  // 60 s, from 30 s after every stream is copied: the start's last work (first reads,
  // first collections) is over, and the work done every 10 s or so (discovery, the checks'
  // passes; 5-7% of a core for a few seconds) falls in it six times, not two to four.
  const windowS = 60;
  const fromS = 30;
  const streams = 10_000;
  const suffix = events ? " (events)" : "";
  await using source = await startServer(
    events ? { args: ["--notify-keyspace-events", "Et"] } : undefined,
  );
  await using target = await startServer();
  await using src = await connect(source);
  await using dst = await connect(target);
  progress(`e: creating ${int(streams)} streams`);
  await createStreams(src, keyList("e", streams));
  progress("e: starting redis-stream-sync run, waiting until every stream is copied");
  const { rep, readySeconds } = await startLive({ source, target, dst }, {
    keys: streams,
    timeoutMs: 600_000,
  });
  await using _rep = rep;
  if (readySeconds === undefined) {
    const copied = Number(await dst.send(["DBSIZE"]));
    return {
      row: "e",
      title: "idle",
      checks: [{
        row: "e",
        figure: `start-up${suffix}`,
        measured: `timeout after 600 s (${int(copied)} of ${int(streams)} streams copied)`,
        goal: "started",
        pass: false,
      }],
      figures: { readySeconds, copied },
    };
  }
  progress(`e: ${fromS} s, then measuring ${windowS} s of idle`);
  await sleep(fromS * 1000);
  const ticksPerS = await clkTck();
  const t0 = performance.now(), s0 = await rep.sample();
  const rss: number[] = [];
  while (performance.now() - t0 < windowS * 1000) {
    await sleep(1000);
    const s = await rep.sample();
    if (s) rss.push(s.rss);
  }
  const t1 = performance.now(), s1 = await rep.sample();
  const cpu = s0 && s1 ? (s1.ticks - s0.ticks) / ticksPerS / ((t1 - t0) / 1000) : NaN;
  const maxRss = Math.max(...rss);
  // Issue 18: an entry into a stream that has been quiet must not wait for something else.
  progress("e: one entry into each of 10 quiet streams, 1 s apart");
  const quiet = await quietEntries(src, dst, keyList("e", streams));
  await rep.stop();
  return {
    row: "e",
    title: `idle: ${
      int(streams)
    } live streams, no traffic, default intervals, ${windowS} s from ${fromS} s after the copy${suffix}`,
    checks: [
      {
        row: "e",
        figure: `start-up to every stream copied${suffix}`,
        measured: `${readySeconds.toFixed(1)} s`,
      },
      {
        row: "e",
        figure: `CPU (utime+stime) as a share of one core${suffix}`,
        measured: `${(cpu * 100).toFixed(2)}%`,
        goal: "<= 3%",
        pass: cpu <= 0.03,
      },
      {
        row: "e",
        figure: `10 entries into quiet streams: on the target; slowest${suffix}`,
        measured: `${quiet.delays.length} of 10; ${
          quiet.delays.length ? Math.max(...quiet.delays).toFixed(1) : "-"
        } ms`,
        goal: "10 of 10; <= 100 ms",
        pass: quiet.delays.length === 10 && Math.max(...quiet.delays) <= 100,
      },
      {
        row: "e",
        figure: `RSS over the window (min ${mb(Math.min(...rss))})${suffix}`,
        measured: `max ${mb(maxRss)}`,
        goal: "<= 150 MB",
        pass: maxRss <= 150e6,
      },
    ],
    figures: {
      streams,
      windowSeconds: windowS,
      readySeconds,
      cpuShare: cpu,
      quietDelaysMs: quiet.delays,
      rss,
      clkTck: ticksPerS,
    },
  };
}

/** Row f: live load for ctx.soakSeconds into 100 streams, RSS sampled. */
export async function rowF(ctx: BenchContext): Promise<RowResult> {
  const seconds = ctx.soakSeconds ?? 60;
  const keys = keyList("f", 100);
  await using source = await startServer();
  await using target = await startServer();
  await using src = await connect(source);
  await using dst = await connect(target);
  await createStreams(src, keys);
  const { rep, readySeconds } = await startLive({ source, target, dst }, {
    keys: keys.length,
    timeoutMs: 120_000,
  });
  await using _rep = rep;
  if (readySeconds === undefined) throw new Error("f: the replicator did not start within 120 s");
  const everyMs = Math.min(5000, Math.max(1000, (seconds * 1000) / 60));
  const samples: Array<{ t: number; rss: number }> = [];
  const t0 = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await rep.sample();
      if (s) samples.push({ t: (performance.now() - t0) / 1000, rss: s.rss });
      await sleep(everyMs);
    }
  })();
  progress(`f: soak, ${RATE}/s into ${keys.length} streams for ${seconds} s`);
  const phase = await livePhase(keys, {
    sourcePort: source.port,
    probePorts: { target: target.port },
    seconds,
  });
  sampling = false;
  await sampler;
  const caughtUp = await poll(
    async () => sum(await xlens(dst, keys)) === sum(await xlens(src, keys)),
    { timeoutMs: 10_000 },
  );
  await rep.stop();
  // The trend over the second half (the first half includes the heap's warm-up).
  const late = samples.slice(Math.floor(samples.length / 2));
  const perS = slope(late.map((s) => s.t), late.map((s) => s.rss));
  const rise = perS * (late.length > 1 ? late[late.length - 1].t - late[0].t : 0);
  const mean = late.reduce((a, s) => a + s.rss, 0) / Math.max(1, late.length);
  const flat = Number.isFinite(rise) && rise < 0.05 * mean;
  const probe = phase.probes.target;
  const lat = probe && !("error" in probe)
    ? `p50 ${ms(probe.p50)}, p99 ${ms(probe.p99)}, max ${ms(probe.max)}, ${probe.missing} missing`
    : "n/a";
  return {
    row: "f",
    title: `soak: ${RATE}/s into ${keys.length} streams for ${seconds} s`,
    checks: [
      {
        row: "f",
        figure: `RSS first ${mb(samples[0]?.rss)}, last ${mb(samples.at(-1)?.rss)}`,
        measured: `max ${mb(Math.max(...samples.map((s) => s.rss)))}`,
      },
      {
        row: "f",
        figure: `RSS trend over the second half (${(perS * 3600 / 1e6).toFixed(1)} MB/h)`,
        measured: `${mb(rise)} rise`,
        goal: "flat (< 5% rise)",
        pass: flat,
      },
      { row: "f", figure: "latency to the target", measured: lat },
      {
        row: "f",
        figure: "target caught up 10 s after the load",
        measured: caughtUp ? "yes" : "no",
        goal: "yes",
        pass: caughtUp,
      },
    ],
    figures: { seconds, samples, slopeBytesPerS: perS, phase, caughtUp },
  };
}
