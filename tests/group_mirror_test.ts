/**
 * The applications' consumer groups follow to the target (STREAM_GROUPS_SYNC,
 * `lib/replication/mirror/`): created, moved, moved back and destroyed as on
 * the source, never past what the target holds, the tool's own group never.
 * Real servers; replicators in-process.
 */
import assert from "node:assert/strict";
import { loadConfig, runSettings } from "../lib/config/mod.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { collectStatus } from "../lib/ops/status.ts";
import { formatStatusTable } from "../lib/ops/status_table.ts";
import { GroupMirror } from "../lib/replication/mirror/group_mirror.ts";
import { idBefore } from "../lib/replication/mirror/group_plan.ts";
import { Scheduler } from "../lib/replication/scheduler.ts";
import { openPool, serverAddress, ServerHealth } from "../lib/redis/mod.ts";
import { makeStreamRef } from "../lib/replication/mod.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  captureLogs,
  fillStream,
  quietLogs,
  replicationConfig,
  replicationEnvConf,
  runOnce,
  startReplicator,
  waitFor,
} from "./_replication.ts";

const KEY = "orders-stream";
const OWN = "redis-sync-group";

/** Each group of `key`: name -> [last-delivered-id, entries-read, lag]. */
async function groups(
  client: TestClient,
  key: string,
): Promise<Map<string, [string, number | null, number | null]>> {
  const reply = await client.send(["XINFO", "GROUPS", key]).catch(() => []) as unknown[][];
  const out = new Map<string, [string, number | null, number | null]>();
  for (const g of reply) {
    const m = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) m.set(String(g[i]), g[i + 1]);
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    out.set(String(m.get("name")), [
      String(m.get("last-delivered-id")),
      num(m.get("entries-read")),
      num(m.get("lag")),
    ]);
  }
  return out;
}

/** The source's groups but the tool's own, as the target should show them. */
async function mirroredOf(client: TestClient, key: string) {
  const all = await groups(client, key);
  all.delete(OWN);
  return all;
}

/**
 * "" when the target's groups of `key` are the source's (but the tool's own): same names,
 * positions and lag, and the same entries read where the source knows them (where it does not,
 * the target's may be exact: the mirror sets them when it can tell).
 */
async function sameGroups(src: TestClient, dst: TestClient, key = KEY): Promise<string> {
  const want = await mirroredOf(src, key);
  const got = await groups(dst, key);
  for (const [name, [, read]] of want) {
    const there = got.get(name);
    if (read === null && there) there[1] = null;
  }
  const [a, b] = [JSON.stringify([...want].sort()), JSON.stringify([...got].sort())];
  return a === b ? "" : `source ${a}, target ${b}`;
}

/** Waits until the target's groups of `key` are the source's (but the tool's own). */
async function waitMirrored(src: TestClient, dst: TestClient, what: string, key = KEY) {
  let diff = "";
  await waitFor(async () => (diff = await sameGroups(src, dst, key)) === "", {
    timeoutMs: 10_000,
    message: what,
  }).catch((error) => {
    throw new Error(`${error.message}: ${diff}`);
  });
}

/** A consumer of `group` reads `count` new entries and acknowledges them; their IDs. */
async function consume(client: TestClient, group: string, count: number, ack = true) {
  const reply = await client.send([
    "XREADGROUP",
    "GROUP",
    group,
    "app-1",
    "COUNT",
    String(count),
    "STREAMS",
    KEY,
    ">",
  ]) as [string, [string, string[]][]][];
  const read = reply[0][1].map(([id]) => id);
  if (ack) await client.send(["XACK", KEY, group, ...read]);
  return read;
}

async function ids(client: TestClient, key: string): Promise<string[]> {
  return (await client.xrangeAll(key)).map(([id]) => id);
}

