/**
 * Disaster recovery as docs/operating.md's procedure runs it: applications'
 * consumers (node-redis, as an application writes them) process a stream in
 * two groups on the source while the tool copies it with STREAM_GROUPS_SYNC;
 * the source is killed (SIGKILL); the tool is stopped; the consumers move to
 * the target and go on from their groups there. No entry is skipped, and
 * those processed twice were delivered on the source within the last sync
 * interval before the kill.
 */
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import { RedisServer } from "../testing/redis.ts";
import { connect } from "../testing/redis.ts";
import {
  addEntries,
  assertSameEntries,
  captureLogs,
  delay,
  fillStream,
  quietLogs,
  replicationConfig,
  runOnce,
  startReplicator,
  waitFor,
} from "./_replication.ts";

const KEY = "orders-stream";
const GROUPS = ["billing", "shipping"];
const INTERVAL_S = 0.5;

function newApp(port: number) {
  return createClient({
    socket: { host: "127.0.0.1", port, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
}
type App = ReturnType<typeof newApp>;

async function app(server: RedisServer): Promise<App> {
  const client = newApp(server.port);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Processes `group`'s entries (10 a read, acknowledged at once) until told to stop or the server is lost. */
async function consumeUntil(
  client: App,
  group: string,
  done: Map<string, number>,
  options: { stop: () => boolean; pauseMs: number },
): Promise<void> {
  while (!options.stop()) {
    let reply;
    try {
      reply = await client.xReadGroup(group, "worker-1", { key: KEY, id: ">" }, {
        COUNT: 10,
        BLOCK: 50,
      });
    } catch {
      return; // the server is gone
    }
    const messages = (reply as { messages: { id: string }[] }[] | null)?.[0]?.messages ?? [];
    if (messages.length === 0) {
      if (options.pauseMs === 0) return; // caught up
      continue;
    }
    const now = performance.now();
    for (const m of messages) {
      assert.equal(done.has(m.id), false, `${group} got ${m.id} twice on one server`);
      done.set(m.id, now);
    }
    try {
      await client.xAck(KEY, group, messages.map((m) => m.id));
    } catch {
      return;
    }
    if (options.pauseMs > 0) await delay(options.pauseMs);
  }
}

Deno.test("after the source is killed, consumers that move to the target go on from their groups: nothing skipped, and only entries delivered within the last sync interval are processed again", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  {
    await using src = await connect(source);
    await fillStream(src, KEY, 3000);
    for (const g of GROUPS) await src.send(["XGROUP", "CREATE", KEY, g, "0"]);
  }
  const all = await (async () => {
    await using src = await connect(source);
    return (await src.xrangeAll(KEY)).map(([id]) => id);
  })();
  const replicator = startReplicator(replicationConfig(source, target, {
    STREAM_GROUPS_SYNC: "*",
    STREAM_GROUPS_SYNC_INTERVAL: INTERVAL_S,
  }));
  try {
    await using dst = await connect(target);
    await waitFor(async () => (await dst.send(["XLEN", KEY])) === 3000, {
      timeoutMs: 15_000,
      message: "the stream copied",
    });
    // The applications process on the source, about 500 entries a second per group.
    const onSource = new Map(GROUPS.map((g) => [g, new Map<string, number>()]));
    let lost = false;
    const clients = await Promise.all(GROUPS.map(() => app(source)));
    const workers = GROUPS.map((g, i) =>
      consumeUntil(clients[i], g, onSource.get(g)!, { stop: () => lost, pauseMs: 20 })
    );
    await delay(2500);
    const killedAt = performance.now();
    await source.kill();
    lost = true;
    await Promise.all(workers);
    for (const c of clients) if (c.isOpen) c.destroy();
    // The procedure: the tool stops, the applications move to the target.
    await replicator.stop();
    for (const g of GROUPS) {
      const before = onSource.get(g)!;
      assert.ok(before.size > 0 && before.size < all.length, `${g} was part way: ${before.size}`);
      const onTarget = new Map<string, number>();
      const client = await app(target);
      try {
        await consumeUntil(client, g, onTarget, { stop: () => false, pauseMs: 0 });
      } finally {
        client.destroy();
      }
      const skipped = all.filter((id) => !before.has(id) && !onTarget.has(id));
      assert.deepEqual(skipped, [], `${g}: entries processed nowhere`);
      const twice = [...onTarget.keys()].filter((id) => before.has(id));
      // Processed again: only what the source delivered after the last pass that saw it (a pass
      // every INTERVAL_S; one second more for the pass itself on a loaded machine).
      const early = twice.filter((id) => before.get(id)! < killedAt - (INTERVAL_S + 1) * 1000);
      assert.deepEqual(early, [], `${g}: processed again though delivered long before the kill`);
      assert.ok(twice.length < before.size, `${g}: ${twice.length} of ${before.size} again`);
    }
  } finally {
    await replicator.stop().catch(() => {});
  }
});

Deno.test("failback: the tool run with the sides swapped copies back what was written on the target during the outage, exact, the groups follow back; entries the old source holds and never copied stay and are said at WARNING", async () => {
  const logs = await captureLogs("WARNING");
  await using oldSource = await RedisServer.start();
  await using oldTarget = await RedisServer.start();
  await using src = await connect(oldSource);
  await using dst = await connect(oldTarget);
  const [clean, diverged] = ["orders-stream", "payments-stream"];
  for (const key of [clean, diverged]) {
    await fillStream(src, key, 200);
    await src.send(["XGROUP", "CREATE", key, "billing", "0"]);
  }
  const forward = { STREAM_GROUPS_SYNC: "*" };
  assert.ok((await runOnce(replicationConfig(oldSource, oldTarget, forward))).ok);
  // Written on the old source after its last copy, then the old source was lost.
  const neverCopied = await addEntries(src, diverged, 5);
  // The applications on the old target: new entries, and the group goes on.
  for (const key of [clean, diverged]) {
    await addEntries(dst, key, 50);
    await dst.send(["XREADGROUP", "GROUP", "billing", "app", "COUNT", "230", "STREAMS", key, ">"]);
    await dst.send([
      "XACK",
      key,
      "billing",
      ...(await dst.xrangeAll(key)).slice(0, 230).map(([id]) => id),
    ]);
  }
  // The old source is back: the same settings with the sides swapped.
  const back = await runOnce(replicationConfig(oldTarget, oldSource, forward));
  assert.ok(back.ok, JSON.stringify(back.failures));
  const said = logs.atLeast("WARNING", /ends with entry/).map((l) => l.message);
  assert.equal(said.length, 1, said.join("\n"));
  assert.ok(
    said[0].includes(`ends with entry ${neverCopied[4]}, which source stream db0:${diverged}`),
    said[0],
  );
  // The clean stream: the old source is the old target's exact copy, the group follows back.
  assertSameEntries(await src.xrangeAll(clean), await dst.xrangeAll(clean), clean);
  // Position, entries read, lag and pending (consumers are not mirrored).
  const groupsOf = async (c: typeof src, key: string) => {
    const g = (await c.send(["XINFO", "GROUPS", key]) as unknown[][]).find((g) =>
      g[1] === "billing"
    )!;
    const m = new Map(g.flatMap((v, i) => (i % 2 === 0 ? [[String(v), g[i + 1]]] : [])));
    return JSON.stringify(
      ["last-delivered-id", "entries-read", "lag", "pending"].map((f) => m.get(f)),
    );
  };
  assert.equal(await groupsOf(src, clean), await groupsOf(dst, clean));
  // The diverged stream: what the new primary holds, and the 5 entries never copied, in ID
  // order (the new primary's entries were written later: above them). Nothing lost, nothing twice.
  const onNew = await dst.xrangeAll(diverged);
  const old = await src.xrangeAll(diverged);
  const never = new Set(neverCopied);
  assertSameEntries(old.filter(([id]) => !never.has(id)), onNew, diverged);
  assert.deepEqual(old.slice(200, 205).map(([id]) => id), neverCopied);
  assert.equal(old.length, 255);
});

Deno.test("with STREAM_GROUPS_SYNC_PENDING, a consumer that had 10 unacknowledged entries on the source finds them pending under its name on the target after the source is killed", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  {
    await using src = await connect(source);
    await fillStream(src, KEY, 100);
    await src.send(["XGROUP", "CREATE", KEY, "billing", "0"]);
  }
  const replicator = startReplicator(replicationConfig(source, target, {
    STREAM_GROUPS_SYNC: "*",
    STREAM_GROUPS_SYNC_INTERVAL: 0.2,
    STREAM_GROUPS_SYNC_PENDING: true,
  }));
  try {
    const worker = await app(source);
    const reply = await worker.xReadGroup("billing", "worker-7", { key: KEY, id: ">" }, {
      COUNT: 10,
    }) as { messages: { id: string }[] }[];
    const unacked = reply[0].messages.map((m) => m.id);
    await using dst = await connect(target);
    const pendingThere = async () =>
      ((await dst.send(["XPENDING", KEY, "billing", "-", "+", "100"]).catch(
        () => [],
      )) as unknown[][])
        .map(([id, consumer]) => `${id} ${consumer}`);
    await waitFor(async () => (await pendingThere()).length === 10, {
      timeoutMs: 10_000,
      message: "the 10 pending entries mirrored",
    });
    worker.destroy();
    await source.kill();
    await replicator.stop();
    // The application on the target: its consumer's history (id 0) gives the same 10 entries.
    const onTarget = await app(target);
    try {
      const history = await onTarget.xReadGroup("billing", "worker-7", { key: KEY, id: "0" }, {
        COUNT: 100,
      }) as { messages: { id: string; message: Record<string, string> }[] }[];
      assert.deepEqual(history[0].messages.map((m) => m.id), unacked);
      assert.ok(history[0].messages.every((m) => Object.keys(m.message).length > 0));
      assert.deepEqual(await pendingThere(), unacked.map((id) => `${id} worker-7`));
    } finally {
      onTarget.destroy();
    }
  } finally {
    await replicator.stop().catch(() => {});
  }
});
