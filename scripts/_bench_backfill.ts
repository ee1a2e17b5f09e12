/**
 * The bench's backfill rows (`run --once`): a (one stream, with the seed
 * baseline, its pipelined variant and the redis-benchmark ceiling), b
 * (10,000 streams x 20), d (the target behind a 10 ms-each-way proxy), and
 * the extra scenarios g (50 streams) and h (16 DBs). See scripts/bench.ts.
 *
 * @module
 */
import { TcpProxy } from "../tests/_proxy.ts";
import { connect, RedisServer, type TestClient } from "../tests/_redis.ts";
import {
  type BenchContext,
  type Check,
  ConnectionSampler,
  fillStreams,
  GROUP,
  infoNumber,
  int,
  keyList,
  mb,
  progress,
  Replicator,
  replicatorEnv,
  type RowResult,
  runCeiling,
  runSeed,
  sum,
  within,
  xlens,
} from "./_bench_util.ts";

const SEED_TIMEOUT_MS = 300_000;
const CEILING_TIMEOUT_MS = 120_000;

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
    source: await infoNumber(o.src, "stats", "total_connections_received"),
    target: await infoNumber(o.dst, "stats", "total_connections_received"),
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
    replicatorEnv(o.sourcePort, o.targetPort, o.env),
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
function complete(r: Backfill): boolean {
  return !r.timedOut && r.exitCode === 0 && r.copied === r.expected;
}

/** The target emptied and the source's group dropped, so that the stream is copied again. */
async function reset(src: TestClient, dst: TestClient, keys: string[]): Promise<void> {
  await dst.send(["FLUSHALL"]);
  for (const key of keys) await src.send(["XGROUP", "DESTROY", key, GROUP]).catch(() => {});
}

async function oneStream(ctx: BenchContext, name: string) {
  const source = await RedisServer.start();
  const target = await RedisServer.start();
  const src = await connect(source);
  const dst = await connect(target);
  const key = keyList(name, 1)[0];
  progress(`${name}: filling ${int(ctx.entries)} entries into ${key}`);
  await fillStreams(src, [key], ctx.entries);
  const expected = Number(await src.send(["XLEN", key]));
  const count = async () => Number(await dst.send(["XLEN", key]));
  return {
    source,
    target,
    src,
    dst,
    key,
    expected,
    count,
    async [Symbol.asyncDispose]() {
      await src.close();
      await dst.close();
      await source[Symbol.asyncDispose]();
      await target[Symbol.asyncDispose]();
    },
  };
}

