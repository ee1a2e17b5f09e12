/**
 * Log volume: what is normal (streams deleted) is summed up once a
 * discovery pass at INFO, not one WARNING per stream; a destroyed consumer
 * group is told apart from a deleted stream.
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  replicationConfig,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

Deno.test("300 streams deleted while run runs are said in a few INFO lines, not one WARNING each; a destroyed group is a WARNING and its stream is copied again, exact", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 300 }, (_, i) => `gone-${i}-stream`);
  await Promise.all(keys.map((key) => src.send(["XADD", key, "*", "n", "1"])));
  await src.send(["XADD", "kept-stream", "*", "n", "1"]);
  await using _live = startReplicator(replicationConfig(source, target, {
    STREAM_DISCOVERY_INTERVAL: 0.3,
  }));
  await waitForCopy(src, "kept-stream", dst);
  await waitFor(async () => {
    const lengths = await Promise.all(keys.map((key) => dst.send(["XLEN", key])));
    return lengths.every((n) => Number(n) === 1);
  }, { timeoutMs: 20_000, message: "every stream copied" });
  await src.send(["DEL", ...keys]);
  await waitFor(() => {
    const said = logs.atLeast("INFO", /streams? (is|are) gone/);
    return said.reduce((n, line) => n + Number(/^(\d+) streams?/.exec(line.message)![1]), 0) ===
      keys.length;
  }, { timeoutMs: 20_000, message: "300 streams said gone" });
  const lines = logs.atLeast("INFO", /streams? (is|are) gone/);
  assert.ok(lines.length <= 5, lines.map((l) => l.message).join("\n"));
  assert.ok(lines.every((l) => l.level === "INFO"), lines.map((l) => l.level).join());
  assert.deepEqual(logs.atLeast("WARNING", /gone/), []);
  // The group of a stream destroyed by someone: a WARNING naming it, and the stream copied
  // again from its first entry (what the target holds is skipped), then on.
  await src.send(["XGROUP", "DESTROY", "kept-stream", "redis-sync-group"]);
  await src.send(["XADD", "kept-stream", "*", "n", "2"]);
  await waitFor(() => logs.atLeast("WARNING", /lost consumer group/).length > 0, {
    timeoutMs: 20_000,
    message: "a WARNING for the destroyed group",
  });
  assert.match(logs.atLeast("WARNING", /lost consumer group/)[0].message, /db0:kept-stream/);
  await src.send(["XADD", "kept-stream", "*", "n", "3"]);
  await waitForCopy(src, "kept-stream", dst);
  assertSameEntries(await dst.xrangeAll("kept-stream"), await src.xrangeAll("kept-stream"));
});

Deno.test("INFO names the streams it starts (the first five, and how many more), and says when they came from another instance", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 40 }, (_, i) => `s${String(i).padStart(2, "0")}-stream`);
  for (const key of keys) await src.send(["XADD", key, "*", "n", "1"]);
  const config = replicationConfig(source, target, {
    STREAM_DISCOVERY_INTERVAL: 0.3,
    STREAM_LEASE_TTL: 1,
  });
  await using _first = startReplicator(config);
  await waitFor(() => logs.atLeast("INFO", /Replicating 40 new streams/).length === 1, {
    timeoutMs: 20_000,
    message: "the first instance starts the 40 streams",
  });
  const said = logs.atLeast("INFO", /Replicating 40 new streams/)[0].message;
  assert.match(said, /: db0:s\d\d-stream(, db0:s\d\d-stream){4} and 35 more$/);
  // A second instance: some streams move to it, and it says where they came from.
  await using _second = startReplicator(config);
  await waitFor(
    () => logs.atLeast("INFO", /streams handed over or taken over from other instances/).length > 0,
    {
      timeoutMs: 30_000,
      message: "the second instance says it took streams over",
    },
  ).catch((error) => {
    throw new Error(logs.atLeast("INFO").map((l) => l.message).join("\n"), { cause: error });
  });
  for (const key of keys) await waitForCopy(src, key, dst);
});

Deno.test("DEBUG shows each write: the stream, how many entries written and already there, the first and last ID, bytes and time", async () => {
  const logs = await captureLogs("DEBUG");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push(String(await src.send(["XADD", "debug-stream", "*", "field", "x".repeat(10)])));
  }
  await using _live = startReplicator(replicationConfig(source, target, { LOG_LEVEL: "DEBUG" }));
  await waitForCopy(src, "debug-stream", dst);
  await waitFor(() => logs.atLeast("DEBUG", /^Wrote db0:debug-stream: /).length > 0, {
    message: "a DEBUG line for the write",
  });
  const lines = logs.lines.filter((l) =>
    l.level === "DEBUG" && /^Wrote db0:debug-stream: /.test(l.message)
  );
  const parsed = lines.map((l) =>
    /^Wrote db0:debug-stream: (\d+) written, (\d+) already there, (\S+)\.\.(\S+), (\d+) bytes, [\d.]+ ms$/
      .exec(l.message)
  );
  assert.ok(parsed.every((m) => m !== null), lines.map((l) => l.message).join("\n"));
  assert.equal(parsed.reduce((n, m) => n + Number(m![1]), 0), 5);
  assert.equal(parsed[0]![3], ids[0]);
  assert.equal(parsed.at(-1)![4], ids[4]);
  assert.ok(Number(parsed[0]![5]) > 0);
});
