/**
 * Faults in the middle of the read path that must not leave a hole: a read
 * of a pipeline refused while others of it delivered entries, and a source
 * that turns read-only while a backlog is read ahead (acks and the claims
 * that follow are refused, then accepted again).
 */
import assert from "node:assert/strict";
import { waitFor } from "../testing/cli.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  fillStream,
  pendingCount,
  replicationConfig,
  runOnce,
  startReplicator,
} from "./_replication.ts";

const GROUP = "redis-sync-group";

/** The IDs of the replicator's reader connections blocked in a read. */
async function blockedReaders(src: TestClient): Promise<string[]> {
  return (await src.clientList()).filter((c) =>
    (c.name ?? "").startsWith("redis-stream-sync-reader") && (c.flags ?? "").includes("b")
  ).map((c) => c.id);
}

/** Kills the blocked reader connections and waits until a new one blocks: a failed read. */
async function failBlockedRead(src: TestClient): Promise<void> {
  const before = await blockedReaders(src);
  assert.ok(before.length > 0, "a blocked reader");
  for (const id of before) await src.send(["CLIENT", "KILL", "ID", id]);
  await waitFor(async () => (await blockedReaders(src)).some((id) => !before.includes(id)), {
    message: "the reader reconnected and blocked again",
  });
}

/**
 * A read of a failed connection that the server ran after all: `id` is added and delivered
 * to the replicator's consumer (without leases: the bare consumer name), in one
 * transaction, and its reply reaches nobody.
 */
async function deliverToNobody(src: TestClient, key: string, id: string): Promise<void> {
  await src.send(["MULTI"]);
  await src.send(["XADD", key, id, "i", id.split("-")[0]]);
  await src.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "redis-sync-consumer",
    "COUNT",
    "1",
    "STREAMS",
    key,
    ">",
  ]);
  await src.send(["EXEC"]);
}

Deno.test("one stream of a 600-stream reader deleted: the reads of the others in the same round trip are copied, no hole, no stream stopped", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 600 }, (_, i) => `many-${String(i).padStart(3, "0")}-stream`);
  await Promise.all(keys.map((key) => src.xadd(key, "*", { n: "0" })));
  // One reader for all 600 streams: its non-blocking reads go as two XREADGROUPs of 500 and
  // 100 keys in one round trip.
  await using replicator = startReplicator(
    replicationConfig(source, target, {
      SOURCE_REDIS_POOL_SIZE: 1,
      STREAM_POLL_INTERVAL: 1,
      STREAM_BATCH_SIZE: 2,
    }),
  );
  await waitFor(async () => Number(await dst.send(["XLEN", keys[599]])) === 1, {
    timeoutMs: 30_000,
    message: "the first entries copied",
  });
  for (let round = 1; round <= 5; round++) {
    // Every stream gets more entries than one read takes (STREAM_BATCH_SIZE 2), so the reads
    // go on without blocking; in round 3 the first stream (in the read of 500) is deleted
    // while they do: that read is refused with NOGROUP, the one of the other 100 is not.
    const each = round === 3 ? 60 : 6; // round 3: a backlog the reader is busy with
    // One transaction, its XADDs pipelined (each reply is QUEUED; EXEC applies them all at once).
    await src.send(["MULTI"]);
    const queued = [];
    for (const key of keys) {
      for (let i = 0; i < each; i++) {
        queued.push(src.send(["XADD", key, "*", "n", `${round}.${i}`]));
      }
    }
    await Promise.all(queued);
    await src.send(["EXEC"]);
    if (round === 3) await src.send(["DEL", keys[0]]);
  }
  await waitFor(async () => {
    for (const key of keys.slice(1)) {
      if (Number(await dst.send(["XLEN", key])) < 85) return false;
    }
    return true;
  }, { timeoutMs: 60_000, message: "every stream but the deleted one copied" });
  const result = await replicator.stop();
  const stopped = result.streams.filter((s) => s.state === "error");
  assert.deepEqual(stopped.map((s) => `${s.key}: ${s.lastError}`), []);
  for (const key of keys.slice(1)) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
    assert.equal(await pendingCount(src, key, GROUP), 0, key);
  }
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
});

Deno.test("the source turned read-only while a backlog is read ahead: refused acks and claims are retried, exact copy", async () => {
  await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "ro-source-stream";
  await fillStream(src, key, 20_000);
  // A slow target: writes are in flight while the source is read ahead.
  proxy.delay(40);
  await using replicator = startReplicator(
    replicationConfig(source, { port: proxy.port }, { STREAM_BATCH_SIZE: 50 }),
  );
  await waitFor(async () => Number(await dst.send(["XLEN", key])) > 2000, {
    timeoutMs: 60_000,
    message: "a part copied",
  });
  for (let round = 0; round < 3; round++) {
    // A master nobody listens on: the source refuses XACK, XAUTOCLAIM and XREADGROUP
    // (READONLY) for a while, then takes them again.
    await src.send(["REPLICAOF", "127.0.0.1", String(freePort())]);
    await new Promise((resolve) => setTimeout(resolve, 700)); // refusals go on for a moment
    await src.send(["REPLICAOF", "NO", "ONE"]);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  proxy.delay(0);
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 20_000, {
    timeoutMs: 60_000,
    message: "all 20,000 entries copied",
  });
  const result = await replicator.stop();
  assert.deepEqual(result.streams.filter((s) => s.state === "error").map((s) => s.lastError), []);
  const once = await runOnce(replicationConfig(source, { port: proxy.port }), {
    timeoutMs: 60_000,
  });
  assert.ok(once.ok, JSON.stringify(once.failures));
  assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  assert.equal(await pendingCount(src, key, GROUP), 0);
});

