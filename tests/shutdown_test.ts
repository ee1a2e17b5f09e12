/**
 * Exit codes and the bound on shutdown, through the real CLI.
 */
import assert from "node:assert/strict";
import { spawnCli, waitFor } from "./_cli.ts";
import { TcpProxy } from "./_proxy.ts";
import { connect, RedisServer } from "./_redis.ts";

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
    STREAM_POLL_INTERVAL: "0.2",
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

Deno.test("run stopped by SIGTERM exits 0 although a stream is stopped in error", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("good-stream", "1-0", ["n", "1"]);
  await src.xadd("bad-stream", "1-0", ["n", "1"]);
  await dst.send(["SET", "bad-stream", "not a stream"]);
  await using cli = spawnCli(["run"], { env: env(source, target) });
  await cli.waitForOutput(/Stopped replicating db0:bad-stream: .*WRONGTYPE/, 20_000);
  await waitFor(async () => Number(await dst.send(["XLEN", "good-stream"])) === 1, {
    message: "good-stream copied",
  });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
});

Deno.test("SIGTERM ends run within the grace period while a target write hangs; run --once interrupted exits 1", async () => {
  // run: the target hangs in the middle of a batch. run --once: it hangs from the start.
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  for (let i = 1; i <= 50; i++) await src.xadd("hang-stream", `${i}-0`, ["n", String(i)]);
  // A command timeout far longer than the grace period: only the grace period can end it.
  const settings = env(source, { port: proxy.port }, { TARGET_REDIS_COMMAND_TIMEOUT: "120" });
  for (const args of [["run"], ["run", "--once"]]) {
    await using cli = spawnCli(args, { env: settings, timeoutMs: 100_000 });
    await waitFor(async () => (await dst.xrangeAll("hang-stream")).length >= 50, {
      timeoutMs: 20_000,
      message: "the first entries copied",
    });
    proxy.blackhole(true); // the target accepts and never answers
    await src.xadd("hang-stream", "*", ["n", "more"]);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a batch is now in flight
    const stopAt = performance.now();
    cli.signal("SIGTERM");
    const result = await cli.wait();
    const seconds = (performance.now() - stopAt) / 1000;
    proxy.blackhole(false);
    // Grace: STREAM_POLL_INTERVAL + 4 s, at most 5 s; 60 s of slack for a slow machine,
    // still far below the 120 s command timeout it would otherwise wait for.
    assert.ok(seconds < 60, `${args.join(" ")} took ${seconds.toFixed(1)} s to stop`);
    assert.equal(result.code, args.includes("--once") ? 1 : 0, result.stderr);
  }
});