Deno.test("the source's consumer groups are created, moved, moved back and destroyed on the target, with their entries read and lag, the tool's own group never", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, KEY, 100);
  const all = await ids(src, KEY);
  await src.send(["XGROUP", "CREATE", KEY, "billing", "0"]);
  await src.send(["XGROUP", "CREATE", KEY, "shipping", "$"]);
  await consume(src, "billing", 40);
  await using replicator = startReplicator(
    replicationConfig(source, target, {
      STREAM_GROUPS_SYNC: "*",
      STREAM_GROUPS_SYNC_INTERVAL: 0.2,
    }),
  );
  const metrics = new Metrics("test");
  metrics.setStatusSource(() => replicator.orchestrator.status());
  await waitMirrored(src, dst, "groups mirrored");
  await waitFor(() => metrics.text().includes('group_sync_streams_behind{group="billing"} 0'), {
    timeoutMs: 5000,
    message: "the metrics showing billing mirrored, in step",
  });
  assert.match(
    metrics.text(),
    /^redis_stream_sync_group_sync_delay_seconds\{group="shipping"\} 0$/m,
  );
  const mirrored = await groups(dst, KEY);
  assert.deepEqual(mirrored.get("billing"), [all[39], 40, 60]);
  assert.equal(mirrored.get("shipping")?.[0], all[99]);
  assert.equal(mirrored.has(OWN), false, "the tool's own group is not mirrored");

  // Moved back, destroyed, created at "$" after more entries, and moved on by a consumer.
  await fillStream(src, KEY, 10);
  await src.send(["XGROUP", "SETID", KEY, "billing", all[9]]);
  await src.send(["XGROUP", "DESTROY", KEY, "shipping"]);
  await src.send(["XGROUP", "CREATE", KEY, "audit", "$"]);
  await consume(src, "billing", 5);
  await waitMirrored(src, dst, "groups mirrored again");
  const again = await groups(dst, KEY);
  assert.equal(again.has("shipping"), false);
  assert.ok(
    logs.atLeast(
      "INFO",
      /\d+ made, 1 destroyed \(gone from the source; first: shipping of db0:orders-stream\)/,
    )
      .length === 1,
    logs.toString(),
  );
  // After SETID without ENTRIESREAD the source does not know its entries read or lag: nor
  // does the target (the mirror does not make them up).
  assert.deepEqual(again.get("billing"), [all[14], null, null]);
  assert.equal(again.get("audit")?.[2], 0);

  // Delivered and not acknowledged on the source: the target's group stands before the oldest
  // of them, so that they are delivered again there (none is skipped after a failover).
  const unacked = await consume(src, "billing", 5, false);
  await consume(src, "billing", 3);
  await waitFor(async () => (await groups(dst, KEY)).get("billing")?.[0] === idBefore(unacked[0]), {
    timeoutMs: 5000,
    message: "billing held before its oldest pending entry",
  });
  assert.equal(unacked[0], all[15]);
  await src.send(["XACK", KEY, "billing", ...unacked]);
  await waitMirrored(src, dst, "billing at its last delivered entry once all is acknowledged");
  assert.equal((await groups(dst, KEY)).get("billing")?.[0], all[22]);
});

