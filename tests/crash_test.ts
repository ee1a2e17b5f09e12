/**
 * Crash tests: the real CLI (`main.ts run`, a subprocess) is killed with
 * SIGKILL at random moments while a producer writes, and the Redis servers
 * themselves are killed and restarted under a running replicator. Whatever
 * happens, the target must end up an exact copy of the source (IDs, bytes,
 * order), with nothing left pending in the consumer group. Real
 * `redis-server` processes, no mocks.
 *
 * The kill moments come from a seeded PRNG: set CRASH_SEED to replay a run
 * (the seed and every kill delay are printed).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CliProcess, runCli, spawnCli } from "../testing/cli.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import { prng, Producer } from "../testing/producer.ts";
import { TcpProxy } from "../testing/proxy.ts";
import {
  delay,
  entriesDifference,
  replicationEnv,
  type ServerAddress,
  waitFor,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
/** Five streams matching the default discovery pattern `*-stream`. */
const KEYS = ["orders-stream", "payments-stream", "audit-stream", "bin-stream", "events-stream"];
const SEED = Number(Deno.env.get("CRASH_SEED") ?? "20261126");

/** The replicator's settings: fast polls and discovery, short backoffs, no metrics listener. */
function crashEnv(source: ServerAddress, target: ServerAddress): Record<string, string> {
  return replicationEnv(source, target, {
    STREAM_POLL_INTERVAL: "0.1",
    STREAM_DISCOVERY_INTERVAL: "0.2",
    REDIS_DB_SEARCH_RANGE: "0",
    LOG_LEVEL: "INFO", // the kill timing waits for the "starting" line
    SOURCE_REDIS_MAX_RETRIES: "20",
    SOURCE_REDIS_BACKOFF_BASE: "0.05",
    SOURCE_REDIS_BACKOFF_MAX: "0.5",
    TARGET_REDIS_MAX_RETRIES: "20",
    TARGET_REDIS_BACKOFF_BASE: "0.05",
    TARGET_REDIS_BACKOFF_MAX: "0.5",
    METRICS_PORT: "0",
  });
}

async function streamLength(client: TestClient, key: string): Promise<number> {
  return Number(await client.send(["XLEN", key]));
}

async function totalLength(client: TestClient): Promise<number> {
  let total = 0;
  for (const key of KEYS) total += await streamLength(client, key);
  return total;
}

/** Entries pending in the group, summed over every stream (0 for a stream without the group yet). */
async function totalPending(client: TestClient): Promise<number> {
  let total = 0;
  for (const key of KEYS) {
    try {
      const reply = await client.send(["XPENDING", key, GROUP]) as unknown[];
      total += Number(reply[0]);
    } catch (error) {
      if (!/NOGROUP|no such key/i.test(String((error as Error).message))) throw error;
    }
  }
  return total;
}

/**
 * Asserts that every stream of `KEYS` on the target is identical to the
 * source (IDs, field and value bytes, order; read here, not with the
 * replicator's own verify code) and that nothing is pending in the group.
 * Returns the number of entries compared.
 */
async function assertExactCopy(
  source: RedisServer,
  target: RedisServer,
  context: string,
): Promise<number> {
  await using src = await connect(source);
  await using dst = await connect(target);
  let entries = 0;
  for (const key of KEYS) {
    const [a, b] = [await src.xrangeAll(key), await dst.xrangeAll(key)];
    const difference = entriesDifference(b, a);
    assert.equal(difference, undefined, `${key} differs on the target: ${difference}\n${context}`);
    assert.ok(a.length > 0, `${key} is empty on the source\n${context}`);
    entries += a.length;
    const pending = await src.send(["XPENDING", key, GROUP]) as unknown[];
    assert.equal(Number(pending[0]), 0, `${key}: entries still pending\n${context}`);
  }
  return entries;
}

/** Fails if the replicator exited on its own. */
function assertRunning(cli: CliProcess, what: string): void {
  assert.ok(
    !cli.exited,
    `the replicator exited ${what}\n--- stderr ---\n${cli.stderr().slice(-4000)}`,
  );
}