/** Row a: one stream of ctx.entries entries, against the seed, its pipelined variant and the ceiling. */
export async function rowA(ctx: BenchContext): Promise<RowResult> {
  await using s = await oneStream(ctx, "a");
  const checks: Check[] = [];
  progress("a: redis-stream-sync run --once");
  const ours = await backfill({
    src: s.src,
    dst: s.dst,
    sourcePort: s.source.port,
    targetPort: s.target.port,
    count: s.count,
    expected: s.expected,
    timeoutMs: 120_000,
    firstKey: s.key,
    watchPort: s.target.port,
  });
  if (complete(ours)) ctx.aRate = ours.rate;
  checks.push({
    row: "a",
    figure: "redis-stream-sync, from process start",
    measured: describeBackfill(ours),
  });
  const figures: Record<string, unknown> = { entries: s.expected, ours };
  const baselines: Array<[string, () => Promise<number>, number, string]> = [
    ["seed baseline", () => seedRate(s, false), 25, "x"],
    ["seed baseline --pipelined", () => seedRate(s, true), 8, "x"],
    ["redis-benchmark -P 64 XADD on the target (ceiling)", () => ceiling(s), 0.35, "%"],
  ];
  for (const [label, measure, goal, unit] of baselines) {
    progress(`a: ${label}`);
    await s.dst.send(["FLUSHALL"]);
    let rate: number | undefined;
    let error: string | undefined;
    try {
      rate = await measure();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    figures[label] = rate ?? { error };
    const ratio = rate && complete(ours) ? ours.rate / rate : undefined;
    const shown = ratio === undefined
      ? "n/a"
      : unit === "x"
      ? `${ratio.toFixed(1)}x`
      : `${(ratio * 100).toFixed(0)}%`;
    checks.push({
      row: "a",
      figure: `${label}: ${rate ? `${int(rate)} entries/s` : error}; ours is`,
      measured: shown,
      goal: unit === "x" ? `>= ${goal}x` : `>= ${goal * 100}%`,
      pass: ratio !== undefined && ratio >= goal,
    });
  }
  checks.push({
    row: "a",
    figure: "first entry on the target, from process start",
    measured: ours.firstEntryMs === undefined ? "never" : `${ours.firstEntryMs.toFixed(0)} ms`,
    goal: "<= 500 ms",
    pass: ours.firstEntryMs !== undefined && ours.firstEntryMs <= 500,
  });
  checks.push({ row: "a", figure: "peak RSS (VmHWM)", measured: mb(ours.peakHwm) });
  return { row: "a", title: `backfill 1 stream x ${int(s.expected)} entries`, checks, figures };
}

function seedRate(
  s: { source: RedisServer; target: RedisServer; key: string },
  pipelined: boolean,
) {
  return runSeed(s.source.port, s.target.port, s.key, { pipelined, timeoutMs: SEED_TIMEOUT_MS })
    .then((r) => r.rate);
}

function ceiling(s: { target: RedisServer; expected: number }) {
  return runCeiling(s.target.port, "bench-ceiling", s.expected, CEILING_TIMEOUT_MS);
}

/** Row a's rate if it ran, else a one-stream run of the same size now (for b's goal). */
async function referenceRate(ctx: BenchContext): Promise<number | undefined> {
  if (ctx.aRate !== undefined) return ctx.aRate;
  await using s = await oneStream(ctx, "ref");
  progress("reference: one-stream run --once (row a was not run)");
  const r = await backfill({
    src: s.src,
    dst: s.dst,
    sourcePort: s.source.port,
    targetPort: s.target.port,
    count: s.count,
    expected: s.expected,
    timeoutMs: 120_000,
  });
  if (complete(r)) ctx.aRate = r.rate;
  return ctx.aRate;
}

/** Backfill of `streams` streams x `perStream` entries, in DB 0 or spread over 16 DBs. */
async function manyStreams(
  name: string,
  streams: number,
  perStream: number,
  options: { dbs?: number; timeoutMs: number },
): Promise<Backfill> {
  const dbs = options.dbs ?? 1;
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = keyList(name, streams / dbs);
  const srcDb: TestClient[] = [], dstDb: TestClient[] = [];
  try {
    for (let db = 0; db < dbs; db++) {
      srcDb.push(await connect(source, { db }));
      dstDb.push(await connect(target, { db }));
    }
    progress(`${name}: filling ${int(streams)} streams x ${perStream} entries`);
    for (const c of srcDb) await fillStreams(c, keys, perStream);
    const countAll = async (clients: TestClient[]) => {
      let n = 0;
      for (const c of clients) n += sum(await xlens(c, keys));
      return n;
    };
    const expected = await countAll(srcDb);
    progress(`${name}: redis-stream-sync run --once`);
    return await backfill({
      src,
      dst,
      sourcePort: source.port,
      targetPort: target.port,
      count: () => countAll(dstDb),
      expected,
      timeoutMs: options.timeoutMs,
      env: dbs > 1 ? { REDIS_DB_SEARCH_RANGE: `0-${dbs - 1}`, TARGET_REDIS_DB: "same" } : {},
    });
  } finally {
    for (const c of [...srcDb, ...dstDb]) await c.close();
  }
}

/** Row b: 10,000 streams x 20 entries. */
export async function rowB(ctx: BenchContext): Promise<RowResult> {
  const r = await manyStreams("b", 10_000, 20, { timeoutMs: 600_000 });
  const ref = await referenceRate(ctx);
  const pool = 10; // SOURCE_REDIS_POOL_SIZE's default
  const share = complete(r) && ref ? r.rate / ref : undefined;
  const checks: Check[] = [
    { row: "b", figure: "redis-stream-sync, from process start", measured: describeBackfill(r) },
    {
      row: "b",
      figure: `rate as a share of row a's (${ref ? int(ref) : "n/a"} entries/s)`,
      measured: share === undefined ? "n/a" : `${(share * 100).toFixed(0)}%`,
      goal: ">= 50%",
      pass: share !== undefined && share >= 0.5,
    },
    {
      row: "b",
      figure: "peak RSS (VmHWM)",
      measured: mb(r.peakHwm),
      goal: "<= 200 MB",
      pass: !r.timedOut && r.peakHwm > 0 && r.peakHwm <= 200e6,
    },
    {
      row: "b",
      figure: `most source connections at once (${r.connectionsReceived.source} opened)`,
      measured: String(r.maxConnections.source),
      goal: `<= ${pool + 1} (pool + 1)`,
      pass: r.maxConnections.source <= pool + 1,
    },
    {
      row: "b",
      figure: `most target connections at once (${r.connectionsReceived.target} opened)`,
      measured: String(r.maxConnections.target),
    },
  ];
  return {
    row: "b",
    title: "backfill 10,000 streams x 20 entries",
    checks,
    figures: { ours: r, rowARate: ref },
  };
}

/** Row d: one stream, loopback then the target behind a proxy adding 10 ms each way. */
export async function rowD(ctx: BenchContext): Promise<RowResult> {
  await using s = await oneStream(ctx, "d");
  const run = (targetPort: number, timeoutMs: number) =>
    backfill({
      src: s.src,
      dst: s.dst,
      sourcePort: s.source.port,
      targetPort,
      count: s.count,
      expected: s.expected,
      timeoutMs,
    });
  progress("d: loopback run --once");
  const loopback = await run(s.target.port, 120_000);
  await reset(s.src, s.dst, [s.key]);
  await using proxy = await TcpProxy.start(s.target);
  proxy.delay(10); // every chunk, in each direction: +20 ms per round trip
  progress("d: run --once through the proxy (10 ms each way)");
  const slow = await run(proxy.port, 300_000);
  const share = complete(loopback) && complete(slow) ? slow.rate / loopback.rate : undefined;
  const checks: Check[] = [
    { row: "d", figure: "loopback", measured: describeBackfill(loopback) },
    {
      row: "d",
      figure: "target behind the proxy (+10 ms each way)",
      measured: describeBackfill(slow),
    },
    {
      row: "d",
      figure: "slow-link rate as a share of loopback",
      measured: share === undefined ? "n/a" : `${(share * 100).toFixed(0)}%`,
      goal: ">= 70%",
      pass: share !== undefined && share >= 0.7,
    },
  ];
  return {
    row: "d",
    title: `slow link: 1 stream x ${int(s.expected)}, target behind a 10 ms-each-way proxy`,
    checks,
    figures: { loopback, slow, delayMsEachWay: 10 },
  };
}

/** Rows g and h (today's extra scenarios): 200,000 entries over 50 streams, or 16 DBs x 4. */
export async function rowExtra(ctx: BenchContext, row: "g" | "h"): Promise<RowResult> {
  const r = row === "g"
    ? await manyStreams("g", 50, 4000, { timeoutMs: 120_000 })
    : await manyStreams("h", 64, 3125, { dbs: 16, timeoutMs: 120_000 });
  const ref = ctx.aRate;
  return {
    row,
    title: row === "g" ? "extra: 50 streams x 4,000 entries" : "extra: 16 DBs x 4 streams x 3,125",
    checks: [
      { row, figure: "redis-stream-sync, from process start", measured: describeBackfill(r) },
      {
        row,
        figure: "rate as a share of row a's",
        measured: ref && complete(r) ? `${((r.rate / ref) * 100).toFixed(0)}%` : "n/a",
      },
      { row, figure: "peak RSS (VmHWM)", measured: mb(r.peakHwm) },
    ],
    figures: { ours: r },
  };
}
