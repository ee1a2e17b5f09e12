/**
 * Which streams are replicated, and where to: manual streams, discovery
 * across DBs, consumer groups, disabled processing, target naming,
 * collisions, a target key of another type, and `run --once`. Every test
 * runs real redis-server processes and compares the target with the source
 * entry by entry.
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/load_config.ts";
import { ConfigError } from "../lib/errors.ts";
import { runCli } from "../testing/cli.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  addEntries,
  captureLogs,
  delay,
  groupNames,
  pendingCount,
  quietLogs,
  replicationConfig,
  replicationEnv,
  replicationEnvConf,
  runOnce,
  sameEntries,
  startReplicator,
  waitFor,
  waitForCopy,
  waitForDiscoveryPasses,
  waitForEntries,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
/** A few discovery passes' time at STREAM_DISCOVERY_INTERVAL=0.3 (where no pass runs to wait for). */
const SOME_PASSES_MS = 1_200;

async function keys(client: TestClient): Promise<string[]> {
  return (await client.send(["KEYS", "*"]) as string[]).sort();
}

async function dbSize(client: TestClient): Promise<number> {
  return Number(await client.send(["DBSIZE"]));
}

Deno.test("manual streams of REDIS_STREAMS are replicated with STREAM_AUTO_DISCOVERY=false", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using src2 = await connect(source, { db: 2 });
  await using dst = await connect(target);
  // A bare key lives in SOURCE_REDIS_DB (2), not in DB 0.
  await addEntries(src2, "orders", 5, { from: "db2" });
  await addEntries(src0, "orders", 3, { from: "db0" });
  await addEntries(src2, "unlisted", 2);
  const config = replicationConfig(source, target, {
    SOURCE_REDIS_DB: 2,
    REDIS_STREAMS: "orders,db1:audit:log",
    STREAM_AUTO_DISCOVERY: false,
  });
  await using replicator = startReplicator(config);
  await waitForCopy(src2, "orders", dst, "orders");
  // A manual stream that does not exist yet is copied once it does.
  await addEntries(src1, "audit:log", 4);
  await waitForCopy(src1, "audit:log", dst, "audit:log");
  await addEntries(src2, "orders", 3, { from: "db2" });
  await addEntries(src1, "audit:log", 2);
  await waitForCopy(src2, "orders", dst, "orders");
  await waitForCopy(src1, "audit:log", dst, "audit:log");
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(await keys(dst), ["audit:log", "orders"]);
  assert.deepEqual(await groupNames(src0, "orders"), [], "db0:orders is not a configured stream");
});

Deno.test("manual streams are replicated although no discovery pattern matches them", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src3 = await connect(source, { db: 3 });
  await using dst = await connect(target);
  await addEntries(src0, "orders", 4);
  await addEntries(src3, "events", 6);
  await addEntries(src0, "found-stream", 2);
  const config = replicationConfig(source, target, {
    REDIS_STREAMS: "orders,db3:events",
    STREAM_AUTO_DISCOVERY: true,
    STREAM_DISCOVERY_PATTERNS: "found-*",
  });
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.ok(sameEntries(await dst.xrangeAll("orders"), await src0.xrangeAll("orders")));
  assert.ok(sameEntries(await dst.xrangeAll("events"), await src3.xrangeAll("events")));
  assert.ok(sameEntries(await dst.xrangeAll("found-stream"), await src0.xrangeAll("found-stream")));
  assert.deepEqual(await keys(dst), ["events", "found-stream", "orders"]);
});

