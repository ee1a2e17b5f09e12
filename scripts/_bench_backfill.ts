/**
 * The bench's backfill rows (`run --once`): a (one stream, with the seed
 * baseline, its pipelined variant and the redis-benchmark ceiling), b
 * (10,000 streams x 20), d (the target behind a 10 ms-each-way proxy), and
 * the extra scenarios g (50 streams) and h (16 DBs). See scripts/bench.ts.
 *
 * @module
 */
import { TcpProxy } from "../testing/proxy.ts";
import { connect, type RedisServer, type TestClient } from "../testing/redis.ts";
import {
  type Backfill,
  backfill,
  complete,
  describeBackfill,
  runCeiling,
  runSeed,
} from "./_bench_run.ts";
import {
  type BenchContext,
  type Check,
  fillStreams,
  GROUP,
  int,
  keyList,
  mb,
  median,
  progress,
  type RowResult,
  startServer,
  sum,
  xlens,
} from "./_bench_util.ts";

const SEED_TIMEOUT_MS = 300_000;
const CEILING_TIMEOUT_MS = 120_000;

/** The target emptied and the source's group dropped, so that the stream is copied again. */
async function reset(
  clients: { src: TestClient; dst: TestClient },
  keys: string[],
): Promise<void> {
  await clients.dst.send(["FLUSHALL"]);
  for (const key of keys) {
    await clients.src.send(["XGROUP", "DESTROY", key, GROUP]).catch(() => {});
  }
}

async function oneStream(ctx: BenchContext, name: string) {
  const source = await startServer();
  const target = await startServer();
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

/**
 * Row a: one stream of ctx.entries entries, against the seed, its pipelined
 * variant and the ceiling; with ctx.repeat, that many interleaved rounds
 * (the medians are compared).
 */
export async function rowA(ctx: BenchContext): Promise<RowResult> {
  await using s = await oneStream(ctx, "a");
  const rounds = ctx.repeat ?? 1;
  const runs: Backfill[] = [];
  const single: Backfill[] = [];
  const baselines: Array<[string, () => Promise<unknown>, number, string]> = [
    ["seed baseline", () => seedRun(s, false), 25, "x"],
    ["seed baseline --pipelined", () => seedRun(s, true), 8, "x"],
    ["ceiling (redis-benchmark -P 64 XADD)", () => ceiling(s), 0.35, "%"],
  ];
  const results: Record<string, unknown[]> = {};
  const rates: Record<string, number[]> = {};
  for (let round = 1; round <= rounds; round++) {
    const tag = rounds > 1 ? ` (round ${round} of ${rounds})` : "";
    const once = (extra: Partial<Parameters<typeof backfill>[0]>) =>
      backfill({
        src: s.src,
        dst: s.dst,
        sourcePort: s.source.port,
        targetPort: s.target.port,
        count: s.count,
        expected: s.expected,
        timeoutMs: 120_000,
        ...extra,
      });
    progress(`a: redis-stream-sync run --once${tag}`);
    await reset(s, [s.key]);
    runs.push(await once({ firstKey: s.key, watchPort: s.target.port }));
    // The same without leases (STREAM_LEASES=false: plain XREADGROUP, no fence script).
    progress(`a: redis-stream-sync run --once, STREAM_LEASES=false${tag}`);
    await reset(s, [s.key]);
    single.push(await once({ env: { STREAM_LEASES: "false" } }));
    for (const [label, measure] of baselines) {
      progress(`a: ${label}${tag}`);
      await s.dst.send(["FLUSHALL"]);
      let result: unknown;
      try {
        result = await measure();
        const rate = typeof result === "number" ? result : (result as { rate: number }).rate;
        (rates[label] ??= []).push(rate);
      } catch (e) {
        result = { error: e instanceof Error ? e.message : String(e) };
      }
      (results[label] ??= []).push(result);
    }
  }
  // Every run complete: the median one; else the first that was not.
  const ours = runs.every(complete)
    ? [...runs].sort((x, y) => x.rate - y.rate)[Math.floor((runs.length - 1) / 2)]
    : runs.find((r) => !complete(r))!;
  if (complete(ours)) ctx.aRate = ours.rate;
  const of = rounds > 1 ? ` (median of ${rounds})` : "";
  const unfenced = [...single].sort((x, y) => x.rate - y.rate)[Math.floor((single.length - 1) / 2)];
  const checks: Check[] = [{
    row: "a",
    figure: `redis-stream-sync, from process start${of}`,
    measured: describeBackfill(ours),
  }, {
    row: "a",
    figure: `the same with STREAM_LEASES=false (no fence)${of}`,
    measured: describeBackfill(unfenced),
  }];
  for (const [label, , goal, unit] of baselines) {
    const rate = rates[label]?.length === rounds ? median(rates[label]) : undefined;
    const error = (results[label]?.find((r) => typeof r === "object" && r && "error" in r) as
      | { error: string }
      | undefined)?.error;
    const ratio = rate && complete(ours) ? ours.rate / rate : undefined;
    const shown = ratio === undefined
      ? "n/a"
      : unit === "x"
      ? `${ratio.toFixed(1)}x`
      : `${(ratio * 100).toFixed(0)}%`;
    checks.push({
      row: "a",
      figure: `${label}: ${rate ? `${int(rate)} entries/s${of}` : error}; ours is`,
      measured: shown,
      goal: unit === "x" ? `>= ${goal}x` : `>= ${goal * 100}%`,
      pass: ratio !== undefined && ratio >= goal,
    });
  }
  const firsts = runs.map((r) => r.firstEntryMs ?? Infinity);
  const first = median(firsts);
  checks.push({
    row: "a",
    figure: `first entry on the target, from process start${
      rounds > 1 ? ` (median; max ${Math.max(...firsts).toFixed(0)} ms)` : ""
    }`,
    measured: Number.isFinite(first) ? `${first.toFixed(0)} ms` : "never",
    goal: "<= 500 ms",
    pass: first <= 500,
  });
  checks.push({ row: "a", figure: "peak RSS (VmHWM)", measured: mb(ours.peakHwm) });
  const figures = {
    entries: s.expected,
    rounds,
    ours,
    runs,
    withoutLeases: single,
    baselines: results,
  };
  return { row: "a", title: `backfill 1 stream x ${int(s.expected)} entries`, checks, figures };
}

/** One seed_baseline.py run (batch 100): its entries, its own rate, its wall time. */
function seedRun(s: { source: RedisServer; target: RedisServer; key: string }, pipelined: boolean) {
  return runSeed({ source: s.source.port, target: s.target.port }, {
    key: s.key,
    pipelined,
    timeoutMs: SEED_TIMEOUT_MS,
  });
}

function ceiling(s: { target: RedisServer; expected: number }) {
  return runCeiling(s.target.port, {
    key: "bench-ceiling",
    entries: s.expected,
    timeoutMs: CEILING_TIMEOUT_MS,
  });
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
  options: { streams: number; perStream: number; dbs?: number; timeoutMs: number },
): Promise<Backfill> {
  const { streams, perStream, dbs = 1 } = options;
  await using source = await startServer();
  await using target = await startServer();
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
  const r = await manyStreams("b", { streams: 10_000, perStream: 20, timeoutMs: 600_000 });
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
  await reset(s, [s.key]);
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
    ? await manyStreams("g", { streams: 50, perStream: 4000, timeoutMs: 120_000 })
    : await manyStreams("h", { streams: 64, perStream: 3125, dbs: 16, timeoutMs: 120_000 });
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