Deno.test("a stale read that ran between two reads whose entries share one write is caught: its entries are copied in order", async () => {
  await captureLogs("ERROR");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "stale-inside-stream";
  for (let i = 1; i <= 5; i++) await src.xadd(key, `${i}-0`, { i: String(i) });
  // Without leases: the late copy below is an unfenced XREADGROUP as the bare consumer name.
  await using replicator = startReplicator(
    replicationConfig(source, { port: proxy.port }, {
      STREAM_POLL_INTERVAL: 5,
      STREAM_LEASES: false,
    }),
  );
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 5, {
    message: "entries 1..5",
  });
  // A failed read: the reader's connection is killed, it reconnects. A copy of a read it sent
  // could now still reach the server late.
  await failBlockedRead(src);
  proxy.delay(400); // writes take a while: what is read meanwhile waits for the next one
  await src.xadd(key, "6-0", { i: "6" }); // written, slowly
  await waitFor(async () => await pendingCount(src, key, GROUP) === 1, {
    message: "6-0 delivered",
  });
  await src.xadd(key, "7-0", { i: "7" }); // read, waits for the next write
  await waitFor(async () => await pendingCount(src, key, GROUP) === 2, {
    message: "7-0 delivered",
  });
  // The late copy runs: it delivers 8-0 to the replicator's consumer, nobody receives it.
  await deliverToNobody(src, key, "8-0");
  await src.xadd(key, "9-0", { i: "9" }); // read: the next write would carry 7-0 and 9-0
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 9, {
    timeoutMs: 30_000,
    message: "entries 6..9 on the target",
  });
  const result = await replicator.stop();
  assert.deepEqual(result.streams.filter((s) => s.state === "error").map((s) => s.lastError), []);
  assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  assert.equal(await pendingCount(src, key, GROUP), 0);
});

Deno.test("a reader reconnecting while one entry is being written and the next is read ahead, then a read whose reply was lost: no hole, the entry nobody received is copied in order", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "reconnect-hole-stream";
  for (let i = 1; i <= 5; i++) await src.xadd(key, `${i}-0`, { i: String(i) });
  // Without leases: the late read below is an unfenced XREADGROUP as the bare consumer name.
  await using replicator = startReplicator(
    replicationConfig(source, { port: proxy.port }, {
      STREAM_POLL_INTERVAL: 5,
      STREAM_LEASES: false,
    }),
  );
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 5, {
    message: "entries 1..5",
  });
  // A slow target: 6-0's write is in flight while 7-0 is read ahead into the buffer.
  proxy.delay(1500);
  await src.xadd(key, "6-0", { i: "6" });
  await waitFor(async () => await pendingCount(src, key, GROUP) === 1, { message: "6-0 read" });
  await src.xadd(key, "7-0", { i: "7" });
  await waitFor(async () => await pendingCount(src, key, GROUP) === 2, { message: "7-0 read" });
  // The reader's connection fails: it reconnects and re-reads its own pending entries (6-0
  // and 7-0, both already in hand) before new ones.
  await failBlockedRead(src);
  // A read of the failed connection that the server ran after all: 8-0 is delivered to the
  // replicator's consumer, and its reply reaches nobody.
  await deliverToNobody(src, key, "8-0");
  await src.xadd(key, "9-0", { i: "9" });
  proxy.delay(0);
  await waitFor(async () => Number(await dst.send(["XLEN", key])) >= 9, {
    timeoutMs: 30_000,
    message: "entries 6..9 on the target",
  });
  await waitFor(async () => await pendingCount(src, key, GROUP) === 0, {
    message: "nothing pending",
  });
  const result = await replicator.stop();
  assert.deepEqual(result.streams.filter((s) => s.state === "error").map((s) => s.lastError), []);
  assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  assert.deepEqual(logs.atLeast("ERROR").map((l) => l.message), []);
});

Deno.test("leases on, a fenced read cut in flight after a pending entry was deleted: its re-read of the history goes on, exact copy", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using srcProxy = await TcpProxy.start(source);
  await using dstProxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "deleted-pending-stream";
  await fillStream(src, key, 20_000);
  dstProxy.delay(300);
  await using replicator = startReplicator(
    replicationConfig({ port: srcProxy.port }, { port: dstProxy.port }, {
      STREAM_POLL_INTERVAL: 5,
    }),
  );
  let deleted: string | undefined;
  await waitFor(async () => {
    const p = await src.send(["XPENDING", key, GROUP, "-", "+", "10"]) as unknown[][];
    if (p.length < 5) return false;
    deleted = String(p[3][0]);
    return true;
  }, { message: "pending entries" });
  await src.send(["XDEL", key, deleted!]);
  srcProxy.cut();
  dstProxy.delay(0);
  // The history re-read of the new connection meets the deleted entry: Lua makes its nil
  // field list a nil bulk string, which the nested reply could not carry.
  const want = 20_000 - 1;
  let last = 0;
  try {
    await waitFor(async () => (last = Number(await dst.send(["XLEN", key]))) >= want, {
      timeoutMs: 30_000,
      message: "all but the deleted entry on the target",
    });
  } finally {
    if (last < want) console.log(logs.atLeast("WARNING").map((l) => l.message).join("\n"));
    await replicator.stop();
  }
  const ids = async (c: typeof src) =>
    (await c.send(["XRANGE", key, "-", "+"]) as unknown[][]).map((e) => String(e[0]));
  const onSource = await ids(src);
  const onTarget = (await ids(dst)).filter((id) => id !== deleted);
  assert.deepEqual(onTarget, onSource, "every entry of the source, in order, once");
  const refused = logs.atLeast("WARNING").filter((l) => /A stream entry/.test(l.message));
  assert.deepEqual(refused.map((l) => l.message), [], "no reply refused by the parser");
});
