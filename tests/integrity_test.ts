/**
 * The target is an exact copy of a prefix of the source, or the tool says
 * loudly why not: nothing is acknowledged as copied that is not on the
 * target byte for byte.
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  pendingCount,
  replicationConfig,
  runOnce,
  sameEntries,
  startReplicator,
  waitFor,
  waitForCopy,
  waitForDiscoveryPasses,
} from "./_replication.ts";

const GROUP = "redis-sync-group";

Deno.test("entries whose IDs the target already holds with other fields or values are not taken as copied: the stream stops with an error naming the entry, nothing is acked", async () => {
  const logs = await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "same-ids-stream";
  // Another writer (or a source stream deleted and recreated with explicit IDs) put entries
  // with the source's IDs and other content into the target stream.
  // Its last entry is the source's (a target that ends with an entry the source holds
  // otherwise is refused at start: tests/failover_test.ts).
  for (let i = 1; i <= 10; i++) {
    await src.send(["XADD", key, `1-${i}`, "n", String(i), "from", "source"]);
    const from = i < 10 ? "someone else" : "source";
    await dst.send(["XADD", key, `1-${i}`, "n", String(i), "from", from]);
  }
  const before = await dst.xrangeAll(key);
  const result = await runOnce(replicationConfig(source, target));
  assert.equal(result.ok, false, "run --once reported success");
  const [status] = result.streams;
  assert.equal(status.state, "error");
  assert.match(
    status.lastError ?? "",
    /Entry 1-1 of db0:same-ids-stream is on target stream db0:same-ids-stream with other fields or values/,
  );
  assert.equal(await pendingCount(src, key, GROUP), 10, "nothing acked");
  assert.ok(sameEntries(await dst.xrangeAll(key), before), "the target was changed");
  assert.ok(logs.atLeast("ERROR", /other fields or values/).length > 0, logs.toString());
});

Deno.test("entries already on the target with the same bytes (a re-delivery) are acked without being written again", async () => {
  await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "redelivered-stream";
  for (let i = 1; i <= 10; i++) {
    const fields = ["n", String(i), "bytes", new Uint8Array([0, 255, i])];
    await src.send(["XADD", key, `1-${i}`, ...fields]);
    if (i <= 6) await dst.send(["XADD", key, `1-${i}`, ...fields]);
  }
  const result = await runOnce(replicationConfig(source, target));
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.ok(sameEntries(await dst.xrangeAll(key), await src.xrangeAll(key)));
  assert.equal(await pendingCount(src, key, GROUP), 0);
  assert.equal(result.streams[0].skipped, 6);
  assert.equal(result.streams[0].copied, 4);
});

Deno.test("never-copied entries below the first entry of a target that another writer filled and trimmed while running are not taken as trimmed when the tool never trims the target: the stream stops, nothing acked", async () => {
  const logs = await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "foreign-trimmed-stream";
  for (let i = 1; i <= 10; i++) await src.send(["XADD", key, `1-${i}`, "i", String(i)]);
  await using live = startReplicator(replicationConfig(source, target));
  await waitForCopy(src, key, dst);
  // While it runs, a foreign writer puts 2,000 higher entries into the target stream and
  // trims it to 100: the target "lost" 1,900 entries, and will never hold the next ones.
  for (let i = 1; i <= 2000; i++) await dst.send(["XADD", key, `2-${i}`, "foreign", String(i)]);
  await dst.send(["XTRIM", key, "MAXLEN", "100"]);
  const before = await dst.xrangeAll(key);
  for (let i = 11; i <= 500; i++) await src.send(["XADD", key, `1-${i}`, "i", String(i)]);
  await waitFor(
    () =>
      logs.atLeast("ERROR", /Entry 1-11 of db0:foreign-trimmed-stream is not on target stream/)
        .length > 0,
    {
      message: "an error naming the first entry that cannot be copied",
    },
  );
  const result = await live.stop();
  const status = result.streams.find((s) => s.key === key);
  assert.equal(status?.skipped ?? 0, 0, "entries counted as already copied");
  assert.ok(sameEntries(await dst.xrangeAll(key), before), "the target was changed");
  // Nothing acked after the first ten: every entry the group delivered since is pending.
  const groups = await src.send(["XINFO", "GROUPS", key]) as unknown[][];
  const field = (name: string) => Number(groups[0][groups[0].indexOf(name) + 1]);
  assert.ok(field("entries-read") > 10, "nothing more was read");
  assert.equal(field("pending"), field("entries-read") - 10);
});

Deno.test("a source stream deleted and recreated with IDs below what its target holds (TARGET_STREAM_MAXLEN on) is reported, not acked as trimmed", async () => {
  const logs = await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "reset-stream";
  for (let i = 1000; i < 6000; i++) await src.send(["XADD", key, `${i}-0`, "i", String(i)]);
  const config = replicationConfig(source, target, { TARGET_STREAM_MAXLEN: 100 });
  const first = await runOnce(config);
  assert.ok(first.ok, JSON.stringify(first.failures));
  // The producer starts the stream again, with explicit IDs far below the copy's.
  await src.send(["DEL", key]);
  for (let i = 1; i <= 500; i++) await src.send(["XADD", key, `${i}-0`, "i", `new ${i}`]);
  const before = await dst.xrangeAll(key);
  const second = await runOnce(config);
  assert.equal(second.ok, false, "run --once reported success");
  assert.match(
    second.failures[0]?.reason ?? "",
    /Source stream db0:reset-stream cannot be copied in order: its last ID 500-0 is below the last ID 5999-0 that target stream db0:reset-stream already holds \(the source stream was deleted and recreated/,
  );
  assert.equal(second.streams[0].skipped, 0, "entries counted as already copied");
  assert.ok(sameEntries(await dst.xrangeAll(key), before), "the target was changed");
  // Nothing was taken as copied: every new entry is still to be delivered in the group.
  const groups = await src.send(["XINFO", "GROUPS", key]) as unknown[][];
  const lag = groups[0][groups[0].indexOf("lag") + 1];
  assert.equal(Number(lag), 500);
  assert.ok(logs.atLeast("ERROR", /cannot be copied in order/).length > 0, logs.toString());
  // The refusal holds on later starts, when the group made by the first refusal is there:
  // another run --once, and a live run over several discovery passes.
  const third = await runOnce(config);
  assert.equal(third.ok, false, "a later run --once took the entries as copied");
  assert.equal(third.streams[0].skipped, 0);
  await using live = startReplicator(config);
  await waitForDiscoveryPasses(live, 3);
  const status = live.orchestrator.status().streams.find((s) => s.key === key);
  assert.equal(status?.skipped ?? 0, 0, "the live run took the entries as copied");
  await live.stop();
  assert.ok(sameEntries(await dst.xrangeAll(key), before), "the target was changed");
  assert.equal(await pendingCount(src, key, GROUP), 0, "entries were delivered");
});

Deno.test("with STREAM_START_ID=$, a stream deleted and recreated while the tool was stopped is copied from where its target stops, not from the group's new start: its first entries are not skipped", async () => {
  await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "recreated-dollar-stream";
  const config = replicationConfig(source, target, { STREAM_START_ID: "$" });
  // The group starts at "$": only entries added after the first start are copied.
  await src.send(["XADD", key, "*", "before", "the group"]);
  await using live = startReplicator(config);
  await waitForDiscoveryPasses(live, 1);
  for (let i = 0; i < 20; i++) await src.send(["XADD", key, "*", "n", String(i)]);
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 20, {
    message: "the 20 entries added after the group's start on the target",
  });
  await live.stop();
  // While it is stopped: the stream is deleted (its group with it) and written anew.
  await src.send(["DEL", key]);
  for (let i = 0; i < 30; i++) await src.send(["XADD", key, "*", "n", String(i), "life", "second"]);
  const result = await runOnce(config);
  assert.ok(result.ok, JSON.stringify(result.failures));
  const copied = await dst.xrangeAll(key);
  assertSameEntries(copied.slice(20), await src.xrangeAll(key), "the recreated stream's entries");
  assert.equal(copied.length, 50);
});

Deno.test("entries something else wrote into a target stream are said at start: an ID the source does not hold, or one it holds with other bytes; copies of trimmed source entries are not", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.send(["XADD", "trimmed-head-stream", "4-1", "n", "0"]); // trimmed away below
  for (let i = 1; i <= 5; i++) {
    for (const key of ["foreign-low-stream", "foreign-bytes-stream", "trimmed-head-stream"]) {
      await src.send(["XADD", key, `5-${i}`, "n", String(i)]);
    }
  }
  // A lower ID the source never held; the source's own first ID with other bytes; a copy of
  // an entry the source trimmed since (it held 4-1 once): only the first two are foreign.
  await dst.send(["XADD", "foreign-low-stream", "2-1", "written", "elsewhere"]);
  await dst.send(["XADD", "foreign-bytes-stream", "5-1", "n", "changed"]);
  await dst.send(["XADD", "trimmed-head-stream", "4-1", "n", "0"]);
  await src.send(["XTRIM", "trimmed-head-stream", "MINID", "5-0"]);
  await runOnce(replicationConfig(source, target));
  const said = logs.atLeast("WARNING", /begins with entry/).map((l) => l.message);
  // Its last entry too: what is copied next goes above it.
  const ends = logs.atLeast("WARNING", /ends with entry/).map((l) => l.message);
  assert.deepEqual(ends.length, 1, ends.join("\n"));
  assert.match(ends[0], /db0:foreign-bytes-stream ends with entry 5-1 with other fields/);
  assert.equal(said.length, 2, said.join("\n"));
  assert.ok(said.some((m) => /db0:foreign-low-stream begins with entry 2-1, which source/.test(m)));
  assert.ok(
    said.some((m) => /db0:foreign-bytes-stream begins with entry 5-1 with other fields/.test(m)),
  );
});

Deno.test("entries removed from a target stream by someone else (XTRIM, XDEL) are said at WARNING with how many and up to which ID; not when the tool trims the target itself", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  for (let i = 1; i <= 100; i++) {
    await src.send(["XADD", "trimmed-there-stream", `${i}-0`, "i", String(i)]);
  }
  for (let i = 1; i <= 100; i++) {
    await src.send(["XADD", "capped-there-stream", `${i}-0`, "i", String(i)]);
  }
  assert.ok((await runOnce(replicationConfig(source, target))).ok);
  await dst.send(["XTRIM", "trimmed-there-stream", "MAXLEN", "60"]);
  await dst.send(["XDEL", "trimmed-there-stream", "70-0"]);
  await dst.send(["XTRIM", "capped-there-stream", "MAXLEN", "60"]);
  const said =
    /(\d+) entries were removed from target stream (db0:\S+) by something else \(XTRIM, XDEL: \d+ so far; it begins at (\S+), XDEL removed up to (\S+)\)/;
  assert.ok((await runOnce(replicationConfig(source, target))).ok);
  const lines = logs.atLeast("WARNING", said).map((l) => said.exec(l.message)!.slice(1));
  // 100 -> 60 by XTRIM (41-0 first), then one XDEL in the trimmed one; XTRIM is not in
  // max-deleted-entry-id.
  assert.deepEqual(lines.sort(), [
    ["40", "db0:capped-there-stream", "41-0", "0-0"],
    ["41", "db0:trimmed-there-stream", "41-0", "70-0"],
  ]);
  // With TARGET_STREAM_MAXLEN the tool trims the target itself: nothing to say.
  const before = logs.atLeast("WARNING", said).length;
  assert.ok((await runOnce(replicationConfig(source, target, { TARGET_STREAM_MAXLEN: 60 }))).ok);
  assert.equal(logs.atLeast("WARNING", said).length, before, logs.toString());
});
