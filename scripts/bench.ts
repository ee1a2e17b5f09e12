/**
 * `deno task bench`: replication throughput and memory, measured side by
 * side with the original service's loop (../shared/bench/seed_baseline.py)
 * in the same run, on the same machine, against fresh redis-server
 * processes.
 *
 * Usage: deno task bench [--entries N] [--streams S] [--batch B]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/config/load_config.ts";
import { setupLogging } from "../lib/log.ts";
import { Orchestrator } from "../lib/replication/orchestrator.ts";
import { connect, RedisServer, type TestClient } from "../tests/_redis.ts";

const SEED_BASELINE = new URL("../../shared/bench/seed_baseline.py", import.meta.url).pathname;

interface Row {
  name: string;
  entries: number;
  seconds: number;
  note?: string;
}

async function fill(client: TestClient, key: string, entries: number): Promise<void> {
  const value = "x".repeat(100);
  for (let done = 0; done < entries; done += 2000) {
    const n = Math.min(2000, entries - done);
    await Promise.all(
      Array.from(
        { length: n },
        (_, j) =>
          client.send([
            "XADD",
            key,
            "*",
            "seq",
            String(done + j),
            "payload",
            value,
            "kind",
            "bench",
          ]),
      ),
    );
  }
}

async function runSeed(
  sourcePort: number,
  targetPort: number,
  key: string,
  batch: number,
  pipelined: boolean,
) {
  const args = [SEED_BASELINE, String(sourcePort), String(targetPort), key, String(batch)];
  if (pipelined) args.push("--pipelined");
  const out = await new Deno.Command("/usr/bin/python3", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`seed_baseline.py failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const [entries, rate] = new TextDecoder().decode(out.stdout).trim().split(/\s+/).map(Number);
  return { entries, seconds: entries / rate };
}

async function runOurs(
  sourcePort: number,
  targetPort: number,
  batch: number,
  pool: number,
  extra: Record<string, string> = {},
) {
  const { config } = loadConfig({}, {
    SOURCE_REDIS_HOST: "127.0.0.1",
    SOURCE_REDIS_PORT: String(sourcePort),
    TARGET_REDIS_HOST: "127.0.0.1",
    TARGET_REDIS_PORT: String(targetPort),
    STREAM_BATCH_SIZE: String(batch),
    SOURCE_REDIS_POOL_SIZE: String(pool),
    TARGET_REDIS_POOL_SIZE: String(pool),
    STREAM_DISCOVERY_PATTERNS: "bench-*",
    REDIS_DB_SEARCH_RANGE: "0",
    METRICS_PORT: "0",
    ...extra,
  }, undefined);
  const t0 = performance.now();
  const result = await new Orchestrator(config).run(new AbortController().signal, { once: true });
  const seconds = (performance.now() - t0) / 1000;
  if (!result.ok) throw new Error(`replication failed: ${JSON.stringify(result.failures)}`);
  return { entries: result.streams.reduce((n, s) => n + s.copied, 0), seconds };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      entries: { type: "string", default: "200000" },
      streams: { type: "string", default: "50" },
      batch: { type: "string", default: "100" },
    },
  });
  const entries = Number(values.entries);
  const streams = Number(values.streams);
  const batch = Number(values.batch);
  await setupLogging({ level: "ERROR" });
  const rows: Row[] = [];
  const haveSeed =
    (await new Deno.Command("/usr/bin/python3", { args: ["-c", "import redis"], stderr: "null" })
      .output().catch(() => ({ success: false }))).success;

  // 1. One stream of `entries` entries: the seed's own scenario.
  {
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    await fill(src, "bench-one", entries);
    if (haveSeed) {
      for (const pipelined of [false, true]) {
        const r = await runSeed(source.port, target.port, "bench-one", batch, pipelined);
        rows.push({ name: `seed baseline${pipelined ? " (pipelined)" : ""}, 1 stream`, ...r });
        await dst.send(["FLUSHALL"]);
      }
    }
    const rssBefore = Deno.memoryUsage().rss;
    const r = await runOurs(source.port, target.port, batch, 10);
    const rssAfter = Deno.memoryUsage().rss;
    rows.push({
      name: "redis-stream-sync, 1 stream",
      ...r,
      note: `RSS ${(rssAfter / 2 ** 20).toFixed(0)} MiB (+${
        ((rssAfter - rssBefore) / 2 ** 20).toFixed(0)
      })`,
    });
  }
  // 2. The same number of entries spread over `streams` streams.
  {
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    const per = Math.floor(entries / streams);
    for (let i = 0; i < streams; i++) await fill(src, `bench-${i}`, per);
    const r = await runOurs(source.port, target.port, batch, 10);
    rows.push({ name: `redis-stream-sync, ${streams} streams, pool 10`, ...r });
  }

  // 3. The same again, over 16 DBs (4 streams each), TARGET_REDIS_DB=same.
  {
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    const per = Math.floor(entries / 64);
    for (let db = 0; db < 16; db++) {
      await using src = await connect(source, { db });
      for (let i = 0; i < 4; i++) await fill(src, `bench-${i}`, per);
    }
    const r = await runOurs(source.port, target.port, batch, 10, {
      REDIS_DB_SEARCH_RANGE: "0-15",
      TARGET_REDIS_DB: "same",
    });
    rows.push({ name: "redis-stream-sync, 16 DBs x 4 streams", ...r });
  }

  console.log(
    `\nEntries of 3 fields (~120 bytes), batch ${batch}, loopback, ${navigator.hardwareConcurrency} cores`,
  );
  console.log("scenario                                   entries   seconds   entries/s  notes");
  const seed = rows.find((r) => r.name.startsWith("seed baseline,"));
  for (const row of rows) {
    const rate = row.entries / row.seconds;
    const ratio = seed ? ` (${(rate / (seed.entries / seed.seconds)).toFixed(1)}x seed)` : "";
    console.log(
      `${row.name.padEnd(42)} ${String(row.entries).padStart(7)} ${
        row.seconds.toFixed(2).padStart(9)
      } ${Math.round(rate).toString().padStart(11)}  ${row.note ?? ""}${ratio}`,
    );
  }
  if (!haveSeed) {
    console.log(
      "(seed baseline skipped: install python3-redis with `apt-get install -y python3-redis`)",
    );
  }
}

if (import.meta.main) await main();