Deno.test("discovery scans each DB of REDIS_DB_SEARCH_RANGE with each pattern", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using src2 = await connect(source, { db: 2 });
  await using src5 = await connect(source, { db: 5 });
  await using src6 = await connect(source, { db: 6 });
  await using dst = await connect(target);
  await addEntries(src0, "a-stream", 3);
  await addEntries(src1, "device:7:stream", 4);
  await addEntries(src2, "b-stream", 5);
  await addEntries(src5, "device:x:stream", 2);
  // Not matched: no pattern, a glob mismatch, a DB outside the range.
  await addEntries(src0, "other", 2);
  await addEntries(src1, "device:7:streamz", 2);
  await addEntries(src6, "c-stream", 2);
  const config = replicationConfig(source, target, {
    REDIS_DB_SEARCH_RANGE: "0-2,5",
    STREAM_DISCOVERY_PATTERNS: "*-stream,device:*:stream",
  });
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(await keys(dst), ["a-stream", "b-stream", "device:7:stream", "device:x:stream"]);
  for (
    const [client, key] of [
      [src0, "a-stream"],
      [src1, "device:7:stream"],
      [src2, "b-stream"],
      [src5, "device:x:stream"],
    ] as const
  ) {
    assert.ok(sameEntries(await dst.xrangeAll(key), await client.xrangeAll(key)), key);
  }
  assert.deepEqual(await groupNames(src6, "c-stream"), []);
});

Deno.test("discovery picks up a stream created while run is running", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using dst = await connect(target);
  await addEntries(src0, "a-stream", 3);
  const config = replicationConfig(source, target, { REDIS_DB_SEARCH_RANGE: "0-1" });
  await using replicator = startReplicator(config);
  await waitForCopy(src0, "a-stream", dst);
  await waitForDiscoveryPasses(replicator, 1); // a pass without the new stream
  await addEntries(src1, "late-stream", 4);
  await waitForCopy(src1, "late-stream", dst, "late-stream", { timeoutMs: 10_000 });
  await addEntries(src1, "late-stream", 3);
  await addEntries(src0, "a-stream", 2);
  await waitForCopy(src1, "late-stream", dst);
  await waitForCopy(src0, "a-stream", dst);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("keys of other types matching a discovery pattern are ignored quietly", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.send(["SET", "str-stream", "x"]);
  await src.send(["HSET", "hash-stream", "f", "v"]);
  await src.send(["RPUSH", "list-stream", "a", "b"]);
  await src.send(["SADD", "set-stream", "m"]);
  await src.send(["ZADD", "zset-stream", "1", "m"]);
  await addEntries(src, "real-stream", 5);
  await using replicator = startReplicator(replicationConfig(source, target));
  await waitForCopy(src, "real-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(await keys(dst), ["real-stream"]);
  assert.deepEqual(logs.atLeast("WARNING"), [], logs.toString());
  assert.equal(await src.send(["TYPE", "str-stream"]), "string");
  assert.equal(await src.send(["TYPE", "list-stream"]), "list");
});

Deno.test("a DB beyond the source's databases count is skipped with one warning, the rest replicate", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start({ args: ["--databases", "4"] });
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src2 = await connect(source, { db: 2 });
  await using src3 = await connect(source, { db: 3 });
  await using dst = await connect(target);
  await addEntries(src0, "a-stream", 3);
  await addEntries(src3, "b-stream", 4);
  const config = replicationConfig(source, target, { REDIS_DB_SEARCH_RANGE: "0-15" });
  await using replicator = startReplicator(config);
  await waitForCopy(src0, "a-stream", dst);
  await waitForCopy(src3, "b-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  await addEntries(src2, "c-stream", 2);
  await waitForCopy(src2, "c-stream", dst);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  for (let db = 4; db <= 15; db++) {
    assert.equal(
      logs.at("WARNING", new RegExp(`\\bDB ${db}\\b`)).length,
      1,
      `one warning about DB ${db}:\n${logs}`,
    );
  }
  for (let db = 0; db <= 3; db++) {
    assert.deepEqual(logs.atLeast("WARNING", new RegExp(`\\bDB ${db}\\b`)), [], logs.toString());
  }
  assert.deepEqual(logs.atLeast("ERROR"), [], logs.toString());
});

Deno.test("STREAM_START_ID=0 creates the consumer group at the start and copies the history", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 12);
  const config = replicationConfig(source, target, {
    STREAM_CONSUMER_GROUP: "my-group",
    STREAM_START_ID: "0",
    STREAM_BATCH_SIZE: 5,
  });
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  const copied = await dst.xrangeAll("a-stream");
  assert.equal(copied.length, 12);
  assert.ok(sameEntries(copied, await src.xrangeAll("a-stream")));
  assert.deepEqual(await groupNames(src, "a-stream"), ["my-group"]);
  assert.equal(await pendingCount(src, "a-stream", "my-group"), 0);
});

