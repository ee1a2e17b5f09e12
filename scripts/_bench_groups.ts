/**
 * The bench's row m (issue 22): the idle cost of mirroring the
 * applications' consumer groups (STREAM_GROUPS_SYNC). 1,000 streams of 2
 * entries with 3 groups each, copied first (`run --once`); then `run` left
 * idle twice on the same servers, without and with `STREAM_GROUPS_SYNC=*`
 * (the default interval, 5 s), side by side: the tool's CPU and the
 * commands per second to each server over 20 s, once every stream
 * replicates and (with the sync) every group is on the target. The goal:
 * the sync adds less than 5% of a core. At the end, every group of every
 * stream is checked on the target (same position).
 *
 * @module
 */
import { connect, freePort, type TestClient } from "../testing/redis.ts";
import {
  type BenchContext,
  fillStreams,
  int,
  keyList,
  progress,
  replicatorEnv,
  type RowResult,
  sleep,
  startServer,
} from "./_bench_util.ts";
import { clkTck, Replicator } from "./_bench_proc.ts";
import { commandStats, rates, replicating } from "./_bench_quiet.ts";

const STREAMS = 1000;
const GROUPS = ["billing", "shipping", "audit"];
const WINDOW_S = 20;

/** Streams of `keys` whose groups on the target are not the source's (position of each). */
async function notMirrored(src: TestClient, dst: TestClient, keys: string[]): Promise<number> {
  const positions = async (c: TestClient) =>
    await Promise.all(keys.map(async (k) => {
      const reply = await c.send(["XINFO", "GROUPS", k]).catch(() => []) as unknown[][];
      return JSON.stringify(
        reply.map((g) => [g[1], g[7]]).filter(([n]) => n !== "redis-sync-group").sort(),
      );
    }));
  const [a, b] = [await positions(src), await positions(dst)];
  return a.filter((x, i) => x !== b[i]).length;
}

interface ModeResult {
  sync: boolean;
  toolCpu: number;
  source: ReturnType<typeof rates>;
  target: ReturnType<typeof rates>;
  notMirrored: number;
}

/** Row m: see the module doc. */
export async function rowM(_ctx: BenchContext): Promise<RowResult> {
  await using source = await startServer();
  await using target = await startServer();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = keyList("m", STREAMS);
  progress(`m: ${int(STREAMS)} streams of 2 entries, ${GROUPS.length} groups each`);
  await fillStreams(src, keys, 2);
  await Promise.all(
    keys.flatMap((k) => GROUPS.map((g) => src.send(["XGROUP", "CREATE", k, g, "0"]))),
  );
  // Each group part way: one entry read and acknowledged.
  await Promise.all(keys.map(async (k) => {
    for (const g of GROUPS) {
      const r = await src.send([
        "XREADGROUP",
        "GROUP",
        g,
        "app",
        "COUNT",
        "1",
        "STREAMS",
        k,
        ">",
      ]) as [
        string,
        [string, unknown][],
      ][];
      await src.send(["XACK", k, g, r[0][1][0][0]]);
    }
  }));
  const env = replicatorEnv({ source: source.port, target: target.port });
  {
    await using once = await Replicator.spawn(["run", "--once"], env, { timeoutMs: 300_000 });
    await once.waitExit(300_000);
  }
  const tick = await clkTck();
  const modes: ModeResult[] = [];
  for (const sync of [false, true]) {
    progress(`m: run ${sync ? "with" : "without"} STREAM_GROUPS_SYNC=*`);
    const port = freePort();
    await using rep = await Replicator.spawn(["run"], {
      ...env,
      METRICS_HOST: "127.0.0.1",
      METRICS_PORT: String(port),
      ...(sync ? { STREAM_GROUPS_SYNC: "*" } : {}),
    }, { sampleMs: 1000 });
    const started = performance.now();
    while (performance.now() - started < 300_000 && await replicating(port) < STREAMS) {
      await sleep(1000);
    }
    if (sync) {
      while (performance.now() - started < 300_000 && await notMirrored(src, dst, keys) > 0) {
        await sleep(1000);
      }
    }
    await sleep(10_000); // the start's own work done
    await src.send(["CONFIG", "RESETSTAT"]);
    await dst.send(["CONFIG", "RESETSTAT"]);
    const t0 = performance.now(), s0 = await rep.sample();
    await sleep(WINDOW_S * 1000);
    const seconds = (performance.now() - t0) / 1000, s1 = await rep.sample();
    const [sourceStats, targetStats] = [await commandStats(src), await commandStats(dst)];
    modes.push({
      sync,
      toolCpu: s0 && s1 ? (s1.ticks - s0.ticks) / tick / seconds : NaN,
      source: rates(sourceStats, seconds),
      target: rates(targetStats, seconds),
      notMirrored: sync ? await notMirrored(src, dst, keys) : 0,
    });
    await rep.stop();
  }
  const [off, on] = modes;
  const added = on.toolCpu - off.toolCpu;
  return {
    row: "m",
    title: `mirrored consumer groups: ${int(STREAMS)} streams x ${GROUPS.length} groups, idle`,
    checks: [
      {
        row: "m",
        figure: "the tool's idle CPU without / with STREAM_GROUPS_SYNC=* (interval 5 s)",
        measured: `${(off.toolCpu * 100).toFixed(2)}% / ${(on.toolCpu * 100).toFixed(2)}% (+${
          (added * 100).toFixed(2)
        }%)`,
        goal: "+ < 5% of a core",
        pass: added < 0.05,
      },
      {
        row: "m",
        figure: "idle commands/s to the source, without / with (top with)",
        measured: `${off.source.callsPerS.toFixed(0)} / ${
          on.source.callsPerS.toFixed(0)
        } (${on.source.top})`,
      },
      {
        row: "m",
        figure: "idle commands/s to the target, without / with (top with)",
        measured: `${off.target.callsPerS.toFixed(0)} / ${
          on.target.callsPerS.toFixed(0)
        } (${on.target.top})`,
      },
      {
        row: "m",
        figure: "streams whose groups on the target are not the source's, at the end",
        measured: String(on.notMirrored),
        goal: "0",
        pass: on.notMirrored === 0,
      },
    ],
    figures: { modes },
  };
}
