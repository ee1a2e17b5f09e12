/**
 * `deno task demo`: the quick start. Starts two throwaway redis-server
 * processes, writes example streams that match the default discovery
 * patterns into several DBs (one of them binary), replicates them with the
 * default configuration (only the hosts and ports changed), keeps producing
 * for a few seconds to show live replication, compares source and target
 * byte for byte, prints a summary and cleans everything up.
 *
 * @module
 */
import { loadConfig } from "../lib/config/mod.ts";
import { setupLogging } from "../lib/log.ts";
import { makeStreamRef, Orchestrator } from "../lib/replication/mod.ts";
import { RedisConnection } from "../lib/redis/mod.ts";
import { compareStream } from "../lib/ops/mod.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";

const LIVE_SECONDS = 5;
const STREAMS = [
  { db: 0, key: "orders-stream", entries: 20_000, binary: false },
  { db: 0, key: "payments-stream", entries: 5_000, binary: false },
  { db: 1, key: "device:1:stream", entries: 3_000, binary: false },
  { db: 1, key: "device:2:stream", entries: 3_000, binary: false },
  { db: 2, key: "biosignal-ecg", entries: 10_000, binary: true },
] as const;

async function ensureRedisServer(): Promise<void> {
  if (await succeeds("redis-server", ["--version"])) return;
  const root = Deno.uid() === 0;
  const sudo = !root && await succeeds("sudo", ["-n", "true"]);
  if (!root && !sudo) {
    console.error(
      "redis-server is not installed. Install it with:\n  sudo apt-get update && sudo apt-get install -y redis-server\nthen run `deno task demo` again.",
    );
    Deno.exit(1);
  }
  console.log("redis-server is not installed; installing it with apt-get...");
  const prefix = root ? [] : ["sudo", "-n"];
  for (
    const args of [["apt-get", "update", "-qq"], [
      "apt-get",
      "install",
      "-y",
      "-qq",
      "redis-server",
    ]]
  ) {
    const [cmd, ...rest] = [...prefix, ...args];
    if (!(await succeeds(cmd, rest, true))) {
      console.error(
        `"${
          [cmd, ...rest].join(" ")
        }" failed; install redis-server by hand and run the demo again.`,
      );
      Deno.exit(1);
    }
  }
}

async function succeeds(cmd: string, args: string[], inherit = false): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: inherit ? "inherit" : "null",
      stderr: inherit ? "inherit" : "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

function payload(i: number, binary: boolean): (string | Uint8Array)[] {
  if (!binary) return ["n", String(i), "amount", (i * 1.25).toFixed(2), "note", `entry ${i}`];
  const samples = new Uint8Array(64);
  crypto.getRandomValues(samples);
  samples[0] = 0xff;
  samples[1] = 0x00;
  return ["lead", "II", "samples", samples];
}

async function produce(
  clients: TestClient[],
  stream: (typeof STREAMS)[number],
  count: number,
  start: number,
) {
  const client = clients[stream.db];
  for (let done = 0; done < count; done += 1000) {
    const n = Math.min(1000, count - done);
    await Promise.all(
      Array.from(
        { length: n },
        (_, j) =>
          client.send(["XADD", stream.key, "*", ...payload(start + done + j, stream.binary)]),
      ),
    );
  }
}

async function targetLengths(clients: TestClient[]): Promise<number[]> {
  return await Promise.all(
    STREAMS.map(async (s) => Number(await clients[s.db].send(["XLEN", s.key]).catch(() => 0))),
  );
}