Deno.test("a group whose position is past what the target holds waits at the target's last entry and follows the copy", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, KEY, 100);
  const all = await src.xrangeAll(KEY);
  // The target holds the first 60 entries only (a copy in progress).
  for (const [id, fields] of all.slice(0, 60)) await dst.send(["XADD", KEY, id, ...fields]);
  await src.send(["XGROUP", "CREATE", KEY, "billing", "0"]);
  await consume(src, "billing", 90);
  const config =
    loadConfig({}, {}, replicationEnvConf(source, target, { STREAM_GROUPS_SYNC: "billing" }))
      .config;
  const settings = runSettings(config);
  const scheduler = new Scheduler();
  const sourcePool = openPool("source", settings.source, {
    health: new ServerHealth("source", serverAddress(settings.source)),
  });
  const targetPool = openPool("target", settings.target, {
    health: new ServerHealth("target", serverAddress(settings.target)),
  });
  try {
    const mirror = new GroupMirror(
      { source: sourcePool.control(0, "control"), target: targetPool },
      { settings: settings.groupSync!, scheduler },
    );
    const ref = makeStreamRef(0, KEY);
    const first = await mirror.sync([ref]);
    assert.equal(first.created, 1);
    assert.deepEqual((await groups(dst, KEY)).get("billing"), [all[59][0], 60, 0]);
    const [status] = mirror.status();
    assert.equal(status.group, "billing");
    assert.equal(status.behind, 1, "the target's group waits for the copy");
    // The copy reaches entry 80: the group moves to it; then past the source's position.
    for (const [id, fields] of all.slice(60, 80)) await dst.send(["XADD", KEY, id, ...fields]);
    await mirror.sync([ref]);
    assert.deepEqual((await groups(dst, KEY)).get("billing"), [all[79][0], 80, 0]);
    for (const [id, fields] of all.slice(80)) await dst.send(["XADD", KEY, id, ...fields]);
    await mirror.sync([ref]);
    assert.deepEqual((await groups(dst, KEY)).get("billing"), [all[89][0], 90, 10]);
    assert.equal(mirror.status()[0].behind, 0);
    // The target loses its last 30 entries (a failover of the target, say): the group moves back.
    await dst.send(["XTRIM", KEY, "MINID", "0"]);
    await dst.send(["DEL", KEY]);
    for (const [id, fields] of all.slice(0, 70)) await dst.send(["XADD", KEY, id, ...fields]);
    await mirror.sync([ref]);
    assert.deepEqual((await groups(dst, KEY)).get("billing"), [all[69][0], 70, 0]);
  } finally {
    sourcePool.close();
    targetPool.close();
    scheduler.close();
  }
});

Deno.test("run --once leaves the groups where the source has them, on a stream the copy made", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, KEY, 50);
  await src.send(["XGROUP", "CREATE", KEY, "billing", "0"]);
  await consume(src, "billing", 20);
  await src.send(["XGROUP", "CREATE", "idle-stream", "empty", "$", "MKSTREAM"]);
  const result = await runOnce(
    replicationConfig(source, target, { STREAM_GROUPS_SYNC: "*", STREAM_GROUPS_SYNC_INTERVAL: 60 }),
  );
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.equal(await sameGroups(src, dst), "");
  assert.equal(await sameGroups(src, dst, "idle-stream"), "", "an empty stream's group too");
  assert.equal((await groups(dst, KEY)).get("billing")?.[1], 20);
});

Deno.test("status shows each mirrored group on both servers: in step, waiting for the copy, held by pending entries, missing, extra", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, KEY, 100);
  const all = await src.xrangeAll(KEY);
  for (const [id, fields] of all.slice(0, 60)) await dst.send(["XADD", KEY, id, ...fields]);
  for (const g of ["billing", "shipping", "early"]) {
    await src.send(["XGROUP", "CREATE", KEY, g, "0"]);
  }
  await consume(src, "billing", 90); // past the copy
  await consume(src, "shipping", 10, false); // pending
  await consume(src, "early", 20); // in step
  await dst.send(["XGROUP", "CREATE", KEY, "old", "0"]); // gone from the source
  const config = loadConfig({}, {}, replicationEnvConf(source, target, { STREAM_GROUPS_SYNC: "*" }))
    .config;
  const settings = runSettings(config);
  const scheduler = new Scheduler();
  const sourcePool = openPool("source", settings.source, {
    health: new ServerHealth("source", serverAddress(settings.source)),
  });
  const targetPool = openPool("target", settings.target, {
    health: new ServerHealth("target", serverAddress(settings.target)),
  });
  try {
    const before = await collectStatus(config);
    assert.deepEqual(before.groups?.map((g) => [g.group, g.state]).sort(), [
      ["billing", "missing"],
      ["early", "missing"],
      ["old", "extra"],
      ["shipping", "missing"],
    ]);
    const mirror = new GroupMirror(
      { source: sourcePool.control(0, "control"), target: targetPool },
      { settings: settings.groupSync!, scheduler },
    );
    await mirror.sync([makeStreamRef(0, KEY)]);
    await src.send(["XGROUP", "CREATE", KEY, "late", "0"]);
    const report = await collectStatus(config);
    const byName = new Map(report.groups!.map((g) => [g.group, g]));
    assert.deepEqual([...byName.keys()].sort(), ["billing", "early", "late", "shipping"]);
    assert.deepEqual(
      [byName.get("billing")!.state, byName.get("billing")!.targetId],
      ["waiting-for-copy", all[59][0]],
    );
    assert.equal(byName.get("billing")!.sourceId, all[89][0]);
    assert.equal(byName.get("shipping")!.state, "held-by-pending");
    assert.equal(byName.get("shipping")!.pending, 10);
    // The target behind the source's end: its entries read are not known exactly, so Redis
    // shows no lag there (set once the copy holds the source's whole stream).
    assert.deepEqual([byName.get("early")!.state, byName.get("early")!.targetLag], [
      "in-step",
      null,
    ]);
    assert.equal(byName.get("late")!.state, "missing");
    const table = formatStatusTable(report);
    assert.match(
      table,
      /^SOURCE\s+GROUP\s+SOURCE ID\s+SRC LAG\s+PENDING\s+TARGET ID\s+TGT LAG\s+STATE$/m,
    );
    assert.match(
      table,
      /^db0:orders-stream\s+billing\s+\S+\s+10\s+0\s+\S+\s+0\s+waiting-for-copy$/m,
    );
    assert.match(table, /4 mirrored consumer groups, 1 in step, 3 not/);
  } finally {
    sourcePool.close();
    targetPool.close();
    scheduler.close();
  }
});

