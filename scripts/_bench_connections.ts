/**
 * The bench's rows for how the connections are made (for information, no
 * goals): t, one stream backfilled in plain TCP and with TLS on both sides
 * (each server's CPU during each run beside the rates: they say where TLS
 * costs, and vary less than the rates on a busy machine);
 * w, the same with TARGET_WAIT_REPLICAS=1 and a replica of the target,
 * against no wait. Each pair runs on the same data in the same run, plain
 * first, and is repeated twice (interleaved). See scripts/bench.ts.
 *
 * @module
 */
import { connect, type TestClient } from "../testing/redis.ts";
import { makeCertificates, startTlsServer } from "../testing/tls.ts";
import { type Backfill, backfill, complete, describeBackfill, runCeiling } from "./_bench_run.ts";
import { pipelinedXadds } from "./_bench_pipe.ts";
import {
  type BenchContext,
  type Check,
  fillStreams,
  GROUP,
  infoNumber,
  int,
  keyList,
  progress,
  type RowResult,
  startServer,
} from "./_bench_util.ts";

const ROUNDS = 2;
const TIMEOUT_MS = 300_000;

async function reset(src: TestClient, dst: TestClient, key: string): Promise<void> {
  await dst.send(["FLUSHALL"]);
  await src.send(["XGROUP", "DESTROY", key, GROUP]).catch(() => {});
  for (const lease of await src.send(["KEYS", "redis-stream-sync:*"]) as string[]) {
    await src.send(["DEL", lease]);
  }
}

/** A server's CPU seconds so far (INFO cpu: used_cpu_user + used_cpu_sys). */
async function serverCpu(client: TestClient): Promise<number> {
  const user = await infoNumber(client, { section: "cpu", field: "used_cpu_user" });
  const sys = await infoNumber(client, { section: "cpu", field: "used_cpu_sys" });
  return user + sys;
}

/** "0.42 s plain, 1.31 s TLS": the means of CPU seconds per run. */
function cpuLine(plain: number[], tls: number[]): string {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return `${mean(plain).toFixed(2)} s plain, ${mean(tls).toFixed(2)} s TLS`;
}

function ratio(a: Backfill[], b: Backfill[]): string {
  if (![...a, ...b].every(complete)) return "n/a";
  const mean = (runs: Backfill[]) => runs.reduce((s, r) => s + r.rate, 0) / runs.length;
  return `${((mean(b) / mean(a)) * 100).toFixed(0)}%`;
}