Deno.test("crash: SIGKILL of `run` at random moments, at least 15 times while 50,000 entries are written, loses and duplicates nothing", async () => {
  const TOTAL = 50_000;
  const MIN_KILLS = 15;
  const MAX_KILLS = 80;
  const random = prng(SEED);
  console.log(`crash seed ${SEED} (CRASH_SEED=${SEED} replays the kill delays)`);
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  // The target 10 ms away (each way): a batch stays read and not acknowledged for a round trip
  // at least, so that kills land mid-batch however fast the machine copies on loopback.
  await using proxy = await TcpProxy.start(target);
  proxy.delay(10);
  const env = crashEnv(source, { host: target.host, port: proxy.port });

  // Separate random sequences, so that the kill delays do not depend on the producer's timing.
  const producer = new Producer(source, KEYS, prng(SEED ^ 0x5eed));
  const producing = producer.runCount(TOTAL, 250, 40);
  let producerDone = false;
  producing.then(() => (producerDone = true), () => (producerDone = true));

  const kills: Array<{ at: string; pending: number; copied: number }> = [];
  const history = () =>
    `seed ${SEED}; kills (when / pending after the kill / entries on the target): ${
      kills.map((k) => `${k.at}/${k.pending}/${k.copied}`).join(" ")
    }`;
  try {
    while ((kills.length < MIN_KILLS || !producerDone) && kills.length < MAX_KILLS) {
      // One kill in five lands during start-up (0-150 ms after spawn: loading, connecting);
      // three in ten 50-800 ms after the process logged that it starts (discovery, group
      // creation, recovery of pending entries, first batches); the rest 0-300 ms after it
      // was seen copying, so that they land between reading a batch and acking it, however
      // slowly a busy machine starts deno.
      const mode = random();
      const early = mode < 0.2;
      const afterCopy = mode >= 0.5;
      const delayMs = early
        ? Math.floor(random() * 150)
        : afterCopy
        ? Math.floor(random() * 300)
        : 50 + Math.floor(random() * 750);
      const before = await totalLength(dst);
      await using cli = spawnCli(["run"], { env, timeoutMs: 60_000 });
      const spawned = performance.now();
      let at = `${delayMs}ms-after-spawn`;
      if (!early) {
        await cli.waitForOutput(/redis-stream-sync \S+ starting/, 30_000);
        at = `${delayMs}ms-after-start@${Math.round(performance.now() - spawned)}`;
      }
      if (afterCopy) {
        await waitFor(async () => {
          const now = await totalLength(dst);
          return now > before || (producerDone && now === TOTAL);
        }, { timeoutMs: 30_000, intervalMs: 10, message: `a restart to copy; ${history()}` });
        at = `${delayMs}ms-after-copying@${Math.round(performance.now() - spawned)}`;
      }
      await delay(delayMs);
      assertRunning(cli, `before kill ${kills.length + 1} (${at})`);
      cli.signal("SIGKILL");
      const result = await cli.wait();
      assert.equal(result.signal, "SIGKILL", `kill ${kills.length + 1}: ${result.stderr}`);
      kills.push({ at, pending: await totalPending(src), copied: await totalLength(dst) });
    }
    await producing;
    console.log(history());
    assert.equal(producer.acked, TOTAL);
    assert.equal(producer.failed, 0);
    assert.ok(kills.length >= MIN_KILLS, history());
    assert.ok(kills.at(-1)!.copied > 0, `nothing was copied between the kills; ${history()}`);
    // At least one kill landed with a batch read but not acknowledged (mid-batch).
    assert.ok(kills.some((k) => k.pending > 0), `no kill landed mid-batch; ${history()}`);

    const once = await runCli(["run", "--once"], { env, timeoutMs: 90_000 });
    assert.equal(once.code, 0, `run --once failed\n${once.stderr}\n${history()}`);
    const entries = await assertExactCopy(source, target, history());
    assert.equal(entries, TOTAL);
  } catch (error) {
    console.error(history());
    throw error;
  }
});

Deno.test("crash: `run` survives SIGKILL and graceful restarts of the source and target servers (AOF) and ends with an exact copy", async () => {
  await using source = await RedisServer.start({ appendOnly: true });
  await using target = await RedisServer.start({ appendOnly: true });
  const env = crashEnv(source, target);
  const producer = new Producer(source, KEYS, prng(SEED));
  const producing = producer.runCount(Number.MAX_SAFE_INTEGER, 100, 20);
  await using cli = spawnCli(["run"], { env, timeoutMs: 180_000 });
  const steps: string[] = [];
  const context = () =>
    `steps: ${steps.join(", ")}; producer acked ${producer.acked}, failed ${producer.failed}`;

  /** Waits until the target holds `more` entries more than at the first look (progress). */
  const progress = async (more: number, what: string) => {
    let start = -1;
    await waitFor(async () => {
      // A new connection each time: the target may just have been restarted.
      await using dst = await connect(target);
      const n = await totalLength(dst);
      if (start < 0) start = n;
      return n >= start + more;
    }, { timeoutMs: 30_000, intervalMs: 100, message: `progress ${what}; ${context()}` });
  };

  try {
    await progress(2_000, "before the first fault");
    const faults: Array<[string, RedisServer, "kill" | "stop"]> = [
      ["source", source, "kill"],
      ["target", target, "kill"],
      ["source", source, "stop"],
      ["target", target, "stop"],
    ];
    for (const [name, server, how] of faults) {
      if (how === "kill") await server.kill();
      else await server.stop();
      steps.push(`${name} ${how === "kill" ? "SIGKILL" : "stop"}`);
      await delay(700); // the outage's length: time passes on purpose
      assertRunning(cli, `while the ${name} server was down; ${context()}`);
      await server.start();
      steps.push(`${name} up`);
      await progress(1_000, `after the ${name} server came back`);
      assertRunning(cli, `after the ${name} server came back; ${context()}`);
    }
    producer.stop();
    await producing;
    steps.push("producer stopped");

    // The running replicator catches up by itself: same last entry everywhere, nothing pending.
    await using src = await connect(source);
    await using dst = await connect(target);
    await waitFor(async () => {
      for (const key of KEYS) {
        const [a, b] = await Promise.all([
          src.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]),
          dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]),
        ]);
        if (JSON.stringify(a) !== JSON.stringify(b)) return false;
      }
      return await totalPending(src) === 0;
    }, { timeoutMs: 60_000, intervalMs: 200, message: `the catch-up; ${context()}` });
    assertRunning(cli, `after catching up; ${context()}`);
    const entries = await assertExactCopy(source, target, context());
    assert.ok(entries >= producer.acked, `${entries} entries < ${producer.acked} acknowledged`);

    cli.signal("SIGTERM");
    const result = await cli.wait();
    assert.equal(result.code, 0, `SIGTERM: exit ${result.code}\n${result.stderr}`);
  } catch (error) {
    producer.stop();
    await producing.catch(() => {});
    console.error(`${context()}\n--- replicator stderr ---\n${cli.stderr().slice(-6000)}`);
    throw error;
  }
});
