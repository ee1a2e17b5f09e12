/**
 * `run --once` ends: whatever the number of quiet streams, run after run
 * (a cron job that drains with --once must never hang in a quiet period).
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  quietLogs,
  replicationConfig,
  runOnce,
  sameEntries,
  startReplicator,
  waitFor,
  withTimeout,
} from "./_replication.ts";

Deno.test("run --once with more quiet streams than the readers' share of the read-ahead memory covers at once ends, run after run, each stream caught up", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  // 40 streams over the default 10 readers: the first reads of the others (pipelined,
  // 16 deep on a fresh stream) hold the read-ahead memory while the last reader asks for
  // its share; nothing is written (the streams are quiet), so only the memory given back
  // can wake it.
  const keys = Array.from({ length: 40 }, (_, i) => `quiet-${i}-stream`);
  for (const key of keys) await src.xadd(key, "*", { n: "1" });
  const config = replicationConfig(source, target);
  for (let run = 1; run <= 3; run++) {
    const result = await runOnce(config, { timeoutMs: 15_000 }).catch((error) => {
      throw new Error(`run ${run}: ${error.message}`, { cause: error });
    });
    assert.ok(result.ok, `run ${run}: ${JSON.stringify(result.failures)}`);
    assert.deepEqual(
      result.streams.filter((s) => s.state !== "caught-up").map((s) => `${s.key}: ${s.state}`),
      [],
      `run ${run}`,
    );
    assert.equal(result.streams.length, keys.length);
    if (run === 2) await src.xadd(keys[7], "*", { n: "2" }); // something new for run 3
  }
  for (const key of keys) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  }
});

Deno.test("run --once whose bucket leases are lost mid-run (their keys deleted on the source while the target pauses writes) takes them again and copies every stream: it never ends 'done' with streams left", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 20 }, (_, i) => `lease-lost-${i}-stream`);
  for (const key of keys) {
    for (let i = 1; i <= 50; i++) await src.xadd(key, `${i}-1`, { n: String(i) });
  }
  // Reads answer, writes wait: the streams start, their first writes hang.
  await dst.send(["CLIENT", "PAUSE", "8000", "WRITE"]);
  await using run = startReplicator(
    replicationConfig(source, target, { STREAM_LEASE_TTL: "1" }),
    { once: true },
  );
  await waitFor(() => logs.atLeast("INFO", /Replicating 20 new streams/).length > 0, {
    timeoutMs: 10_000,
    message: "the streams to start",
  });
  // Someone else's hands: the lease keys are deleted (as when a pause outlived the TTL).
  const leaseKeys = await src.send(["KEYS", "redis-stream-sync:bucket:*"]) as string[];
  assert.ok(leaseKeys.length > 0, "no lease key found");
  await src.send(["DEL", ...leaseKeys]);
  // Found lost by a renewal or by a fenced read, whichever comes first; then taken again.
  await waitFor(
    async () => (await src.send(["KEYS", "redis-stream-sync:bucket:*"]) as string[]).length > 0,
    { timeoutMs: 10_000, message: "the leases to be taken again" },
  );
  await dst.send(["CLIENT", "UNPAUSE"]);
  const result = await withTimeout(run.done, 30_000, "run --once to end");
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(
    keys.filter((k) => !result.streams.some((s) => s.key === k && s.state === "caught-up")),
    [],
    `streams not caught up: ${JSON.stringify(result.streams.map((s) => [s.key, s.state]))}`,
  );
  for (const key of keys) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  }
});

Deno.test("run --once never ends ok while entries another consumer read through the group it just made are not copied", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using intruder = await connect(source);
  const keys = Array.from({ length: 100 }, (_, i) => `made-${i}-stream`);
  for (const key of keys) {
    for (let i = 1; i <= 5; i++) await src.xadd(key, `${i}-1`, { n: String(i) });
  }
  // Another client reads through the group as soon as it exists (NOGROUP until then): its
  // entries are pending to another consumer, and only a claim of them copies them.
  const grabbed = new Map<string, number>();
  let stop = false;
  const reading = (async () => {
    while (!stop && grabbed.size < keys.length) {
      await Promise.all(
        keys.filter((k) => !grabbed.has(k)).map(async (key) => {
          try {
            const reply = await intruder.send([
              "XREADGROUP",
              "GROUP",
              "redis-sync-group",
              "intruder",
              "COUNT",
              "1000",
              "STREAMS",
              key,
              ">",
            ]) as unknown[] | null;
            grabbed.set(key, reply ? (reply[0] as [string, unknown[]])[1].length : 0);
          } catch { /* NOGROUP: not made yet */ }
        }),
      );
    }
  })();
  const result = await runOnce(replicationConfig(source, target), { timeoutMs: 30_000 });
  stop = true;
  await reading;
  assert.ok([...grabbed.values()].some((n) => n > 0), "the other consumer read nothing first");
  const missing: string[] = [];
  for (const key of keys) {
    if (!sameEntries(await dst.xrangeAll(key), await src.xrangeAll(key))) missing.push(key);
  }
  assert.ok(
    !result.ok || missing.length === 0,
    `run --once said ok, but ${missing.length} streams are not copied whole: ${
      missing.slice(0, 3)
    }`,
  );
});

Deno.test("run --once with leases is not ok while its group holds entries pending to a consumer of no live instance: read through it by another client after this run read its stream to the end", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("taken-stream", "1-1", { n: "1" });
  // The first write waits: the run has read the stream to its end meanwhile.
  await dst.send(["CLIENT", "PAUSE", "3000", "WRITE"]);
  await using run = startReplicator(replicationConfig(source, target), { once: true });
  await waitFor(() => logs.atLeast("INFO", /Replicating 1 new stream/).length > 0, {
    timeoutMs: 10_000,
    message: "the stream to start",
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Another client adds an entry and reads it through the tool's group: pending to it.
  await src.xadd("taken-stream", "2-1", { n: "2" });
  const read = await src.send([
    "XREADGROUP",
    "GROUP",
    "redis-sync-group",
    "someone-else",
    "STREAMS",
    "taken-stream",
    ">",
  ]) as unknown[] | null;
  assert.ok(read, "the other client read nothing");
  await dst.send(["CLIENT", "UNPAUSE"]);
  const result = await withTimeout(run.done, 30_000, "run --once to end");
  assert.deepEqual((await dst.xrangeAll("taken-stream")).map(([id]) => id), ["1-1"]);
  assert.equal(result.ok, false, "run --once said ok with 2-1 pending to someone-else, not copied");
  assert.match(
    result.failures.map((f) => `${f.stream}: ${f.reason}`).join("\n"),
    /db0:taken-stream: 1 entry still pending in group "redis-sync-group" for this instance or consumers of no live instance/,
  );
});