Deno.test("STREAM_START_ID=$ copies only the entries added after the group is created", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 5, { era: "history" });
  const config = replicationConfig(source, target, { STREAM_START_ID: "$" });
  await using replicator = startReplicator(config);
  await waitFor(async () => (await groupNames(src, "a-stream")).includes(GROUP), {
    timeoutMs: 10_000,
    message: "the consumer group",
  });
  await addEntries(src, "a-stream", 3, { era: "new" });
  await waitForEntries(dst, "a-stream", 3);
  await waitForDiscoveryPasses(replicator, 2); // later passes bring no history in
  const all = await src.xrangeAll("a-stream");
  assert.ok(sameEntries(await dst.xrangeAll("a-stream"), all.slice(5)));
  await addEntries(src, "a-stream", 2, { era: "new" });
  await waitForEntries(dst, "a-stream", 5);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.ok(
    sameEntries(await dst.xrangeAll("a-stream"), (await src.xrangeAll("a-stream")).slice(5)),
  );
});

Deno.test("STREAM_AUTO_CREATE_CONSUMER_GROUPS=false skips a stream without the group, warning once", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 4);
  await addEntries(src, "b-stream", 5);
  await src.send(["XGROUP", "CREATE", "b-stream", GROUP, "0"]);
  const config = replicationConfig(source, target, { STREAM_AUTO_CREATE_CONSUMER_GROUPS: false });
  await using replicator = startReplicator(config);
  await waitForCopy(src, "b-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  assert.equal(await dbSize(dst), 1, "only b-stream is copied");
  assert.deepEqual(await groupNames(src, "a-stream"), [], "the group is not created");
  assert.equal(logs.at("WARNING", "db0:a-stream").length, 1, logs.toString());
  assert.deepEqual(logs.atLeast("WARNING", "b-stream"), [], logs.toString());
  // Once the group exists, the stream is replicated on the next pass.
  await src.send(["XGROUP", "CREATE", "a-stream", GROUP, "0"]);
  await waitForCopy(src, "a-stream", dst, "a-stream", { timeoutMs: 10_000 });
  await replicator.stop();
  assert.equal(logs.at("WARNING", "db0:a-stream").length, 1, logs.toString());
  assert.deepEqual(logs.atLeast("ERROR"), [], logs.toString());
});

Deno.test("REDIS_STREAMS_ENABLED=false copies nothing and stops cleanly", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 3);
  await addEntries(src, "manual", 3);
  const config = replicationConfig(source, target, {
    REDIS_STREAMS_ENABLED: false,
    REDIS_STREAMS: "manual",
  });
  await using replicator = startReplicator(config);
  await waitFor(() => logs.atLeast("INFO", /disabled/i).length > 0, {
    timeoutMs: 5_000,
    message: "a log line saying processing is disabled",
  });
  // Time passes on purpose: with processing disabled nothing runs, so there is
  // no event to wait for, only the absence of any.
  await delay(SOME_PASSES_MS);
  assert.equal(replicator.finished, false, "it idles until stopped");
  const result = await replicator.stop();
  assert.ok(result.ok);
  assert.deepEqual(result.streams, []);
  assert.equal(await dbSize(dst), 0);
  assert.deepEqual(await groupNames(src, "a-stream"), []);
  assert.deepEqual(await groupNames(src, "manual"), []);
});

