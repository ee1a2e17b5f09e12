/**
 * A reviewer's attacks on 7ae11b4: a fenced read's own XREVRANGE (the
 * source entry right below the first one delivered) taken as the write's
 * proof that nothing lies between the target's top and that entry (the
 * first two tests skipped an entry put below it between the read and the
 * write, after the stream's last ID went down: that proof was withdrawn);
 * a stream woken by a fenced wait is read once; looks at the others take
 * up to 2,000 streams. Each test changes something between the read and
 * the write, or loads a woken stream, and checks the copy by IDs and bytes. */
import assert from "node:assert/strict";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  addEntries,
  assertSameEntries,
  captureLogs,
  delay,
  fillStream,
  quietLogs,
  replicationConfig,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
const KEY = "rewound-stream";

/** IDs pending in the tool's group of `key` (any consumer). */
async function pendingIds(client: TestClient, key: string): Promise<string[]> {
  const reply = await client.send(["XPENDING", key, GROUP, "-", "+", "1000"]) as unknown[][];
  return reply.map((r) => String(r[0]));
}

/** Waits until every one of `ids` is pending in the group (the tool has read them). */
async function readByTool(client: TestClient, key: string, ids: string[]): Promise<void> {
  await waitFor(async () => {
    const pending = new Set(await pendingIds(client, key));
    return ids.every((id) => pending.has(id));
  }, { timeoutMs: 5000, intervalMs: 5, message: `${ids.join(", ")} read by the tool` });
}

/**
 * Every source entry is on the target with the same bytes, and the target
 * holds them in the source's order (it may hold more: entries the source
 * deleted after they were read).
 */
async function assertSourceCovered(src: TestClient, dst: TestClient, key: string): Promise<void> {
  const want = await src.xrangeAll(key);
  const got = new Map((await dst.xrangeAll(key)).map(([id, f]) => [id, f]));
  const missing = want.filter(([id]) => !got.has(id)).map(([id]) => id);
  assert.deepEqual(missing, [], `source entries missing on the target: ${missing.join(", ")}`);
  for (const [id, fields] of want) assertSameEntries([[id, got.get(id)!]], [[id, fields]], id);
}

/** Ways someone puts an entry (3-0) below an entry the tool read (5-0) and keeps the group at 5-0. */
const REWINDS: Record<string, string[][]> = {
  "XDEL, XSETID back, XADD with an ID": [
    ["XDEL", KEY, "5-0"],
    ["XSETID", KEY, "2-0"],
    ["XADD", KEY, "3-0", "n", "3"],
  ],
  "the stream deleted and made again with its group at $ (MULTI)": [
    ["MULTI"],
    ["DEL", KEY],
    ["XADD", KEY, "1-0", "n", "1"],
    ["XADD", KEY, "2-0", "n", "2"],
    ["XADD", KEY, "3-0", "n", "3"],
    ["XGROUP", "CREATE", KEY, GROUP, "$"],
    ["EXEC"],
  ],
};

for (const [how, rewind] of Object.entries(REWINDS)) {
  Deno.test(`an entry put below a read's first entry between the read and its write (${how}) is copied or said, not skipped`, async () => {
    const logs = await captureLogs("WARNING");
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using proxy = await TcpProxy.start(target);
    await using src = await connect(source);
    await using dst = await connect(target);
    const key = KEY;
    await src.send(["XADD", key, "1-0", "n", "1"]);
    await using _live = startReplicator(replicationConfig(source, { port: proxy.port }));
    await waitForCopy(src, key, dst);
    // The target hangs: the write of 2-0 stays in flight, 5-0 is read (with its proof: 2-0
    // right below it) and waits for it.
    proxy.blackhole(true);
    await src.send(["XADD", key, "2-0", "n", "2"]);
    await readByTool(src, key, ["2-0"]);
    await src.send(["XADD", key, "5-0", "n", "5"]);
    await readByTool(src, key, ["5-0"]);
    for (const command of rewind) await src.send(command);
    proxy.blackhole(false);
    // Later entries (generated IDs, far above) go on as usual.
    const later = String(await src.send(["XADD", key, "*", "n", "later"]));
    // 3-0 must reach the target (before 7ae11b4 the writer's XREVRANGE found it and the copy
    // ended exact), or a WARNING must name it. From 7ae11b4 on, the read's proof (2-0 right
    // below 5-0) lets 5-0 be written over the hole, and the group, at 5-0, never delivers 3-0.
    const copied = await waitFor(async () => {
      const ids = (await dst.xrangeAll(key)).map(([id]) => id);
      return ids.includes("3-0") && ids.includes(later);
    }, { timeoutMs: 8000, intervalMs: 50 }).then(() => true, () => false);
    const said = logs.atLeast("WARNING", /3-0/).length > 0;
    assert.ok(
      copied || said,
      `3-0 neither copied nor said: target ${
        JSON.stringify((await dst.xrangeAll(key)).map(([id]) => id))
      }, source ${JSON.stringify((await src.xrangeAll(key)).map(([id]) => id))}\n${logs}`,
    );
    if (copied) await assertSourceCovered(src, dst, key);
  });
}

