/**
 * Coalesced writes: while a stream's write is in flight, what is read
 * meanwhile goes into its next write, so a slow link does not set the pace;
 * and a replicator killed in the middle of such a write loses and
 * duplicates nothing.
 */
import assert from "node:assert/strict";
import { spawnCli, waitFor } from "../testing/cli.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  fillStream,
  pendingCount,
  replicationConfig,
  replicationEnv,
  runOnce,
} from "./_replication.ts";

const GROUP = "redis-sync-group";

Deno.test("behind a slow link, entries read while a write is in flight go into the next write: far fewer writes than batches", async () => {
  await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, "slow-stream", 5000);
  proxy.delay(30); // 60 ms more per round trip to the target
  const result = await runOnce(
    replicationConfig(source, { port: proxy.port }, { STREAM_BATCH_SIZE: 10 }),
    { timeoutMs: 120_000 },
  );
  assert.ok(result.ok, JSON.stringify(result.failures));
  const status = result.streams.find((s) => s.key === "slow-stream");
  assert.equal(status?.copied, 5000);
  // One batch of STREAM_BATCH_SIZE per write would be 500 writes.
  assert.ok(status!.batches <= 100, `${status!.batches} writes for 500 batches of 10 read`);
  assertSameEntries(await dst.xrangeAll("slow-stream"), await src.xrangeAll("slow-stream"));
  assert.equal(await pendingCount(src, "slow-stream", GROUP), 0);
});

Deno.test("SIGKILL in the middle of coalesced writes, three times, then run --once: exact copy, nothing pending", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "kill-stream";
  await fillStream(src, key, 20_000);
  proxy.delay(30);
  const env = replicationEnv(source, { port: proxy.port }, { STREAM_BATCH_SIZE: 10 });
  for (let round = 0; round < 3; round++) {
    await using cli = spawnCli(["run"], { env, timeoutMs: 120_000 });
    const before = Number(await dst.send(["XLEN", key]));
    // A coalesced write is in flight: far more delivered and unacked than one batch, the
    // target behind the source and still growing. What is left after earlier rounds may be
    // copied whole between two looks: then there is nothing left to cut.
    let whole = false;
    await waitFor(async () => {
      const copied = Number(await dst.send(["XLEN", key]));
      if (copied >= 20_000) return (whole = true);
      return copied > before && await pendingCount(src, key, GROUP) > 100;
    }, { timeoutMs: 60_000, message: `round ${round}: writes in flight` });
    if (whole && round > 0) break;
    cli.signal("SIGKILL");
    const status = await cli.wait();
    assert.equal(status.signal, "SIGKILL");
    if (Number(await dst.send(["XLEN", key])) >= 20_000) break;
  }
  proxy.delay(0);
  const result = await runOnce(replicationConfig(source, { port: proxy.port }), {
    timeoutMs: 60_000,
  });
  assert.ok(result.ok, JSON.stringify(result.failures));
  assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  assert.equal(await pendingCount(src, key, GROUP), 0);
});