Deno.test("the target key is TARGET_STREAM_PREFIX + source key, in TARGET_REDIS_DB", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using src2 = await connect(source, { db: 2 });
  await using dst0 = await connect(target, { db: 0 });
  await using dst4 = await connect(target, { db: 4 });
  await addEntries(src0, "a-stream", 3);
  await addEntries(src2, "b-stream", 4);
  await addEntries(src1, "manual", 2);
  const config = replicationConfig(source, target, {
    TARGET_STREAM_PREFIX: "synced:",
    TARGET_REDIS_DB: 4,
    REDIS_STREAMS: "db1:manual",
    REDIS_DB_SEARCH_RANGE: "0-3",
  });
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(await keys(dst4), ["synced:a-stream", "synced:b-stream", "synced:manual"]);
  assert.equal(await dbSize(dst0), 0);
  assert.ok(sameEntries(await dst4.xrangeAll("synced:a-stream"), await src0.xrangeAll("a-stream")));
  assert.ok(sameEntries(await dst4.xrangeAll("synced:b-stream"), await src2.xrangeAll("b-stream")));
  assert.ok(sameEntries(await dst4.xrangeAll("synced:manual"), await src1.xrangeAll("manual")));
});

Deno.test("TARGET_REDIS_DB=same writes each stream to its source DB number", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src3 = await connect(source, { db: 3 });
  await using src5 = await connect(source, { db: 5 });
  await using dst0 = await connect(target, { db: 0 });
  await using dst3 = await connect(target, { db: 3 });
  await using dst5 = await connect(target, { db: 5 });
  // The same key in two DBs: with "same" they do not collide.
  await addEntries(src0, "a-stream", 3, { from: "db0" });
  await addEntries(src3, "a-stream", 4, { from: "db3" });
  await addEntries(src5, "b-stream", 2);
  const config = replicationConfig(source, target, { TARGET_REDIS_DB: "same" });
  await using replicator = startReplicator(config);
  await waitForCopy(src0, "a-stream", dst0);
  await waitForCopy(src3, "a-stream", dst3);
  await waitForCopy(src5, "b-stream", dst5);
  await addEntries(src3, "a-stream", 2, { from: "db3" });
  await waitForCopy(src3, "a-stream", dst3);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(await keys(dst0), ["a-stream"]);
  assert.deepEqual(await keys(dst3), ["a-stream"]);
  assert.deepEqual(await keys(dst5), ["b-stream"]);
  assert.ok(sameEntries(await dst0.xrangeAll("a-stream"), await src0.xrangeAll("a-stream")));
});

Deno.test("manual streams that would share one target stream are a configuration error (exit 78)", async () => {
  const ports = { port: 1 };
  const settings = { REDIS_STREAMS: "db0:x,db1:x", TARGET_REDIS_DB: 0 };
  assert.throws(
    () => loadConfig({}, {}, replicationEnvConf(ports, ports, settings)),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /db0:x/);
      assert.match(error.message, /db1:x/);
      return true;
    },
  );
  // A bare key in SOURCE_REDIS_DB collides the same way; a prefix does not help.
  assert.throws(
    () =>
      loadConfig(
        {},
        {},
        replicationEnvConf(ports, ports, {
          REDIS_STREAMS: "x,db1:x",
          SOURCE_REDIS_DB: 0,
          TARGET_REDIS_DB: 3,
          TARGET_STREAM_PREFIX: "p:",
        }),
      ),
    ConfigError,
  );
  // Not a collision: each goes to its own DB.
  loadConfig({}, {}, replicationEnvConf(ports, ports, { ...settings, TARGET_REDIS_DB: "same" }));

  const { code, stderr } = await runCli(["run", "--once"], {
    env: replicationEnv(ports, ports, settings),
    timeoutMs: 30_000,
  });
  assert.equal(code, 78, stderr);
  assert.match(stderr, /db0:x/);
  assert.match(stderr, /db1:x/);
});