Deno.test("a pass that is not full reads the target only for streams whose source groups changed; a full pass undoes another client's move on the target", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = ["a-stream", "b-stream"];
  for (const key of keys) {
    for (let i = 0; i < 10; i++) await src.send(["XADD", key, `${i + 1}-0`, "n", String(i)]);
    for (let i = 0; i < 10; i++) await dst.send(["XADD", key, `${i + 1}-0`, "n", String(i)]);
    await src.send(["XGROUP", "CREATE", key, "billing", "3-0"]);
  }
  const config = loadConfig({}, {}, replicationEnvConf(source, target, { STREAM_GROUPS_SYNC: "*" }))
    .config;
  const settings = runSettings(config);
  const scheduler = new Scheduler();
  const sourcePool = openPool("source", settings.source, {
    health: new ServerHealth("source", serverAddress(settings.source)),
  });
  const targetPool = openPool("target", settings.target, {
    health: new ServerHealth("target", serverAddress(settings.target)),
  });
  const groupReads = async () => await dst.commandCalls("xinfo|groups");
  try {
    const mirror = new GroupMirror(
      { source: sourcePool.control(0, "control"), target: targetPool },
      { settings: settings.groupSync!, scheduler },
    );
    const refs = keys.map((k) => makeStreamRef(0, k));
    assert.equal((await mirror.sync(refs)).created, 2);
    await mirror.sync(refs); // in step: remembered
    let before = await groupReads();
    await mirror.sync(refs, { full: false });
    assert.equal(await groupReads(), before, "nothing read on the target: nothing changed");
    // The source moves one group: only that stream's target is read, and moved.
    await src.send(["XGROUP", "SETID", "b-stream", "billing", "7-0"]);
    before = await groupReads();
    const moved = await mirror.sync(refs, { full: false });
    assert.equal(moved.moved, 1);
    assert.equal(await groupReads(), before + 1);
    assert.equal((await groups(dst, "b-stream")).get("billing")?.[0], "7-0");
    // Another client moves the target's group: a pass that is not full leaves it, a full one
    // puts it back.
    await dst.send(["XGROUP", "SETID", "a-stream", "billing", "9-0"]);
    await mirror.sync(refs, { full: false });
    assert.equal((await groups(dst, "a-stream")).get("billing")?.[0], "9-0");
    assert.equal((await mirror.sync(refs)).moved, 1);
    assert.equal((await groups(dst, "a-stream")).get("billing")?.[0], "3-0");
  } finally {
    sourcePool.close();
    targetPool.close();
    scheduler.close();
  }
});

