/**
 * An entry of a quiet stream is copied without waiting for anything else to
 * happen (issue 18): not held back by big entries that went through another
 * stream, with leases (fenced reads) and without; and one whose wake-up
 * never came is found by the watchdog.
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  quietLogs,
  replicationConfig,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

for (const leases of [true, false]) {
  Deno.test(`the last entries of a small stream are copied after 20 MB entries went through another stream (STREAM_LEASES=${leases})`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using big = await connect(source);
    await using dst = await connect(target);
    await src.send(["XADD", "small-stream", "*", "v", "start"]);
    await src.send(["XADD", "big-stream", "*", "v", "start"]);
    await using _live = startReplicator(
      replicationConfig(source, target, { STREAM_LEASES: leases }),
    );
    await waitForCopy(src, "small-stream", dst);
    let stop = false;
    const small = (async () => {
      for (let i = 0; !stop; i++) {
        await src.send(["XADD", "small-stream", "*", "i", String(i)]);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const payload = "x".repeat(20 * 1024 * 1024);
    for (let n = 0; n < 3; n++) await big.send(["XADD", "big-stream", "*", "blob", payload]);
    stop = true;
    await small;
    // Nothing is written to either stream from now on: the small stream's tail must still come.
    await waitForCopy(src, "small-stream", dst);
    await waitForCopy(src, "big-stream", dst, "big-stream", { timeoutMs: 60_000 });
  });
}

for (const leases of [true, false]) {
  Deno.test(`the watchdog finds a stream whose new entry never woke its reader (taken by another consumer): said at WARNING, counted, the entry copied (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    const key = "stolen-wake-stream";
    for (let i = 0; i < 5; i++) await src.send(["XADD", key, "*", "i", String(i)]);
    await using live = startReplicator(replicationConfig(source, target, {
      STREAM_LEASES: leases,
      STREAM_DISCOVERY_INTERVAL: 1,
      STREAM_STALL_TIMEOUT: 1,
      // Group maintenance (which also claims other consumers' entries) does not come first.
      STREAM_PENDING_CHECK_INTERVAL: 3600,
    }));
    await waitForCopy(src, key, dst);
    // The new entry is delivered to another consumer before the reader can be woken for it.
    await src.send(["MULTI"]);
    await src.send(["XADD", key, "*", "i", "stolen"]);
    await src.send(["XREADGROUP", "GROUP", "redis-sync-group", "thief", "STREAMS", key, ">"]);
    await src.send(["EXEC"]);
    await waitForCopy(src, key, dst);
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key));
    assert.ok(logs.atLeast("WARNING", /no progress of the copy/).length > 0, logs.toString());
    assert.ok(live.orchestrator.status().streams[0].stalls >= 1);
  });
}

Deno.test("the watchdog looks at every stream each pass, also beyond the 1,000 whose stats a pass reads: a stolen entry among 10,000 quiet streams is copied within seconds", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 10_000 }, (_, i) => `device:${i}:stream`);
  for (let i = 0; i < keys.length; i += 1000) {
    await Promise.all(keys.slice(i, i + 1000).map((k) => src.send(["XADD", k, "*", "n", "0"])));
  }
  await using _live = startReplicator(replicationConfig(source, target, {
    STREAM_DISCOVERY_INTERVAL: 1,
    STREAM_STALL_TIMEOUT: 1,
    STREAM_PENDING_CHECK_INTERVAL: 3600,
  }));
  await waitFor(async () => Number(await dst.send(["DBSIZE"])) === keys.length, {
    timeoutMs: 60_000,
    message: "every stream's first entry on the target",
  });
  // The stats of a pass reach a quiet stream every 10 passes, so the stats alone would find
  // the stall only after 20 passes or more (two looks, the second one without progress).
  const key = keys[7_777];
  await src.send(["MULTI"]);
  await src.send(["XADD", key, "*", "i", "stolen"]);
  await src.send(["XREADGROUP", "GROUP", "redis-sync-group", "thief", "STREAMS", key, ">"]);
  await src.send(["EXEC"]);
  await waitForCopy(src, key, dst, key, { timeoutMs: 12_000 });
  assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key));
  assert.ok(logs.atLeast("WARNING", /no progress of the copy/).length > 0, logs.toString());
});

Deno.test("group maintenance reaches every stream in turn, also beyond the 1,000 it may look at per interval: an entry taken by another consumer is claimed and copied", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 3_000 }, (_, i) => `device:${i}:stream`);
  for (let i = 0; i < keys.length; i += 1000) {
    await Promise.all(keys.slice(i, i + 1000).map((k) => src.send(["XADD", k, "*", "n", "0"])));
  }
  await using _live = startReplicator(replicationConfig(source, target, {
    STREAM_DISCOVERY_INTERVAL: 1,
    STREAM_STALL_TIMEOUT: 3600, // not the watchdog: maintenance alone finds it
    STREAM_PENDING_CHECK_INTERVAL: 0.5, // 1,000 streams a half second: 3,000 in 1.5 s
  }));
  await waitFor(async () => Number(await dst.send(["DBSIZE"])) === keys.length, {
    timeoutMs: 60_000,
    message: "every stream's first entry on the target",
  });
  // Twice, on two streams, so that the second is found by maintenance's later turns.
  for (const key of [keys[2_999], keys[1_234]]) {
    await src.send(["MULTI"]);
    await src.send(["XADD", key, "*", "i", "stolen"]);
    await src.send(["XREADGROUP", "GROUP", "redis-sync-group", "thief", "STREAMS", key, ">"]);
    await src.send(["EXEC"]);
    await waitForCopy(src, key, dst, key, { timeoutMs: 15_000 });
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key));
  }
  assert.deepEqual(logs.atLeast("WARNING", /no progress of the copy/), [], logs.toString());
});
