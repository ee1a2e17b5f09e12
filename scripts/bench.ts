/**
 * `deno task bench`: the performance goals of the issue, measured in one
 * run, on fresh `redis-server` processes, with every figure a ratio to a
 * reference measured in the same run (this machine is shared and noisy:
 * absolute times vary 2-3x between runs).
 *
 * Usage:
 *
 *   deno task bench [--only a,b,...] [--json FILE] [--soak SECONDS] [--entries N] [--repeat N]
 *
 *   --only ROWS      rows to run, comma-separated (default: a,b,c,d,e,g,h,t,w,k,l; f needs --soak)
 *   --json FILE      also write every figure as JSON to FILE
 *   --soak SECONDS   also run row f, for that long (`--only f --soak S` for it alone)
 *   --entries N      entries of the one-stream backfills a and d (default 200000)
 *   --repeat N       row a N times, interleaved (ours, seed, pipelined, ceiling,
 *                    ours, ...), comparing the medians: steadier ratios on a
 *                    noisy machine (default 1)
 *   --quiet SIZES    row q's numbers of quiet streams (default 1000,10000,100000)
 *   --events MODES   rows c, e and q with the source's notifications off, on, or off,on (default)
 *
 * The table goes to stdout: per row its figures, and for each goal the
 * measured value, the goal, and PASS or MISS. Progress goes to stderr. The
 * exit code is 0 even when a goal is missed (1 only if the bench itself
 * failed).
 *
 * How it measures. The replicator is a separate process, spawned as users
 * run it: `deno run <the start task's runtime flags> main.ts run --once`
 * (backfills) or `main.ts run` (live rows), via testing/cli.ts spawnCli
 * (clean environment, empty working directory so no env.conf is read),
 * configured by SOURCE_/TARGET_REDIS_HOST/PORT, STREAM_DISCOVERY_PATTERNS=
 * bench-*, REDIS_DB_SEARCH_RANGE=0, METRICS_PORT=0, LOG_LEVEL=WARNING and
 * otherwise the defaults (STREAM_BATCH_SIZE 100, pools of 10,
 * STREAM_POLL_INTERVAL 1 s, STREAM_DISCOVERY_INTERVAL 10 s). The module
 * cache is warmed (`deno cache main.ts`) before anything is timed. Entries
 * have 5 fields, 100 bytes of names and values. MB = 10^6 bytes. /proc/<pid>
 * is read through `cat` (Deno reads it only with --allow-all).
 *
 * - a. One stream of --entries entries. entries/s = entries on the target
 *   (XLEN, checked equal to the source) / spawn-to-exit of `run --once`. In
 *   the same run, on the same data: scripts/seed_baseline.py (batch
 *   100; its rate is its own, from after it connected), its --pipelined
 *   variant, and `redis-benchmark -P 64 -n <entries>` XADD of the same
 *   shape on the target (the ceiling; redis-benchmark's default 50 clients).
 *   First entry: a blocking XREAD on the target, issued before the spawn;
 *   spawn to its reply.
 * - b. 10,000 streams x 20 entries, `run --once`: entries/s (XLEN sums), peak
 *   RSS (VmHWM from /proc/<pid>/status, sampled every 100 ms), the most
 *   connections named redis-stream-sync* per server (CLIENT LIST every
 *   100 ms) and total_connections_received during the run. Compared with
 *   row a's rate (a one-stream run is made for it when row a is not run).
 * - c. `run` with 1 + 1,000 streams created (and copied, so their groups
 *   exist) before the load. A producer process writes XADD * at a steady
 *   5,000 entries/s (the entries due every millisecond, pipelined) for 20 s
 *   into one stream, then for 20 s into the 1,000 streams (round-robin),
 *   then 1,000 more streams are created while the tool runs (one entry
 *   each; found by a discovery pass, placed on the running readers) and
 *   once their first entries are copied, 20 s into those,
 *   with the same replicator process (2 s after its start-up copies);
 *   each entry carries its send time. Probe processes, one on the target and
 *   one on a `--replicaof` replica of the source, block in XREAD BLOCK 0
 *   (one connection per 100 keys) and record arrival minus send time. The
 *   clock (performance.timeOrigin + now()) agrees across processes to
 *   ~0.1 ms. p50/p99/p99.9/max for both; "behind" = entries not on the
 *   target 1 s after the producer stopped, or a growing lag: the median
 *   latency of the last quarter of the run above twice the first quarter's
 *   plus 5 ms. The JSON has a per-second timeline (entries, p50, max) and
 *   the CPU share of the replicator, the producer and each probe. All of it
 *   twice: the source without and with `xadd` notifications
 *   (`notify-keyspace-events Et`, labels "(events)"), `--events`.
 * - d. Row a's backfill on fresh servers, loopback, then again (target
 *   emptied, group dropped) with the target behind testing/proxy.ts TcpProxy
 *   with delay(10): every chunk waits 10 ms in each direction, so a round
 *   trip takes 20 ms more (a PING through it measured 22-24 ms: timer
 *   slack). The proxy runs in the bench process.
 * - e. 10,000 streams of one entry, `run` with the default intervals; once
 *   the target has every stream (so every group exists) and 30 s more, CPU =
 *   utime+stime from /proc/<pid>/stat (getconf CLK_TCK) over 60 s of wall
 *   time, and VmRSS sampled every second (the work done every 10 s or so,
 *   5-7% of a core for a few seconds, falls six times in it; a 30 s window
 *   right after the copy varied from 2.75% to 3.97% between runs). Then one entry into each of 10
 *   of the quiet streams, 1 s apart (issue 18: an entry must not wait for
 *   something else to happen): how many reach the target within 10 s
 *   (polled every 2 ms), and the slowest. Twice: the source without and
 *   with `xadd` notifications (`--events`).
 * - f. With --soak SECONDS: 5,000 entries/s into 100 streams for that long,
 *   VmRSS sampled every few seconds (first, last, max; least-squares trend
 *   over the second half, "flat" = rising less than 5 %), the latency on
 *   the target, and whether the target caught up. Soaks of a few minutes
 *   cannot tell the heap's sawtooth from a slow leak: use 600 s or more.
 * - g, h. Today's extra scenarios, for information: 200,000 entries over 50
 *   streams, and over 16 DBs x 4 streams (TARGET_REDIS_DB=same).
 * - t, w. For information (scripts/_bench_connections.ts): one stream of
 *   --entries entries in plain TCP and with TLS on both sides (certificates
 *   by openssl, verified against their CA), and with no wait and with
 *   TARGET_WAIT_REPLICAS=1 against a target with one REPLICAOF replica;
 *   each pair twice, interleaved, the rates' means compared. Beside t, what
 *   TLS costs Redis and the runtime on the same target (issue 18):
 *   `redis-benchmark -P 64` XADD with and without `--tls`, and a minimal
 *   pipelined client (scripts/_bench_pipe.ts: pipelines of 1,000 XADDs)
 *   over node:net and node:tls, each twice, interleaved, at most 200,000.
 * - l. A quiet tail after large entries (issue 18; scripts/_bench_tail.ts):
 *   `run` live, with leases and without; a small stream gets an entry
 *   every 10 ms, for 1 s and while 3 entries of 20 MB go into another
 *   stream, then
 *   nothing more is written. Each small entry's delay from its XADD to its
 *   arrival on the target (a blocking XREAD on the target in the bench
 *   process), and the tail's: the last small entry, which nothing after it
 *   can wake.
 * - q. Quiet streams at scale (issue 24; scripts/_bench_quiet.ts): 1,000,
 *   10,000 and 100,000 streams of 2 entries side by side: `run --once`
 *   time and peak RSS; `run` idle: commands/s to each server and the
 *   source CPU they cost (INFO commandstats over 20 s), the tool's CPU and
 *   RSS then and steady (30 s from 60 s after the first reads; the goals are
 *   checked there); wake-up latency of 200 single entries into random
 *   streams, beside the same entries on a REPLICAOF replica of the source
 *   polled the same way (issue 18: p99 within 3 ms of it); each
 *   size without and with the source's `xadd` notifications
 *   (`notify-keyspace-events Et`: readers wait in the tool, not blocked on
 *   the source). Not in the default rows (about 20 minutes): `--only q`.
 * - m. Mirrored consumer groups (issue 22; scripts/_bench_groups.ts): 1,000
 *   streams with 3 groups each, `run` idle without and with
 *   STREAM_GROUPS_SYNC=*, side by side: the tool's CPU (goal: the sync adds
 *   less than 5% of a core) and commands/s to each server; every group
 *   checked on the target at the end. Not in the default rows: `--only m`.
 * - k. For information (scripts/_bench_cluster.ts): standalone -> a Redis
 *   Cluster of three masters against standalone -> standalone, 100 streams
 *   x 2,000 entries (`run --once`, twice each, interleaved), and live
 *   latency: 300 single entries, each timed from its XADD on the source to
 *   the answer of a blocking XREAD on its target stream.
 *
 * Every step has a timeout (run --once: 120 s for a, g, h and d's loopback,
 * 300 s through the proxy, 600 s for b; live start-up: 120 s, 600 s for
 * e; seed runs 300 s); a replicator that runs past it is killed and
 * reported as "timeout after N s" with what was copied. Every server and
 * process is cleaned up, also on errors, SIGINT and SIGTERM.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { rowA, rowB, rowD, rowExtra } from "./_bench_backfill.ts";
import { rowT, rowW } from "./_bench_connections.ts";
import { rowK } from "./_bench_cluster.ts";
import { rowQ } from "./_bench_quiet.ts";
import { rowM } from "./_bench_groups.ts";
import { rowL } from "./_bench_tail.ts";
import { rowC, rowE, rowF } from "./_bench_live.ts";
import {
  type BenchContext,
  type Check,
  disposeOnSignals,
  progress,
  removeTempDir,
  type RowResult,
} from "./_bench_util.ts";

const ROWS: Record<string, (ctx: BenchContext) => Promise<RowResult>> = {
  a: rowA,
  b: rowB,
  c: rowC,
  d: rowD,
  e: rowE,
  f: rowF,
  g: (ctx) => rowExtra(ctx, "g"),
  h: (ctx) => rowExtra(ctx, "h"),
  t: rowT,
  w: rowW,
  k: rowK,
  q: rowQ,
  l: rowL,
  m: rowM,
};
const DEFAULT_ROWS = ["a", "b", "c", "d", "e", "g", "h", "t", "w", "k", "l"];
const MAIN = new URL("../main.ts", import.meta.url).pathname;

function usage(): never {
  console.error(
    "usage: deno task bench [--only a,b,c,d,e,f,g,h,t,w,k,q,l,m] [--json FILE] [--soak SECONDS] [--entries N] [--repeat N] [--quiet SIZES] [--events off,on]",
  );
  Deno.exit(2);
}

function parse(): { rows: string[]; json?: string; ctx: BenchContext } {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        only: { type: "string" },
        json: { type: "string" },
        soak: { type: "string" },
        entries: { type: "string", default: "200000" },
        repeat: { type: "string", default: "1" },
        quiet: { type: "string", default: "1000,10000,100000" },
        events: { type: "string", default: "off,on" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    usage();
  }
  if (values.help) usage();
  const soak = values.soak === undefined ? undefined : Number(values.soak);
  const entries = Number(values.entries);
  if (soak !== undefined && !(soak > 0)) usage();
  const repeat = Number(values.repeat);
  if (!(Number.isInteger(entries) && entries > 0)) usage();
  if (!(Number.isInteger(repeat) && repeat > 0)) usage();
  const rows = values.only
    ? values.only.split(",").map((r) => r.trim().toLowerCase()).filter(Boolean)
    : [...DEFAULT_ROWS, ...(soak ? ["f"] : [])];
  for (const row of rows) if (!ROWS[row]) usage();
  const quietSizes = String(values.quiet).split(",").map(Number);
  if (!quietSizes.every((n) => Number.isInteger(n) && n > 0)) usage();
  const modes = String(values.events).split(",");
  if (!modes.every((m) => m === "on" || m === "off")) usage();
  const events = modes.map((m) => m === "on");
  return {
    rows,
    json: values.json,
    ctx: { entries, soakSeconds: soak, repeat, quietSizes, events },
  };
}

async function environment(): Promise<Record<string, string>> {
  const version = async (cmd: string, args: string[]) => {
    try {
      const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
      return new TextDecoder().decode(out.stdout).trim().split("\n")[0];
    } catch {
      return "not found";
    }
  };
  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    redis: await version("redis-server", ["--version"]),
    cores: String(navigator.hardwareConcurrency),
    loadavg: (await Deno.readTextFile("/proc/loadavg").catch(() => "")).trim(),
  };
}

/** Warms the module cache, so that "from process start" does not include a download. */
async function warmCache(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["cache", MAIN],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno cache main.ts failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function printTable(results: RowResult[], env: Record<string, string>): void {
  const lines: string[] = [];
  lines.push(
    `redis-stream-sync bench, ${
      env.date.slice(0, 16).replace("T", " ")
    } UTC, ${env.cores} cores, ` +
      `deno ${env.deno}, ${env.redis.replace(/^Redis server /, "").split(" sha")[0]}`,
  );
  const all: Check[] = results.flatMap((r) => r.checks);
  const goals = all.filter((c) => c.goal !== undefined);
  const w1 = Math.max(...all.map((c) => c.figure.length));
  const w2 = Math.max(8, ...goals.map((c) => c.measured.length));
  const w3 = Math.max(4, ...goals.map((c) => c.goal!.length));
  lines.push(
    "",
    `${"".padEnd(3)}${"figure".padEnd(w1)}  ${"measured".padEnd(w2)}  ${"goal".padEnd(w3)}`,
  );
  for (const r of results) {
    lines.push("", `${r.row}. ${r.title}`);
    for (const c of r.checks) {
      const tail = c.goal === undefined
        ? c.measured
        : `${c.measured.padEnd(w2)}  ${c.goal.padEnd(w3)}  ${c.pass ? "PASS" : "MISS"}`;
      lines.push(`   ${c.figure.padEnd(w1)}  ${tail}`);
    }
  }
  lines.push("", `${goals.filter((c) => c.pass).length} of ${goals.length} goals met`);
  console.log(lines.join("\n"));
}

async function main(): Promise<number> {
  const { rows, json, ctx } = parse();
  disposeOnSignals();
  const env = await environment();
  progress(`rows ${rows.join(",")}; warming the module cache`);
  await warmCache();
  const results: RowResult[] = [];
  let failed = false;
  for (const row of rows) {
    const started = performance.now();
    const loadavg = await Deno.readTextFile("/proc/loadavg").catch(() => "");
    try {
      const result = await ROWS[row](ctx);
      result.figures.loadavgBefore = loadavg.trim();
      results.push(result);
    } catch (error) {
      failed = true;
      const message = error instanceof Error ? error.message : String(error);
      progress(`row ${row} failed: ${error instanceof Error ? error.stack : message}`);
      results.push({
        row,
        title: "FAILED",
        checks: [{
          row,
          figure: `error: ${message.split("\n")[0]}`,
          measured: "n/a",
          goal: "runs",
          pass: false,
        }],
        figures: { error: message },
      });
    }
    progress(`row ${row} took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  await removeTempDir();
  printTable(results, env);
  if (json) {
    const figures = Object.fromEntries(
      results.map((r) => [r.row, { title: r.title, ...r.figures }]),
    );
    const checks = results.flatMap((r) => r.checks);
    await Deno.writeTextFile(
      json,
      JSON.stringify({ environment: env, rows, figures, checks }, null, 2) + "\n",
    );
    progress(`figures written to ${json}`);
  }
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