/** Row t: plain TCP against TLS on both sides (server certificate verified). */
export async function rowT(ctx: BenchContext): Promise<RowResult> {
  await using certs = await makeCertificates();
  await using source = await startTlsServer(certs);
  await using target = await startTlsServer(certs);
  await using src = await connect(source.server);
  await using dst = await connect(target.server);
  const key = keyList("t", 1)[0];
  progress(`t: filling ${int(ctx.entries)} entries into ${key}`);
  await fillStreams(src, [key], ctx.entries);
  const expected = Number(await src.send(["XLEN", key]));
  const cpu = { source: [[], []] as number[][], target: [[], []] as number[][] };
  const run = async (tls: boolean) => {
    await reset(src, dst, key);
    progress(`t: run --once, ${tls ? "TLS" : "plain TCP"}`);
    const before = [await serverCpu(src), await serverCpu(dst)];
    const result = await backfill({
      src,
      dst,
      sourcePort: tls ? source.tlsPort : source.server.port,
      targetPort: tls ? target.tlsPort : target.server.port,
      count: async () => Number(await dst.send(["XLEN", key])),
      expected,
      timeoutMs: TIMEOUT_MS,
      env: tls
        ? {
          SOURCE_REDIS_TLS: "true",
          SOURCE_REDIS_TLS_CA_FILE: certs.ca,
          TARGET_REDIS_TLS: "true",
          TARGET_REDIS_TLS_CA_FILE: certs.ca,
        }
        : {},
    });
    cpu.source[Number(tls)].push(await serverCpu(src) - before[0]);
    cpu.target[Number(tls)].push(await serverCpu(dst) - before[1]);
    return result;
  };
  const plain: Backfill[] = [];
  const tls: Backfill[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(await run(false));
    tls.push(await run(true));
  }
  const checks: Check[] = [
    ...plain.map((r, i) => ({
      row: "t",
      figure: `plain TCP, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    ...tls.map((r, i) => ({
      row: "t",
      figure: `TLS both sides, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    { row: "t", figure: "TLS rate as a share of plain (means)", measured: ratio(plain, tls) },
    {
      row: "t",
      figure: "the source redis-server's CPU per run (user + sys, means)",
      measured: cpuLine(cpu.source[0], cpu.source[1]),
    },
    {
      row: "t",
      figure: "the target redis-server's CPU per run (user + sys, means)",
      measured: cpuLine(cpu.target[0], cpu.target[1]),
    },
    ...await redisTlsCost(ctx, { port: target.server.port, tlsPort: target.tlsPort, ca: certs.ca }),
  ];
  return {
    row: "t",
    title: `TLS: 1 stream x ${int(expected)}, plain TCP and TLS on both sides`,
    checks,
    figures: { plain, tls, serverCpu: cpu },
  };
}

/**
 * What TLS costs Redis and the runtime themselves, on row t's target, plain
 * and TLS interleaved, twice: `redis-benchmark -P 64` XADD (50 clients),
 * and one pipelined client over node:net and node:tls (the module the tool
 * uses); each TLS rate as a share of its plain rate, beside the tool's.
 */
async function redisTlsCost(
  ctx: BenchContext,
  server: { port: number; tlsPort: number; ca: string },
): Promise<Check[]> {
  const key = keyList("t-xadd", 1)[0];
  const entries = Math.min(ctx.entries, 200_000);
  const rates = { bench: [[], []] as number[][], pipe: [[], []] as number[][] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const tls of [false, true]) {
      progress(`t: redis-benchmark and a pipelined client, ${tls ? "TLS" : "plain TCP"}`);
      const port = tls ? server.tlsPort : server.port;
      const tlsCa = tls ? server.ca : undefined;
      rates.bench[Number(tls)].push(
        await runCeiling(port, { key, entries, timeoutMs: TIMEOUT_MS, tlsCa }),
      );
      rates.pipe[Number(tls)].push(await pipelinedXadds(port, { key, entries, tlsCa }));
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const line = ([plain, tls]: number[][]) =>
    `${int(mean(plain))} plain, ${int(mean(tls))} TLS: ${
      (mean(tls) / mean(plain) * 100).toFixed(0)
    }%`;
  return [
    {
      row: "t",
      figure: "Redis' own TLS cost: redis-benchmark -P 64 XADD/s (means), TLS share",
      measured: line(rates.bench),
    },
    {
      row: "t",
      figure: "the runtime's: one pipelined client (node:net, node:tls), XADD/s, TLS share",
      measured: line(rates.pipe),
    },
  ];
}

/** Row w: no wait against TARGET_WAIT_REPLICAS=1 with one replica of the target. */
export async function rowW(ctx: BenchContext): Promise<RowResult> {
  await using source = await startServer();
  await using target = await startServer();
  await using replica = await startServer({
    args: ["--replicaof", "127.0.0.1", String(target.port)],
  });
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = keyList("w", 1)[0];
  progress(`w: filling ${int(ctx.entries)} entries into ${key}`);
  await fillStreams(src, [key], ctx.entries);
  const expected = Number(await src.send(["XLEN", key]));
  const run = async (replicas: number) => {
    await reset(src, dst, key);
    progress(`w: run --once, TARGET_WAIT_REPLICAS=${replicas}`);
    return await backfill({
      src,
      dst,
      sourcePort: source.port,
      targetPort: target.port,
      count: async () => Number(await dst.send(["XLEN", key])),
      expected,
      timeoutMs: TIMEOUT_MS,
      env: { TARGET_WAIT_REPLICAS: String(replicas) },
    });
  };
  const none: Backfill[] = [];
  const one: Backfill[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    none.push(await run(0));
    one.push(await run(1));
  }
  const checks: Check[] = [
    ...none.map((r, i) => ({
      row: "w",
      figure: `no wait, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    ...one.map((r, i) => ({
      row: "w",
      figure: `TARGET_WAIT_REPLICAS=1, round ${i + 1}`,
      measured: describeBackfill(r),
    })),
    {
      row: "w",
      figure: "rate with the wait as a share of without (means)",
      measured: ratio(none, one),
    },
  ];
  await using rep = await connect(replica);
  const onReplica = Number(await rep.send(["XLEN", key]));
  checks.push({ row: "w", figure: "entries on the replica at the end", measured: int(onReplica) });
  return {
    row: "w",
    title: `durable acks: 1 stream x ${int(expected)}, a replica of the target, WAIT 1 or none`,
    checks,
    figures: { none, one, onReplica },
  };
}
