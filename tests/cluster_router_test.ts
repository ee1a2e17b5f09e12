/**
 * lib/redis/cluster_router.ts against a real local cluster (three masters,
 * three replicas): commands reach the master of their slot with the seed's
 * credentials on every node, a slot migrated by hand is followed through
 * ASK and then MOVED, and a master failing over to its replica is followed.
 */
import assert from "node:assert/strict";
import { ClusterRouter } from "../lib/redis/cluster_router.ts";
import { nodeAddress } from "../lib/redis/cluster_slots.ts";
import type { Endpoint } from "../lib/redis/endpoint.ts";
import { clusterSlot } from "../lib/redis/key_slot.ts";
import { discoverEveryMaster } from "../lib/replication/run/discover.ts";
import { ClusterClient } from "../lib/redis/cluster_client.ts";
import { waitFor } from "../testing/cli.ts";
import { startCluster } from "../testing/cluster.ts";
import { connect, type TestClient } from "../testing/redis.ts";

const PASSWORD = "cluster-secret-3";
const encoder = new TextEncoder();

function seedEndpoint(port: number, password?: string): Endpoint {
  return {
    role: "target",
    host: "127.0.0.1",
    port,
    ...(password ? { password } : {}),
    commandTimeoutMs: 5000,
    healthCheckIntervalMs: 0,
  };
}

async function nodeId(client: TestClient): Promise<string> {
  return String(await client.send(["CLUSTER", "MYID"]));
}

Deno.test("commands reach the master of their key's slot on every master, with the seed's password on the nodes it discovered", async () => {
  await using cluster = await startCluster({ password: PASSWORD });
  const router = new ClusterRouter(seedEndpoint(cluster.seed.port, PASSWORD), { name: "test" });
  try {
    const keys = Array.from({ length: 60 }, (_, i) => `router:${i}:stream`);
    for (const key of keys) await router.send(key, ["XADD", key, "*", "n", key]);
    const map = await router.layout();
    const perMaster = new Map<string, number>();
    for (const key of keys) {
      const owner = map.masterOf(clusterSlot(encoder.encode(key)))!;
      await using c = await connect(owner, { password: PASSWORD });
      assert.equal(Number(await c.send(["XLEN", key])), 1, `${key} on ${nodeAddress(owner)}`);
      perMaster.set(nodeAddress(owner), (perMaster.get(nodeAddress(owner)) ?? 0) + 1);
    }
    assert.equal(perMaster.size, 3, "the keys did not spread over the three masters");
  } finally {
    router.close();
  }
});

Deno.test("a slot migrated during use: ASK is followed while it moves, MOVED and a new layout once it has", async () => {
  await using cluster = await startCluster();
  const router = new ClusterRouter(seedEndpoint(cluster.seed.port));
  try {
    const key = "migrating-stream";
    const slot = clusterSlot(encoder.encode(key));
    await router.send(key, ["XADD", key, "*", "n", "1"]);
    const map = await router.layout();
    const from = map.masterOf(slot)!;
    const to = map.masters().find((m) => nodeAddress(m) !== nodeAddress(from))!;
    await using a = await connect(from);
    await using b = await connect(to);
    const [fromId, toId] = [await nodeId(a), await nodeId(b)];
    await b.send(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId]);
    await a.send(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId]);
    await router.send(key, ["XADD", key, "*", "n", "2"]); // still on the old node
    await a.send(["MIGRATE", to.host, String(to.port), "", "0", "5000", "KEYS", key]);
    // The key is on the new node, the slot still migrating: the old node answers ASK.
    assert.equal(Number(await router.send(key, ["XLEN", key])), 2);
    await router.send(key, ["XADD", key, "*", "n", "3"]);
    assert.equal(Number(await router.send(key, ["XLEN", key])), 3);
    // The move ends: every master is told the slot's new owner; the old one answers MOVED.
    for (const node of map.masters()) {
      await using c = await connect(node);
      await c.send(["CLUSTER", "SETSLOT", String(slot), "NODE", toId]);
    }
    await router.send(key, ["XADD", key, "*", "n", "4"]);
    assert.equal(Number(await b.send(["XLEN", key])), 4);
    assert.equal(nodeAddress((await router.layout()).masterOf(slot)!), nodeAddress(to));
  } finally {
    router.close();
  }
});

Deno.test("a master failing over to its replica (CLUSTER FAILOVER): the next commands reach the new master", async () => {
  await using cluster = await startCluster();
  const router = new ClusterRouter(seedEndpoint(cluster.seed.port));
  try {
    const key = "failover-stream";
    const slot = clusterSlot(encoder.encode(key));
    await router.send(key, ["XADD", key, "*", "n", "1"]);
    const range = (await router.layout()).ranges.find((r) => r.start <= slot && slot <= r.end)!;
    await using replica = await connect(range.replicas[0]);
    await waitFor(
      async () => /master_link_status:up/.test(String(await replica.send(["INFO", "replication"]))),
      {
        timeoutMs: 20_000,
        message: "the replica in sync",
      },
    );
    await replica.send(["CLUSTER", "FAILOVER"]);
    await waitFor(async () => String((await replica.send(["ROLE"]) as unknown[])[0]) === "master", {
      timeoutMs: 30_000,
      message: "the replica promoted",
    });
    // The old master answers MOVED (it is a replica now); the router follows and re-reads the layout.
    await waitFor(async () => {
      await router.send(key, ["XADD", key, "*", "n", "2"]);
      return true;
    }, { timeoutMs: 30_000, message: "a write accepted after the failover" });
    assert.ok(Number(await replica.send(["XLEN", key])) >= 2);
    await waitFor(
      async () =>
        nodeAddress((await router.refresh()).masterOf(slot)!) === nodeAddress(range.replicas[0]),
      {
        timeoutMs: 30_000,
        message: "the layout naming the new master",
      },
    );
  } finally {
    router.close();
  }
});

Deno.test("discovery over a cluster scans every master and finds each matching stream once, and nothing else", async () => {
  await using cluster = await startCluster();
  const router = new ClusterRouter(seedEndpoint(cluster.seed.port));
  try {
    const streams = Array.from({ length: 300 }, (_, i) => `disc:${i}:stream`);
    for (const key of streams) await router.send(key, ["XADD", key, "*", "n", "1"]);
    for (let i = 0; i < 40; i++) {
      await router.send(`disc:${i}:hash`, ["HSET", `disc:${i}:hash`, "f", "v"]); // matches, not a stream
      await router.send(`other:${i}`, ["XADD", `other:${i}`, "*", "n", "1"]); // a stream, no match
    }
    const client = new ClusterClient(router);
    const found = await discoverEveryMaster(client, { dbs: [0], patterns: ["disc:*"] });
    const keys = found.streams.map((s) => new TextDecoder().decode(s.key));
    assert.equal(keys.length, new Set(keys).size, "a stream found twice");
    assert.deepEqual(keys.sort(), [...streams].sort());
    assert.ok(found.streams.every((s) => s.db === 0));
    // Streams already replicating are left out.
    const known = new Set(found.streams.slice(0, 100).map((s) => s.id));
    const again = await discoverEveryMaster(client, {
      dbs: [0],
      patterns: ["disc:*"],
      skip: (id) => known.has(id),
    });
    assert.equal(again.streams.length, 200);
  } finally {
    router.close();
  }
});