Deno.test("with STREAM_GROUPS_SYNC_PENDING a consumer's unacknowledged entries are pending under its name on the target, with their delivery counts; acks and consumers follow, and XAUTOCLAIM on the target takes them", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await fillStream(src, KEY, 50);
  const all = await src.xrangeAll(KEY);
  for (const [id, fields] of all) await dst.send(["XADD", KEY, id, ...fields]);
  await src.send(["XGROUP", "CREATE", KEY, "billing", "0"]);
  const read = async (consumer: string, count: number) =>
    ((await src.send([
      "XREADGROUP",
      "GROUP",
      "billing",
      consumer,
      "COUNT",
      String(count),
      "STREAMS",
      KEY,
      ">",
    ])) as [string, [string, unknown][]][])[0][1].map(([id]) => id);
  const first = await read("worker-1", 20);
  await src.send(["XACK", KEY, "billing", ...first.slice(0, 10)]); // 10 left pending
  const second = await read("worker-2", 5);
  // Delivered again to worker-1: its delivery count is 2.
  await src.send(["XCLAIM", KEY, "billing", "worker-1", "0", first[10]]);
  await src.send(["XGROUP", "CREATECONSUMER", KEY, "billing", "idle-one"]);
  const pel = async (c: TestClient) =>
    ((await c.send(["XPENDING", KEY, "billing", "-", "+", "100"])) as unknown[][])
      .map(([id, consumer, , deliveries]) => [id, consumer, deliveries]);
  const consumers = async (c: TestClient) =>
    ((await c.send(["XINFO", "CONSUMERS", KEY, "billing"])) as unknown[][]).map((c) => c[1]).sort();
  const config = loadConfig(
    {},
    {},
    replicationEnvConf(source, target, {
      STREAM_GROUPS_SYNC: "*",
      STREAM_GROUPS_SYNC_PENDING: true,
    }),
  ).config;
  const settings = runSettings(config);
  const scheduler = new Scheduler();
  const sourcePool = openPool("source", settings.source, {
    health: new ServerHealth("source", serverAddress(settings.source)),
  });
  const targetPool = openPool("target", settings.target, {
    health: new ServerHealth("target", serverAddress(settings.target)),
  });
  try {
    const mirror = new GroupMirror(
      { source: sourcePool.control(0, "control"), target: targetPool },
      { settings: settings.groupSync!, scheduler },
    );
    const ref = makeStreamRef(0, KEY);
    const made = await mirror.sync([ref]);
    assert.deepEqual(await pel(dst), await pel(src), JSON.stringify(made));
    assert.equal((await pel(dst)).length, 15);
    assert.deepEqual((await pel(dst)).find(([id]) => id === first[10]), [first[10], "worker-1", 2]);
    assert.deepEqual(await consumers(dst), ["idle-one", "worker-1", "worker-2"]);
    // Not held back: the pending entries are pending there.
    assert.equal((await groups(dst, KEY)).get("billing")?.[0], second[4]);
    // Acks and a removed consumer follow; a second pass changes nothing more.
    await src.send(["XACK", KEY, "billing", ...first.slice(10, 13)]);
    await src.send(["XGROUP", "DELCONSUMER", KEY, "billing", "idle-one"]);
    await mirror.sync([ref]);
    assert.deepEqual(await pel(dst), await pel(src));
    assert.deepEqual(await consumers(dst), ["worker-1", "worker-2"]);
    assert.equal((await mirror.sync([ref])).pending, 0);
    const report = await collectStatus(config);
    assert.deepEqual(report.groups?.map((g) => g.state), ["in-step"]);
    // After a failover, another consumer takes the unacknowledged entries with their data.
    const [, claimed] = (await dst.send([
      "XAUTOCLAIM",
      KEY,
      "billing",
      "worker-3",
      "0",
      "0-0",
      "COUNT",
      "100",
    ])) as [string, [string, unknown[]][]];
    assert.deepEqual(claimed.map(([id]) => id), [...first.slice(13), ...second]);
    assert.ok(claimed.every(([, fields]) => Array.isArray(fields) && fields.length > 0));
  } finally {
    sourcePool.close();
    targetPool.close();
    scheduler.close();
  }
});
