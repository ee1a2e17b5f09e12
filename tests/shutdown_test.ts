/**
 * Exit codes and the bound on shutdown, through the real CLI.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli, stopBoundSeconds, waitFor } from "../testing/cli.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import { assertSameEntries, pendingCount } from "./_replication.ts";

const GROUP = "redis-sync-group";
const POLL_INTERVAL_SECONDS = 0.2;

function env(
  source: { port: number },
  target: { port: number },
  extra: Record<string, string> = {},
) {
  return {
    SOURCE_REDIS_HOST: "127.0.0.1",
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_HOST: "127.0.0.1",
    TARGET_REDIS_PORT: String(target.port),
    STREAM_POLL_INTERVAL: String(POLL_INTERVAL_SECONDS),
    STREAM_DISCOVERY_INTERVAL: "0.3",
    STREAM_DISCOVERY_PATTERNS: "*-stream",
    REDIS_DB_SEARCH_RANGE: "0",
    SOURCE_REDIS_BACKOFF_BASE: "0.05",
    SOURCE_REDIS_BACKOFF_MAX: "0.5",
    TARGET_REDIS_BACKOFF_BASE: "0.05",
    TARGET_REDIS_BACKOFF_MAX: "0.5",
    ...extra,
  };
}

/** The longest a stop may take here (grace period + poll interval + margin). */
const STOP_BOUND_SECONDS = stopBoundSeconds(POLL_INTERVAL_SECONDS);

/** Sum of the delivery counts of the entries pending in the group (0 when none). */
async function deliveries(client: TestClient, key: string): Promise<number> {
  const pending = await client.send(["XPENDING", key, GROUP, "-", "+", "100000"]) as unknown[][];
  return pending.reduce((sum, entry) => sum + Number(entry[3]), 0);
}

async function length(client: TestClient, key: string): Promise<number> {
  return Number(await client.send(["XLEN", key]));
}

/**
 * Waits until a batch is really in flight: entries were delivered to the
 * group since `deliveredBefore` (a read or a claim of this run) and are not
 * acknowledged, while the target holds fewer entries than the source.
 */
async function waitForBatchInFlight(
  src: TestClient,
  dst: TestClient,
  key: string,
  deliveredBefore: number,
): Promise<void> {
  await waitFor(
    async () =>
      await pendingCount(src, key, GROUP) > 0 &&
      await deliveries(src, key) > deliveredBefore &&
      await length(dst, key) < await length(src, key),
    { timeoutMs: 20_000, message: "a batch in flight (pending > 0 while the target is behind)" },
  );
}

Deno.test("run stopped by SIGTERM exits 0 although a stream is stopped in error", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("good-stream", "1-0", ["n", "1", "bin", new Uint8Array([0, 0xff, 0x0a])]);
  await src.xadd("bad-stream", "1-0", ["n", "1"]);
  await dst.send(["SET", "bad-stream", "not a stream"]);
  await using cli = spawnCli(["run"], { env: env(source, target) });
  await cli.waitForOutput(/Stopped replicating db0:bad-stream: .*WRONGTYPE/, 20_000);
  await waitFor(async () => await length(dst, "good-stream") === 1, {
    message: "good-stream copied",
  });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assertSameEntries(
    await dst.xrangeAll("good-stream"),
    await src.xrangeAll("good-stream"),
    "target good-stream",
  );
  assert.equal(await dst.send(["GET", "bad-stream"]), "not a stream");
});

Deno.test("SIGTERM ends run, and run --once, within the grace period while a target write hangs (run exits 0, --once 1); nothing is lost", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "hang-stream";
  for (let i = 1; i <= 50; i++) await src.xadd(key, `${i}-0`, ["n", String(i)]);
  // A command timeout far longer than the grace period: only the grace period can end it.
  const settings = env(source, { port: proxy.port }, { TARGET_REDIS_COMMAND_TIMEOUT: "120" });
  const stop = async (cli: ReturnType<typeof spawnCli>, what: string) => {
    const stopAt = performance.now();
    cli.signal("SIGTERM");
    const result = await cli.wait();
    const seconds = (performance.now() - stopAt) / 1000;
    assert.ok(
      seconds <= STOP_BOUND_SECONDS,
      `${what} took ${seconds.toFixed(1)} s to stop (bound ${STOP_BOUND_SECONDS} s)`,
    );
    return result;
  };

  // run: the target hangs (a black hole, nothing answered, nothing closed) in the middle.
  {
    await using cli = spawnCli(["run"], { env: settings, timeoutMs: 90_000 });
    await waitFor(async () => await length(dst, key) === 50, {
      timeoutMs: 20_000,
      message: "the first 50 entries copied",
    });
    await waitFor(async () => await pendingCount(src, key, GROUP) === 0, {
      message: "the first entries acknowledged",
    });
    proxy.blackhole(true);
    for (let i = 51; i <= 60; i++) await src.xadd(key, `${i}-0`, ["n", String(i)]);
    await waitForBatchInFlight(src, dst, key, 0);
    const result = await stop(cli, "run");
    assert.equal(result.code, 0, result.stderr);
  }
  proxy.blackhole(false); // what it held may still reach the target: a reply lost, nothing more
  assert.ok(await pendingCount(src, key, GROUP) > 0, "the batch in flight was acknowledged");

  // run --once, from a state with work left: new entries never delivered, and the
  // abandoned batch still pending. Target writes hang from the start (reads still
  // answer, so the start-up check passes and the batch is read and claimed).
  for (let i = 61; i <= 80; i++) await src.xadd(key, `${i}-0`, ["n", String(i)]);
  assert.ok(await length(dst, key) < 80, "no work left for the second round");
  await dst.send(["CLIENT", "PAUSE", "120000", "WRITE"]);
  try {
    const deliveredBefore = await deliveries(src, key);
    await using cli = spawnCli(["run", "--once"], { env: settings, timeoutMs: 90_000 });
    await waitForBatchInFlight(src, dst, key, deliveredBefore);
    const result = await stop(cli, "run --once");
    assert.equal(result.code, 1, result.stderr);
  } finally {
    await dst.send(["CLIENT", "UNPAUSE"]);
  }

  // Nothing was lost or written twice: a last run --once completes an exact copy.
  const once = await runCli(["run", "--once"], { env: settings, timeoutMs: 60_000 });
  assert.equal(once.code, 0, once.stderr);
  const all = await src.xrangeAll(key);
  assert.equal(all.length, 80);
  assertSameEntries(await dst.xrangeAll(key), all, `target ${key}`);
  assert.equal(await pendingCount(src, key, GROUP), 0);
});
