/**
 * The layout of a real local Redis Cluster (three masters, three replicas)
 * as lib/redis/cluster_slots.ts reads it, checked against the cluster's own
 * answers: CLUSTER KEYSLOT for the slots, and MOVED for the routing.
 */
import assert from "node:assert/strict";
import { RedisReplyError } from "../lib/errors.ts";
import {
  nodeAddress,
  parseClusterSlots,
  redirection,
  SlotMap,
} from "../lib/redis/cluster_slots.ts";
import { RedisConnection } from "../lib/redis/connection.ts";
import { clusterSlot } from "../lib/redis/key_slot.ts";
import { startCluster } from "../testing/cluster.ts";

const encoder = new TextEncoder();

function connectionTo(node: { host: string; port: number }): RedisConnection {
  return new RedisConnection({ role: "source", host: node.host, port: node.port });
}

Deno.test("CLUSTER SLOTS of a three-master cluster: every slot has a master, each master a replica, all of them nodes of the cluster", async () => {
  await using cluster = await startCluster();
  const conn = connectionTo(cluster.seed);
  try {
    const map = new SlotMap(
      parseClusterSlots(await conn.send(undefined, ["CLUSTER", "SLOTS"]), "127.0.0.1"),
    );
    assert.equal(map.unassigned(), 0);
    const masters = map.masters();
    assert.equal(masters.length, 3);
    const ports = new Set(cluster.nodes.map((n) => n.port));
    for (const range of map.ranges) {
      assert.ok(ports.has(range.master.port), nodeAddress(range.master));
      assert.equal(range.replicas.length, 1);
      assert.ok(ports.has(range.replicas[0].port));
      assert.notEqual(range.replicas[0].port, range.master.port);
      assert.match(range.master.id, /^[0-9a-f]{40}$/);
    }
    // The ranges do not overlap and cover 0-16383.
    let next = 0;
    for (const range of map.ranges) {
      assert.equal(range.start, next);
      next = range.end + 1;
    }
    assert.equal(next, 16_384);
  } finally {
    conn.close();
  }
});

Deno.test("keys go to the master the map names: it serves them, and any other master answers MOVED naming it", async () => {
  await using cluster = await startCluster();
  const seed = connectionTo(cluster.seed);
  const open = new Map<string, RedisConnection>();
  try {
    const map = new SlotMap(
      parseClusterSlots(await seed.send(undefined, ["CLUSTER", "SLOTS"]), "127.0.0.1"),
    );
    const to = (node: { host: string; port: number }) => {
      const key = nodeAddress(node);
      if (!open.has(key)) open.set(key, connectionTo(node));
      return open.get(key)!;
    };
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) keys.push(encoder.encode(`device:${i}:stream`));
    keys.push(
      encoder.encode("{orders}:a"),
      encoder.encode("x{}y"),
      new Uint8Array([0xff, 0x00, 0x7b, 0x41, 0x7d]),
    );
    for (const key of keys) {
      const slot = clusterSlot(key);
      assert.equal(Number(await seed.send(undefined, ["CLUSTER", "KEYSLOT", key])), slot);
      const owner = map.masterOf(slot)!;
      await to(owner).send(undefined, ["EXISTS", key]); // served: no MOVED
      for (const other of map.masters().filter((m) => nodeAddress(m) !== nodeAddress(owner))) {
        const refused = await to(other).send(undefined, ["EXISTS", key]).then(
          () => assert.fail("no MOVED from a master that does not serve the slot"),
          (error) => error,
        );
        const moved = redirection(refused, other.host);
        assert.ok(moved, String(refused));
        assert.deepEqual(moved, { kind: "MOVED", slot, host: owner.host, port: owner.port });
      }
    }
  } finally {
    seed.close();
    for (const conn of open.values()) conn.close();
  }
});

Deno.test("parseClusterSlots and redirection: malformed replies are errors, other replies no redirection", () => {
  assert.throws(() => parseClusterSlots("OK", "h"), /CLUSTER SLOTS replied "OK"/);
  assert.throws(() => parseClusterSlots([[0, 20000, ["h", 1, "id"]]], "h"), /malformed range/);
  assert.throws(() => parseClusterSlots([[0, 10, ["h"]]], "h"), /malformed node/);
  const [range] = parseClusterSlots([[0, 10, ["", 7000, "abc"], ["r", 7001, "def"]]], "10.0.0.9");
  assert.deepEqual(range.master, { host: "10.0.0.9", port: 7000, id: "abc" });
  assert.equal(redirection(new RedisReplyError("ASK 12 :7002"), "10.0.0.9")?.host, "10.0.0.9");
  assert.deepEqual(redirection(new RedisReplyError("ASK 12 [::1]:7002"), "h"), {
    kind: "ASK",
    slot: 12,
    host: "::1",
    port: 7002,
  });
  assert.equal(redirection(new RedisReplyError("ERR MOVED somewhere"), "h"), undefined);
  assert.equal(redirection("MOVED 1 h:1", "h"), undefined);
});
