/**
 * The bench's row l (issue 18): a quiet tail after large entries. `main.ts
 * run` live, with the leases (the default) and without; a small stream gets
 * an entry every 10 ms, for 1 s and then while 3 entries of 20 MB go into
 * another stream, then nothing more is written anywhere. Every small entry's delay is timed
 * from its XADD to its arrival on the target (a blocking XREAD there, in
 * this process, on its own connection); the tail (the small stream's last
 * entry, after which nothing happens that could wake anything) must
 * arrive. See scripts/bench.ts.
 *
 * @module
 */
import { connect, type TestClient } from "../testing/redis.ts";
import {
  type BenchContext,
  type Check,
  KEY_PREFIX,
  poll,
  progress,
  quantile,
  replicatorEnv,
  type RowResult,
  sleep,
  startServer,
} from "./_bench_util.ts";
import { Replicator } from "./_bench_proc.ts";

const SMALL = `${KEY_PREFIX}l-small`;
const BIG = `${KEY_PREFIX}l-big`;
const BLOB_BYTES = 20 * 1024 * 1024;
const BLOBS = 3;
/** How long the tail may take before it counts as never arrived (ms). */
const TAIL_WAIT_MS = 30_000;

interface TailRun {
  /** Small entries sent, and their delays on the target (ms), in order of sending. */
  sent: number;
  delays: number[];
  /** The last small entry's delay (ms), undefined if it never came within TAIL_WAIT_MS. */
  tail?: number;
}

/** Records when each ID of `key` arrives on the target (blocking XREAD from `from`). */
function arrivals(
  dst: TestClient,
  key: string,
  from: string,
): { at: Map<string, number>; stop: () => void } {
  const at = new Map<string, number>();
  let stopped = false;
  (async () => {
    let last = from;
    while (!stopped) {
      const reply = await dst.send(["XREAD", "COUNT", "1000", "BLOCK", "200", "STREAMS", key, last])
        .catch(() => null) as Array<[string, Array<[string, unknown]>]> | null;
      const now = performance.now();
      for (const [, entries] of reply ?? []) {
        for (const [id] of entries) {
          at.set(String(id), now);
          last = String(id);
        }
      }
    }
  })();
  return { at, stop: () => (stopped = true) };
}

async function tailRun(leases: boolean): Promise<TailRun> {
  await using source = await startServer();
  await using target = await startServer();
  await using src = await connect(source);
  await using big = await connect(source);
  await using dst = await connect(target);
  await using probe = await connect(target);
  const first = String(await src.send(["XADD", SMALL, "*", "v", "start"]));
  await src.send(["XADD", BIG, "*", "v", "start"]);
  const env = {
    ...replicatorEnv({ source: source.port, target: target.port }),
    STREAM_LEASES: String(leases),
  };
  await using rep = await Replicator.spawn(["run"], env, { sampleMs: 1000 });
  const started = await poll(async () => Number(await dst.send(["DBSIZE"])) >= 2, {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  if (!started) throw new Error("the two streams were not copied within 60 s of the start");
  await sleep(1000);
  const { at, stop } = arrivals(probe, SMALL, first);
  const sentAt = new Map<string, number>();
  let writing = true;
  const small = (async () => {
    while (writing) {
      const id = String(await src.send(["XADD", SMALL, "*", "i", String(sentAt.size)]));
      sentAt.set(id, performance.now());
      await sleep(10);
    }
  })();
  const payload = "x".repeat(BLOB_BYTES);
  await sleep(1000); // the small stream flows first
  for (let n = 0; n < BLOBS; n++) await big.send(["XADD", BIG, "*", "blob", payload]);
  writing = false;
  await small;
  const ids = [...sentAt.keys()];
  const lastId = ids[ids.length - 1];
  await poll(() => Promise.resolve(at.has(lastId)), { timeoutMs: TAIL_WAIT_MS, intervalMs: 10 });
  stop();
  await rep.stop();
  const delays = ids.filter((id) => at.has(id)).map((id) => at.get(id)! - sentAt.get(id)!);
  const tail = at.has(lastId) ? at.get(lastId)! - sentAt.get(lastId)! : undefined;
  return { sent: ids.length, delays, tail };
}

/** Row l: the quiet tail after large entries, with leases and without. */
export async function rowL(_ctx: BenchContext): Promise<RowResult> {
  const checks: Check[] = [];
  const figures: Record<string, unknown> = { blobs: BLOBS, blobBytes: BLOB_BYTES };
  for (const leases of [true, false]) {
    const label = leases ? "leases" : "no leases";
    progress(`l: a small stream's tail after ${BLOBS} entries of 20 MB elsewhere (${label})`);
    const run = await tailRun(leases);
    figures[label] = run;
    const sorted = [...run.delays].sort((a, b) => a - b);
    const missing = run.sent - run.delays.length;
    const f = (n: number) => `${n.toFixed(1)} ms`;
    checks.push({
      row: "l",
      figure: `${label}: small entries on the target (p50 / p99 / max delay)`,
      measured: `${run.delays.length} of ${run.sent} (${f(quantile(sorted, 0.5))} / ${
        f(quantile(sorted, 0.99))
      } / ${f(sorted[sorted.length - 1] ?? NaN)})`,
      goal: "all",
      pass: missing === 0,
    });
    checks.push({
      row: "l",
      figure: `${label}: the tail (last small entry, nothing written after it)`,
      measured: run.tail === undefined ? `not copied within ${TAIL_WAIT_MS / 1000} s` : f(run.tail),
      goal: "100 ms",
      pass: run.tail !== undefined && run.tail <= 100,
    });
  }
  return { row: "l", title: "a quiet tail after large entries", checks, figures };
}