async function main(): Promise<number> {
  await ensureRedisServer();
  await setupLogging({ level: "WARNING" });
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  console.log(
    `Started source redis-server on 127.0.0.1:${source.port} and target on 127.0.0.1:${target.port}`,
  );

  const sourceClients = await Promise.all([0, 1, 2].map((db) => connect(source, { db })));
  const targetClients = await Promise.all([0, 1, 2].map((db) => connect(target, { db })));
  try {
    const t0 = performance.now();
    for (const s of STREAMS) await produce(sourceClients, s, s.entries, 0);
    await sourceClients[0].send(["HSET", "session-stream", "not", "a stream"]); // matches a pattern, ignored
    const initial = STREAMS.reduce((n, s) => n + s.entries, 0);
    console.log(
      `Wrote ${initial} entries into ${STREAMS.length} streams in DBs 0-2 (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s), plus a hash named like a stream`,
    );

    const { config } = loadConfig({}, {
      SOURCE_REDIS_HOST: "127.0.0.1",
      SOURCE_REDIS_PORT: String(source.port),
      TARGET_REDIS_HOST: "127.0.0.1",
      TARGET_REDIS_PORT: String(target.port),
      TARGET_REDIS_DB: "same",
      STREAM_DISCOVERY_INTERVAL: "1",
      METRICS_PORT: "0",
    }, undefined);
    console.log(
      `Replicating with the default configuration: patterns ${
        config.discoveryPatterns.join(" ")
      }, DBs ${config.dbSearchRange[0]}-${config.dbSearchRange.at(-1)}, TARGET_REDIS_DB=same`,
    );
    const orchestrator = new Orchestrator(config);
    const controller = new AbortController();
    const started = performance.now();
    const running = orchestrator.run(controller.signal);
    const want = STREAMS.map((s) => s.entries);
    while ((await targetLengths(targetClients)).some((n, i) => n < want[i])) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const catchUp = (performance.now() - started) / 1000;
    console.log(
      `Caught up: ${initial} entries in ${catchUp.toFixed(2)} s (${
        Math.round(initial / catchUp)
      } entries/s)`,
    );

    console.log(`Live: adding entries for ${LIVE_SECONDS} s...`);
    let added = 0;
    const liveStart = performance.now();
    for (let second = 1; second <= LIVE_SECONDS; second++) {
      for (let k = 0; k < 10; k++) {
        for (const s of STREAMS) await produce(sourceClients, s, 20, s.entries + added + k * 20);
        const due = liveStart + (second - 1) * 1000 + (k + 1) * 100;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
      added += 200;
      const lengths = await targetLengths(targetClients);
      const onTarget = lengths.reduce((a, b) => a + b, 0);
      const onSource = initial + added * STREAMS.length;
      console.log(
        `  ${second} s: source ${onSource} entries, target ${onTarget} (behind by ${
          onSource - onTarget
        })`,
      );
    }
    const total = initial + added * STREAMS.length;
    const deadline = Date.now() + 30_000;
    while (
      (await targetLengths(targetClients)).reduce((a, b) => a + b, 0) < total &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    const result = await running;
    const elapsed = (performance.now() - started) / 1000;

    const src = new RedisConnection({ role: "source", host: "127.0.0.1", port: source.port });
    const dst = new RedisConnection({ role: "target", host: "127.0.0.1", port: target.port });
    let identical = 0;
    console.log("\nStream                    entries  compare");
    try {
      for (const s of STREAMS) {
        const ref = makeStreamRef(s.db, s.key, { targetDb: "same" });
        const c = await compareStream({ source: src, target: dst }, ref);
        if (c.identical) identical++;
        const verdict = c.identical
          ? "identical (IDs and bytes)"
          : `DIFFERENT: ${c.missing} missing, ${c.extra} extra, ${c.changed} changed`;
        console.log(`${ref.label.padEnd(25)} ${String(c.sourceEntries).padStart(7)}  ${verdict}`);
      }
    } finally {
      src.close();
      dst.close();
    }
    const copied = result.streams.reduce((n, s) => n + s.copied, 0);
    console.log(
      `\nSummary: ${result.streams.length} streams, ${copied} entries copied in ${
        elapsed.toFixed(1)
      } s ` +
        `(initial catch-up ${Math.round(initial / catchUp)} entries/s); ` +
        `${identical} of ${STREAMS.length} streams identical on the target. Cleaning up.`,
    );
    return identical === STREAMS.length ? 0 : 1;
  } finally {
    for (const c of [...sourceClients, ...targetClients]) await c.close();
  }
}

if (import.meta.main) Deno.exit(await main());