for (const loss of [["FLUSHALL"], ["DEL", KEY]]) {
  Deno.test(`a target that loses its stream (${loss[0]}) between a read and its proven write is filled again below it: exact copy`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using proxy = await TcpProxy.start(target);
    await using src = await connect(source);
    await using dst = await connect(target);
    const key = KEY;
    await fillStream(src, key, 200);
    await using _live = startReplicator(replicationConfig(source, { port: proxy.port }));
    await waitForCopy(src, key, dst);
    // A write in flight (the target hangs), the next entry read with its proof (the one in
    // flight right below it), then the target loses everything under both.
    proxy.blackhole(true);
    const [inFlight] = await addEntries(src, key, 1, { phase: "in flight" });
    await readByTool(src, key, [inFlight]);
    const [proven] = await addEntries(src, key, 1, { phase: "proven" });
    await readByTool(src, key, [proven]);
    await dst.send(loss);
    proxy.blackhole(false);
    await addEntries(src, key, 3, { phase: "after" });
    await waitForCopy(src, key, dst, key, { timeoutMs: 10_000 });
  });
}

Deno.test("streams woken by a fenced wait with a backlog far above a batch (5 streams x 2,000 entries at once, STREAM_BATCH_SIZE=10) are copied whole", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 20 }, (_, i) => `woken-${i}-stream`);
  for (const key of keys) await src.send(["XADD", key, "*", "n", "0"]);
  await using _live = startReplicator(replicationConfig(source, target, { STREAM_BATCH_SIZE: 10 }));
  for (const key of keys) await waitForCopy(src, key, dst);
  await delay(500); // every stream in the wait
  const burst: string[][] = [["MULTI"]];
  for (const key of keys.slice(0, 5)) {
    for (let i = 0; i < 2000; i++) {
      burst.push(["XADD", key, "*", "n", String(i), "p", "x".repeat(i % 50)]);
    }
  }
  burst.push(["EXEC"]);
  await Promise.all(burst.map((c) => src.send(c)));
  const added = performance.now();
  for (const key of keys) await waitForCopy(src, key, dst, key, { timeoutMs: 15_000 });
  // Well within a fenced sweep (5 s) or the stall watchdog (5 s): the wait's wake-up and the
  // reads after it did it, not a safety net.
  const took = performance.now() - added;
  assert.ok(took < 4000, `${Math.round(took)} ms`);
});

Deno.test("quiet streams that get entries while the read-ahead memory is spent by a large backlog (slow target) are copied whole once it is given back", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 6 }, (_, i) => `quiet-${i}-stream`);
  for (const key of keys) await src.send(["XADD", key, "*", "n", "0"]);
  await using _live = startReplicator(replicationConfig(source, { port: proxy.port }));
  for (const key of keys) await waitForCopy(src, key, dst);
  await delay(300);
  proxy.delay(30);
  // 40 MiB of 200 KiB entries: more than the read-ahead memory (16 MiB) of all readers.
  const big = "b".repeat(200 * 1024);
  await Promise.all(
    Array.from(
      { length: 200 },
      (_, i) => src.send(["XADD", "big-stream", "*", "n", String(i), "p", big]),
    ),
  );
  await delay(100);
  // Meanwhile: one entry into some quiet streams, hundreds into others, in several rounds.
  for (let round = 0; round < 5; round++) {
    for (const [i, key] of keys.entries()) {
      const n = i % 2 === 0 ? 1 : 300;
      await Promise.all(
        Array.from({ length: n }, () => src.send(["XADD", key, "*", "r", String(round)])),
      );
    }
    await delay(100);
  }
  for (const key of [...keys, "big-stream"]) {
    await waitForCopy(src, key, dst, key, { timeoutMs: 20_000 });
  }
});

Deno.test("streams handed from one instance to another and back while entries flow (a second instance starts, then stops) are copied exactly", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 40 }, (_, i) => `shared-${i}-stream`);
  for (const key of keys) await src.send(["XADD", key, "*", "n", "0"]);
  const settings = { STREAM_LEASE_TTL: 2 };
  await using first = startReplicator(
    replicationConfig(source, target, { ...settings, INSTANCE_ID: "first" }),
  );
  for (const key of keys) await waitForCopy(src, key, dst);
  let producing = true;
  const producer = (async () => {
    for (let n = 0; producing; n++) {
      await Promise.all(keys.map((key) => src.send(["XADD", key, "*", "n", String(n)])));
      await delay(5);
    }
  })();
  await delay(300);
  const second = startReplicator(
    replicationConfig(source, target, { ...settings, INSTANCE_ID: "second" }),
  );
  await waitFor(() => second.orchestrator.status().streams.length > 0, {
    timeoutMs: 10_000,
    message: "the second instance owning streams",
  });
  await delay(1000);
  await second.stop();
  await delay(500);
  producing = false;
  await producer;
  for (const key of keys) await waitForCopy(src, key, dst, key, { timeoutMs: 15_000 });
  assert.ok(!first.finished);
});