Deno.test("a discovered collision skips one stream with an error naming both; the target holds only the other's entries", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using dst = await connect(target);
  // Interleaved IDs: any mix of the two would show.
  for (const ms of [1, 3, 5]) await src0.xadd("x-stream", `${ms}-1`, { from: "db0" });
  for (const ms of [2, 4, 6]) await src1.xadd("x-stream", `${ms}-1`, { from: "db1" });
  const config = replicationConfig(source, target, {
    REDIS_DB_SEARCH_RANGE: "0-1",
    TARGET_REDIS_DB: 0,
  });
  await using replicator = startReplicator(config);
  await waitForEntries(dst, "x-stream", 3);
  const first = await dst.xrangeAll("x-stream");
  const winnerDb = new TextDecoder().decode(first[0][1][1]);
  assert.ok(winnerDb === "db0" || winnerDb === "db1", winnerDb);
  const winner = winnerDb === "db0" ? src0 : src1;
  const loser = winnerDb === "db0" ? src1 : src0;
  await src0.xadd("x-stream", "7-1", { from: "db0" });
  await src1.xadd("x-stream", "8-1", { from: "db1" });
  await src0.xadd("x-stream", "9-1", { from: "db0" });
  await src1.xadd("x-stream", "10-1", { from: "db1" });
  await waitForCopy(winner, "x-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.ok(sameEntries(await dst.xrangeAll("x-stream"), await winner.xrangeAll("x-stream")));
  assert.equal((await dst.xrangeAll("x-stream")).length, 5);
  assert.ok(!sameEntries(await loser.xrangeAll("x-stream"), await winner.xrangeAll("x-stream")));
  const errors = logs.at("ERROR", /db0:x-stream/).filter((l) => l.message.includes("db1:x-stream"));
  assert.equal(errors.length, 1, logs.toString());
});

Deno.test("a stream that collides with one replicated before a restart is skipped; the target never mixes them", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src0 = await connect(source, { db: 0 });
  await using src1 = await connect(source, { db: 1 });
  await using dst = await connect(target);
  const config = replicationConfig(source, target, { REDIS_DB_SEARCH_RANGE: "0-1" });
  // First run: only db1 has x-stream, so it owns target x-stream.
  for (const ms of [1, 2]) await src1.xadd("x-stream", `${ms}-1`, { from: "db1" });
  assert.ok((await runOnce(config)).ok);
  assert.ok(sameEntries(await dst.xrangeAll("x-stream"), await src1.xrangeAll("x-stream")));
  // Meanwhile db0 gets an x-stream of its own, with newer IDs (lower DB: found first).
  for (const ms of [10, 11]) await src0.xadd("x-stream", `${ms}-1`, { from: "db0" });
  await src1.xadd("x-stream", "12-1", { from: "db1" });
  await using replicator = startReplicator(config);
  await waitForCopy(src1, "x-stream", dst);
  await src1.xadd("x-stream", "13-1", { from: "db1" });
  await waitForCopy(src1, "x-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  await replicator.stop();
  assert.ok(sameEntries(await dst.xrangeAll("x-stream"), await src1.xrangeAll("x-stream")));
  assert.deepEqual(await groupNames(src0, "x-stream"), []);
  const errors = logs.at("ERROR", /db0:x-stream/).filter((l) => l.message.includes("db1:x-stream"));
  assert.equal(errors.length, 1, logs.toString());
});

