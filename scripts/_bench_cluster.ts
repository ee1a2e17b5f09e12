/**
 * The bench's row k (for information, no goals): standalone -> Redis
 * Cluster (three masters, three replicas, started here) against
 * standalone -> standalone, in the same run on the same data. Backfill:
 * 100 streams x 2,000 entries, `run --once`, entries/s (XLEN sums), twice
 * each, interleaved. Live latency: one `run` per target; 300 samples, one
 * at a time: a blocking XREAD on the target stream (on its master) is sent,
 * then one XADD on the source; latency = XADD sent to XREAD answered
 * (p50, p99, max). See scripts/bench.ts.
 *
 * @module
 */
import { ClusterTestClient, startCluster } from "../testing/cluster.ts";
import { connect, type TestClient } from "../testing/redis.ts";
import { type Backfill, backfill, complete, describeBackfill } from "./_bench_run.ts";
import { Replicator } from "./_bench_proc.ts";
import {
  type BenchContext,
  type Check,
  fillStreams,
  int,
  keyList,
  progress,
  quantile,
  replicatorEnv,
  type RowResult,
  sleep,
  startServer,
  tracked,
} from "./_bench_util.ts";

const STREAMS = 100;
const PER_STREAM = 2000;
const SAMPLES = 300;
const ROUNDS = 2;
const TIMEOUT_MS = 300_000;

/** What one live run measured: latencies in ms, sorted. */
interface Live {
  latencies: number[];
}

function describeLive(l: Live): string {
  const q = (p: number) => quantile(l.latencies, p).toFixed(1);
  return `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${l.latencies.at(-1)!.toFixed(1)} ms ` +
    `(${l.latencies.length} samples)`;
}

/** Row k: standalone -> cluster, backfill and live latency, beside standalone -> standalone. */
export async function rowK(_ctx: BenchContext): Promise<RowResult> {
  await using cluster = tracked(await startCluster());
  await using source = await startServer();
  await using single = await startServer();
  await using src = await connect(source);
  await using one = await connect(single);
  await using node = await connect(cluster.nodes[0]);
  await using dst = new ClusterTestClient(cluster.seed);
  const keys = keyList("k", STREAMS);
  progress(`k: filling ${STREAMS} streams x ${PER_STREAM} entries`);
  await fillStreams(src, keys, PER_STREAM);
  const expected = STREAMS * PER_STREAM;
  const countCluster = async () => {
    let n = 0;
    for (const key of keys) n += Number(await dst.send(key, ["XLEN", key]));
    return n;
  };
  const countSingle = async () => {
    let n = 0;
    for (const key of keys) n += Number(await one.send(["XLEN", key]));
    return n;
  };
  const reset = async () => {
    for (const key of keys) {
      await src.send(["XGROUP", "DESTROY", key, "redis-sync-group"]).catch(() => {});
      await dst.send(key, ["DEL", key]);
    }
    await one.send(["FLUSHALL"]);
    for (const lease of await src.send(["KEYS", "redis-stream-sync:*"]) as string[]) {
      await src.send(["DEL", lease]);
    }
  };
  const run = async (toCluster: boolean) => {
    await reset();
    progress(`k: run --once to ${toCluster ? "the cluster" : "one server"}`);
    return await backfill({
      src,
      dst: toCluster ? node : one,
      sourcePort: source.port,
      targetPort: toCluster ? cluster.seed.port : single.port,
      count: toCluster ? countCluster : countSingle,
      expected,
      timeoutMs: TIMEOUT_MS,
      env: toCluster ? { TARGET_REDIS_CLUSTER: "true" } : {},
    });
  };
  const toSingle: Backfill[] = [];
  const toCluster: Backfill[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    toSingle.push(await run(false));
    toCluster.push(await run(true));
  }
  await reset(); // groups dropped: each live run copies the streams from the start first
  const liveSingle = await live(src, source.port, {
    port: single.port,
    env: {},
    wait: (key, from) => one.send(["XREAD", "BLOCK", "10000", "STREAMS", key, from]),
    top: async (key) => await lastId(await one.send(["XREVRANGE", key, "+", "-", "COUNT", "1"])),
  }, keys);
  await reset();
  const liveCluster = await live(src, source.port, {
    port: cluster.seed.port,
    env: { TARGET_REDIS_CLUSTER: "true" },
    wait: (key, from) => dst.send(key, ["XREAD", "BLOCK", "10000", "STREAMS", key, from]),
    top: async (key) =>
      await lastId(await dst.send(key, ["XREVRANGE", key, "+", "-", "COUNT", "1"])),
  }, keys);
  const mean = (runs: Backfill[]) => runs.reduce((s, r) => s + r.rate, 0) / runs.length;
  const share = [...toSingle, ...toCluster].every(complete)
    ? `${((mean(toCluster) / mean(toSingle)) * 100).toFixed(0)}%`
    : "n/a";
  const checks: Check[] = [
    ...toSingle.map((r, i) => ({
      row: "k",
      figure: `backfill to one server, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    ...toCluster.map((r, i) => ({
      row: "k",
      figure: `backfill to the cluster, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    { row: "k", figure: "cluster backfill rate as a share of one server's", measured: share },
    { row: "k", figure: "live latency to one server", measured: describeLive(liveSingle) },
    { row: "k", figure: "live latency to the cluster", measured: describeLive(liveCluster) },
  ];
  return {
    row: "k",
    title: `Redis Cluster target: ${STREAMS} streams x ${int(PER_STREAM)}, and live latency`,
    checks,
    figures: { toSingle, toCluster, liveSingle, liveCluster },
  };
}

function lastId(reply: unknown): string {
  const entries = reply as Array<[string, unknown]>;
  return entries.length > 0 ? String(entries[0][0]) : "0-0";
}

/** One live `run` to a target; latency of single entries, one at a time. */
async function live(
  src: TestClient,
  sourcePort: number,
  target: {
    port: number;
    env: Record<string, string>;
    wait: (key: string, from: string) => Promise<unknown>;
    top: (key: string) => Promise<string>;
  },
  keys: string[],
): Promise<Live> {
  progress(`k: live latency, ${SAMPLES} samples`);
  await using _replicator = await Replicator.spawn(
    ["run"],
    replicatorEnv({ source: sourcePort, target: target.port }, target.env),
  );
  // Caught up first (every stream's top on the target equals the source's).
  for (const key of keys) {
    const want = lastId(await src.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]));
    for (let i = 0; (await target.top(key)) !== want; i++) {
      if (i > 1200) throw new Error(`k: ${key} not caught up`);
      await sleep(100);
    }
  }
  const latencies: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const key = keys[i % keys.length];
    const from = await target.top(key);
    const arrived = target.wait(key, from);
    await sleep(1); // the XREAD reaches the server first
    const sent = performance.now();
    await src.send(["XADD", key, "*", "n", String(i)]);
    await arrived;
    latencies.push(performance.now() - sent);
  }
  return { latencies: latencies.sort((a, b) => a - b) };
}
