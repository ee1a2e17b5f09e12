/**
 * One signal, one shutdown: a signal delivered twice within a moment (a
 * process group signalled as a whole, `deno task` forwarding it to its child)
 * is one request for a graceful shutdown; a signal repeated later exits at
 * once. Through `deno task start`, as users run it.
 */
import assert from "node:assert/strict";
import { spawnTask, waitFor } from "../testing/cli.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer } from "../testing/redis.ts";

function env(source: { port: number }, target: { port: number }): Record<string, string> {
  return {
    SOURCE_REDIS_HOST: "127.0.0.1",
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_HOST: "127.0.0.1",
    TARGET_REDIS_PORT: String(target.port),
    STREAM_POLL_INTERVAL: "0.2",
    STREAM_DISCOVERY_INTERVAL: "0.3",
    STREAM_DISCOVERY_PATTERNS: "*-stream",
    REDIS_DB_SEARCH_RANGE: "0",
  };
}

Deno.test("SIGTERM to the process group of `deno task start` is one graceful shutdown: exit 0", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("orders-stream", "1-0", ["n", "1"]);
  await using task = spawnTask("start", ["run"], { env: env(source, target) });
  await waitFor(async () => Number(await dst.send(["XLEN", "orders-stream"])) === 1, {
    timeoutMs: 30_000,
    message: "orders-stream copied",
  });
  // `kill -TERM -PGID`: deno task gets it, and its child gets it twice (directly and
  // forwarded), often too close together to be seen as two. A supervisor that signals the
  // group again a moment later (systemd signals every process of the unit, a pod's runtime
  // may repeat it) makes the repetition certain.
  task.signalGroup("SIGTERM");
  await task.waitForOutput(/Received SIGTERM; shutting down/, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  task.signalGroup("SIGTERM");
  const result = await task.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /Received SIGTERM; shutting down/);
  assert.match(result.stderr, /Stopped/);
  assert.doesNotMatch(result.stderr, /exiting now/);
});

Deno.test("a SIGTERM repeated after the first one's moment exits at once with 143", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("orders-stream", "1-0", ["n", "1"]);
  // A command timeout far longer than the grace period: a hung write keeps the shutdown
  // waiting, so only the second signal can end the process early.
  await using task = spawnTask("start", ["run"], {
    env: { ...env(source, { port: proxy.port }), TARGET_REDIS_COMMAND_TIMEOUT: "120" },
  });
  await waitFor(async () => Number(await dst.send(["XLEN", "orders-stream"])) === 1, {
    timeoutMs: 30_000,
    message: "orders-stream copied",
  });
  proxy.blackhole(true);
  await src.xadd("orders-stream", "2-0", ["n", "2"]);
  await waitFor(
    async () =>
      Number((await src.send(["XPENDING", "orders-stream", "redis-sync-group"]) as unknown[])[0]) >
        0,
    {
      timeoutMs: 30_000,
      message: "a batch in flight (pending on the source)",
    },
  );
  // Its write sent and held by the blackhole (read is not yet written: a write not begun
  // ends the shutdown at once).
  await waitFor(() => proxy.heldFromClients > 0, {
    timeoutMs: 30_000,
    message: "the write held by the blackhole",
  });
  task.signalGroup("SIGTERM");
  await task.waitForOutput(/Received SIGTERM; shutting down/, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // past the moment (1 s)
  task.signal("SIGTERM");
  const result = await task.wait();
  proxy.blackhole(false);
  assert.equal(result.code, 143, result.stderr);
  assert.match(result.stderr, /Received SIGTERM again; exiting now/);
});