Deno.test("a target key of another type stops only that stream, which resumes once the key is removed", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await dst.send(["SET", "bad-stream", "occupied"]);
  await addEntries(src, "bad-stream", 5);
  await addEntries(src, "good-stream", 5);
  await using replicator = startReplicator(replicationConfig(source, target));
  await waitForCopy(src, "good-stream", dst);
  await waitFor(() => logs.at("ERROR", "db0:bad-stream").length > 0, {
    timeoutMs: 10_000,
    message: "an error log naming db0:bad-stream",
  });
  assert.match(logs.at("ERROR", "db0:bad-stream")[0].message, /WRONGTYPE|not a stream/);
  await addEntries(src, "good-stream", 3);
  await waitForCopy(src, "good-stream", dst);
  await waitForDiscoveryPasses(replicator, 3);
  assert.equal(await dst.send(["GET", "bad-stream"]), "occupied", "the target key is left alone");
  assert.deepEqual(logs.atLeast("WARNING", "good-stream"), [], logs.toString());
  // Removed: the next discovery pass retries the stream, and it completes.
  await dst.send(["DEL", "bad-stream"]);
  await waitForCopy(src, "bad-stream", dst, "bad-stream", { timeoutMs: 10_000 });
  await addEntries(src, "bad-stream", 2);
  await waitForCopy(src, "bad-stream", dst);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.equal(await pendingCount(src, "bad-stream", GROUP), 0);
});

Deno.test("run --once succeeds when every stream is caught up and nothing is pending", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 8);
  await addEntries(src, "b-stream", 250);
  // Entries left pending by another consumer (an earlier, crashed run).
  await src.send(["XGROUP", "CREATE", "a-stream", GROUP, "0"]);
  await src.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "crashed",
    "COUNT",
    "3",
    "STREAMS",
    "a-stream",
    ">",
  ]);
  assert.equal(await pendingCount(src, "a-stream", GROUP), 3);
  const config = replicationConfig(source, target, { STREAM_BATCH_SIZE: 100 });
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(result.failures, []);
  assert.ok(sameEntries(await dst.xrangeAll("a-stream"), await src.xrangeAll("a-stream")));
  assert.ok(sameEntries(await dst.xrangeAll("b-stream"), await src.xrangeAll("b-stream")));
  assert.equal(await pendingCount(src, "a-stream", GROUP), 0);
  assert.equal(await pendingCount(src, "b-stream", GROUP), 0);
});

Deno.test("run --once fails when a stream cannot be brought up to date (WRONGTYPE target)", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await dst.send(["HSET", "bad-stream", "f", "v"]);
  await addEntries(src, "bad-stream", 3);
  await addEntries(src, "good-stream", 4);
  const result = await runOnce(replicationConfig(source, target));
  assert.equal(result.ok, false);
  assert.deepEqual(result.failures.map((f) => f.stream), ["db0:bad-stream"]);
  assert.match(result.failures[0].reason, /WRONGTYPE|not a stream/);
  assert.ok(sameEntries(await dst.xrangeAll("good-stream"), await src.xrangeAll("good-stream")));
  assert.equal(await dst.send(["TYPE", "bad-stream"]), "hash");
});

Deno.test("CLI run --once exits 0 when caught up and 1 when a stream cannot be brought up to date", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 6);
  await addEntries(src, "b-stream", 3);
  const env = replicationEnv(source, target);
  const ok = await runCli(["run", "--once"], { env, timeoutMs: 30_000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(sameEntries(await dst.xrangeAll("a-stream"), await src.xrangeAll("a-stream")));
  assert.ok(sameEntries(await dst.xrangeAll("b-stream"), await src.xrangeAll("b-stream")));
  assert.equal(await pendingCount(src, "a-stream", GROUP), 0);
  assert.equal(await pendingCount(src, "b-stream", GROUP), 0);

  await dst.send(["SET", "c-stream", "occupied"]);
  await addEntries(src, "c-stream", 2);
  await addEntries(src, "a-stream", 2);
  const failed = await runCli(["run", "--once"], { env, timeoutMs: 30_000 });
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /db0:c-stream/);
  assert.ok(sameEntries(await dst.xrangeAll("a-stream"), await src.xrangeAll("a-stream")));
  assert.equal(await dst.send(["GET", "c-stream"]), "occupied");
});
