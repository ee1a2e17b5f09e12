/**
 * Lease keys hash to their stream's cluster slot, as a cluster-enabled
 * redis-server computes it (CLUSTER KEYSLOT).
 */
import assert from "node:assert/strict";
import {
  bucketLeaseKey,
  bucketOf,
  CLUSTER_SLOTS,
  clusterSlot,
  crc16,
  LEASE_KEY_PREFIX,
  leaseKey,
  STANDALONE_BUCKETS,
  tagForSlot,
} from "../lib/replication/sharing/lease_key.ts";
import { connect, RedisServer } from "../testing/redis.ts";

const encoder = new TextEncoder();

Deno.test("crc16 is CRC16/XMODEM (check value of 123456789 is 0x31c3)", () => {
  assert.equal(crc16(encoder.encode("123456789")), 0x31c3);
});

Deno.test("every cluster slot has a tag of at most 3 characters that maps to it", () => {
  for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
    const tag = tagForSlot(slot);
    assert.ok(tag.length >= 1 && tag.length <= 3, `slot ${slot}: tag "${tag}"`);
    assert.equal(clusterSlot(encoder.encode(tag)), slot, `slot ${slot}: tag "${tag}"`);
  }
});

Deno.test("in a cluster a stream's bucket is its slot, and its lease key is in that slot as redis-server computes it, hash tags and braces included", async () => {
  await using server = await RedisServer.start({
    args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
  });
  await using client = await connect(server);
  const keys = [
    "orders-stream",
    "device:17:stream",
    "{user1000}.following",
    "a{}b",
    "}{x}",
    "{}{z}",
    "weird}key{",
    "ключ-stream",
    "",
    ...Array.from({ length: 200 }, (_, i) => `k${i}:${Math.random().toString(36).slice(2)}`),
  ];
  for (const text of keys) {
    const key = encoder.encode(text);
    const lease = leaseKey(key, { group: "redis-sync-group", cluster: true });
    const expected = Number(await client.send(["CLUSTER", "KEYSLOT", text]));
    assert.equal(clusterSlot(key), expected, `slot of ${JSON.stringify(text)}`);
    assert.equal(bucketOf(key, { cluster: true }), expected);
    const leaseText = new TextDecoder().decode(lease);
    assert.ok(leaseText.startsWith(LEASE_KEY_PREFIX), leaseText);
    assert.ok(leaseText.endsWith(`:16:redis-sync-group:${expected}`), leaseText);
    assert.equal(
      Number(await client.send(["CLUSTER", "KEYSLOT", leaseText])),
      expected,
      `lease key ${JSON.stringify(leaseText)} of ${JSON.stringify(text)}`,
    );
  }
});

Deno.test("lease keys of one bucket differ between consumer groups, also when names contain ':'", () => {
  const one = new TextDecoder().decode(bucketLeaseKey(1, { group: "g:1" }));
  const two = new TextDecoder().decode(bucketLeaseKey(11, { group: "g" }));
  assert.notEqual(one, two);
});

Deno.test("on one server the streams fall into 256 buckets, evenly: the leases do not grow with the number of streams", () => {
  const counts = new Array<number>(STANDALONE_BUCKETS).fill(0);
  for (let i = 0; i < 100_000; i++) counts[bucketOf(encoder.encode(`device:${i}:stream`))]++;
  assert.equal(STANDALONE_BUCKETS, 256);
  // 390.6 a bucket on average.
  assert.ok(
    Math.min(...counts) > 300 && Math.max(...counts) < 480,
    `${Math.min(...counts)}..${Math.max(...counts)}`,
  );
  // The same stream is always in the same bucket, and its lease key names that bucket.
  const key = encoder.encode("orders-stream");
  assert.equal(
    new TextDecoder().decode(leaseKey(key, { group: "g" })),
    `${LEASE_KEY_PREFIX}{${tagForSlot(bucketOf(key))}}:1:g:${bucketOf(key)}`,
  );
});
