/**
 * The lease keeper and the lease scripts against a real redis-server: each
 * acquisition has its own value (a read left over from an earlier one is
 * refused), leases and the instance registry keep working when the source
 * is out of memory, and a consumer is removed only while the lease is held
 * and it has nothing pending.
 */
import assert from "node:assert/strict";
import { RedisReplyError } from "../lib/errors.ts";
import { RedisConnection } from "../lib/redis/connection.ts";
import {
  CLAIM_REPLY,
  FENCED_CLAIM_REPLY,
  FENCED_READ_REPLY,
  fencedReadReply,
  parseFencedClaim,
  parseRawAutoClaim,
  parseRawMultiRead,
  READ_REPLY,
} from "../lib/redis/stream_commands.ts";
import {
  FENCED_CLAIM,
  FENCED_DELCONSUMER,
  FENCED_READ,
} from "../lib/replication/sharing/_lease_scripts.ts";
import { InstanceRegistry } from "../lib/replication/sharing/instances.ts";
import { LeaseKeeper } from "../lib/replication/sharing/lease.ts";
import { bucketOf } from "../lib/replication/sharing/lease_key.ts";
import { makeStreamRef } from "../lib/replication/stream/stream_ref.ts";
import { connect, RedisServer } from "../testing/redis.ts";

const GROUP = "g";

/** A connection of our own to `server`, closed at the end of the scope. */
function ownConnection(server: RedisServer): RedisConnection & Disposable {
  const conn = new RedisConnection({ role: "source", host: server.host, port: server.port });
  return Object.assign(conn, { [Symbol.dispose]: () => conn.close() });
}

function keeper(conn: RedisConnection, value: string): LeaseKeeper {
  return new LeaseKeeper(conn, { group: GROUP, value, ttlMs: 10_000 });
}

/** A fenced read of `key` with `value`: the reply, or the error code. */
async function fencedRead(
  conn: RedisConnection,
  lease: Uint8Array,
  key: string,
  value: string,
): Promise<unknown> {
  try {
    return await conn.send(0, [
      "EVAL",
      FENCED_READ,
      "2",
      lease,
      key,
      GROUP,
      "me",
      "10",
      value,
      ">",
    ]);
  } catch (error) {
    return error instanceof RedisReplyError ? error.code : error;
  }
}

Deno.test("each acquisition of a lease has its own value: a read with an earlier one's is refused", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  using conn = ownConnection(server);
  await client.send(["XADD", "s", "1-0", "f", "v"]);
  await client.send(["XGROUP", "CREATE", "s", GROUP, "0"]);
  const leases = keeper(conn, "box/t0k3n");
  const ref = makeStreamRef(0, "s");
  assert.deepEqual((await leases.acquire([ref])).acquired, [ref]);
  const first = leases.valueOf(ref);
  await leases.release([ref]);
  assert.equal(leases.valueOf(ref), "");
  assert.deepEqual((await leases.acquire([ref])).acquired, [ref]);
  const second = leases.valueOf(ref);
  assert.notEqual(first, second);
  assert.ok(first.startsWith("box/t0k3n.") && second.startsWith("box/t0k3n."));
  const key = leases.keyOf(ref);
  assert.equal(await fencedRead(conn, key, "s", first), "LEASELOST");
  assert.equal(await client.send(["XLEN", "s"]), 1);
  const pending = await client.send(["XPENDING", "s", GROUP]) as unknown[];
  assert.equal(Number(pending[0]), 0, "the refused read delivered nothing");
  const read = await fencedRead(conn, key, "s", second);
  assert.ok(Array.isArray(read), String(read));
  // A second keeper (another instance) cannot take it while it is held.
  const other = keeper(conn, "web/0th3r");
  const tried = await other.acquire([ref]);
  assert.deepEqual(tried.acquired, []);
  assert.equal(tried.heldBy.get(ref), "box");
});

Deno.test("a renewal tells a bucket whose lease key expired from one another instance took, and stops holding both", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  using conn = ownConnection(server);
  const leases = keeper(conn, "box/t0k3n");
  // Three streams in three buckets (the bucket of a key on one server: its slot modulo 256).
  const refs = ["a", "b", "c"].map((k) => makeStreamRef(0, k));
  assert.equal(new Set(refs.map((r) => leases.bucketOf(r).id)).size, 3, "three buckets");
  const [kept, expired, taken] = refs;
  assert.deepEqual((await leases.acquire(refs)).acquired, refs);
  // One key expires (as while this process was paused past the TTL), one is taken meanwhile.
  await client.send(["DEL", leases.keyOf(expired)]);
  await client.send(["SET", leases.keyOf(taken), "web/0th3r.1", "PX", "10000"]);
  assert.deepEqual(await leases.renew(), {
    lost: [taken],
    expired: [expired],
    expiredBuckets: 1,
  });
  assert.equal(leases.size, 1);
  assert.notEqual(leases.valueOf(kept), "");
  assert.equal(leases.valueOf(expired), "");
  assert.equal(leases.valueOf(taken), "");
  // The other instance's lease is left as it was; the expired one is not re-created by the renewal.
  assert.equal(await client.send(["GET", leases.keyOf(taken)]), "web/0th3r.1");
  assert.equal(await client.send(["EXISTS", leases.keyOf(expired)]), 0);
  assert.deepEqual(await leases.renew(), { lost: [], expired: [], expiredBuckets: 0 });
});

Deno.test("leases are acquired and renewed and the registry written while the source is out of memory", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  using conn = ownConnection(server);
  try {
    await client.send(["XADD", "s", "1-0", "f", "v"]);
    await client.send(["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    await client.send(["CONFIG", "SET", "maxmemory", "1"]);
    await assert.rejects(
      () => client.send(["SET", "x", "y"]),
      /OOM/,
      "the source is out of memory",
    );
    const registry = new InstanceRegistry(conn, {
      group: GROUP,
      db: 0,
      ttlMs: 10_000,
      instanceId: "",
      consumerName: "c",
      hostname: "h",
    });
    const identity = await registry.register(new AbortController().signal);
    assert.equal(identity.id, "h-1");
    assert.deepEqual(await registry.heartbeat(), ["h-1"]);
    const leases = keeper(conn, identity.leaseValue);
    const ref = makeStreamRef(0, "s");
    assert.deepEqual((await leases.acquire([ref])).acquired, [ref]);
    assert.deepEqual(await leases.renew(), { lost: [], expired: [], expiredBuckets: 0 });
    assert.equal(leases.size, 1);
  } finally {
    await client.send(["CONFIG", "SET", "maxmemory", "0"]);
  }
});

Deno.test("a fenced consumer removal does nothing while the consumer has pending entries or the lease is another's", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  using conn = ownConnection(server);
  await client.send(["XADD", "s", "1-0", "f", "v"]);
  await client.send(["XGROUP", "CREATE", "s", GROUP, "0"]);
  await client.send(["XREADGROUP", "GROUP", GROUP, "old", "COUNT", "1", "STREAMS", "s", ">"]);
  await client.send(["XGROUP", "CREATECONSUMER", "s", GROUP, "idle"]);
  const leases = keeper(conn, "box/t");
  const ref = makeStreamRef(0, "s");
  await leases.acquire([ref]);
  const remove = (value: string, name: string) =>
    conn.send(0, [
      "EVAL",
      FENCED_DELCONSUMER,
      "2",
      leases.keyOf(ref),
      "s",
      value,
      GROUP,
      name,
    ]);
  assert.equal(await remove(leases.valueOf(ref), "old"), 0, "old has an entry pending");
  assert.equal(await remove("web/other.1", "idle"), 0, "the lease is not that value's");
  assert.equal(await remove(leases.valueOf(ref), "idle"), 1);
  const names = (await client.send(["XINFO", "CONSUMERS", "s", GROUP]) as unknown[][])
    .map((c) => String(c[1]));
  assert.deepEqual(names, ["old"]);
});

Deno.test("a fenced read gives the entries XREADGROUP gives, bytes and all: new ones, then a history with a deleted entry", async () => {
  await using server = await RedisServer.start();
  using conn = ownConnection(server);
  const bytes = (...b: number[]) => Uint8Array.from(b);
  const key = bytes(0x73, 13, 10, 0xff); // "s\r\n\xff"
  const other = "t";
  for (let i = 1; i <= 30; i++) {
    const value = bytes(...Array.from({ length: i * 37 }, (_, j) => (i * j) % 256));
    const fields = i % 3 ? [bytes(36, 13, 10), value] : [bytes(42), value, bytes(0), bytes()];
    await conn.send(0, ["XADD", key, `${i}-0`, ...fields]);
    await conn.send(0, ["XADD", other, `${i}-1`, "f", String(i)]);
  }
  for (const k of [key, other]) {
    for (const g of ["plain", GROUP]) await conn.send(0, ["XGROUP", "CREATE", k, g, "0"]);
  }
  const leases = keeper(conn, "box/t0k3n");
  const refs = [makeStreamRef(0, key), makeStreamRef(0, other)];
  assert.equal((await leases.acquire(refs)).acquired.length, 2);
  const plainRead = async (ids: string[]) =>
    shape(
      await conn.send(0, [
        "XREADGROUP",
        "GROUP",
        "plain",
        "me",
        "COUNT",
        "20",
        "STREAMS",
        key,
        other,
        ...ids,
      ], { buffers: true, parse: READ_REPLY }),
    );
  const fenced = async (ids: string[]) => {
    const reply = await conn.send(0, [
      "EVAL",
      FENCED_READ,
      "4",
      ...refs.map((r) => leases.keyOf(r)),
      key,
      other,
      GROUP,
      "me",
      "20",
      ...refs.map((r) => leases.valueOf(r)),
      ...ids,
    ], { buffers: true, parse: FENCED_READ_REPLY });
    return shape(fencedReadReply(reply as never).read);
  };
  const shape = (reply: unknown) =>
    parseRawMultiRead(reply).map((s) => ({
      key: [...s.key],
      ids: s.entries.map((e) => e.idText()),
      deleted: s.deleted,
      fields: s.entries.map((e) => e.items().map((b) => [...b])),
    }));
  for (const ids of [[">", ">"], [">", ">"], [">", ">"]]) {
    const want = await plainRead(ids);
    assert.deepEqual(await fenced(ids), want);
  }
  // A history read: every pending entry, one of them deleted meanwhile, and an empty history.
  await conn.send(0, ["XDEL", key, "2-0"]);
  await conn.send(0, [
    "XACK",
    other,
    "plain",
    ...Array.from({ length: 30 }, (_, i) => `${i + 1}-1`),
  ]);
  await conn.send(0, ["XACK", other, GROUP, ...Array.from({ length: 30 }, (_, i) => `${i + 1}-1`)]);
  const want = await plainRead(["0", "0"]);
  assert.deepEqual(want.map((s) => [s.ids.length, s.deleted]), [[19, ["2-0"]], [0, []]]);
  assert.deepEqual(await fenced(["0", "0"]), want);
});

Deno.test("a fenced claim gives the entries XAUTOCLAIM gives, bytes and all, with the cursor and a deleted pending entry, and is refused without the lease", async () => {
  await using server = await RedisServer.start();
  using conn = ownConnection(server);
  const bytes = (...b: number[]) => Uint8Array.from(b);
  const key = bytes(0x63, 13, 10, 0xfe); // "c\r\n\xfe"
  for (let i = 1; i <= 25; i++) {
    const value = bytes(...Array.from({ length: i * 41 }, (_, j) => (i + j) % 256));
    const fields = i % 4 ? [bytes(36, 13, 10), value] : [bytes(42), value, bytes(0), bytes()];
    await conn.send(0, ["XADD", key, `${i}-0`, ...fields]);
  }
  // Two groups with the same pending entries (read by "old"), one entry deleted since.
  for (const g of ["plain", GROUP]) {
    await conn.send(0, ["XGROUP", "CREATE", key, g, "0"]);
    await conn.send(0, ["XREADGROUP", "GROUP", g, "old", "COUNT", "100", "STREAMS", key, ">"]);
  }
  await conn.send(0, ["XDEL", key, "3-0"]);
  const leases = keeper(conn, "box/cl4im");
  const ref = makeStreamRef(0, key);
  assert.equal((await leases.acquire([ref])).acquired.length, 1);
  const shape = (claim: ReturnType<typeof parseRawAutoClaim>) => ({
    cursor: claim.cursor,
    ids: claim.entries.map((e) => e.idText()),
    deleted: claim.deleted,
    fields: claim.entries.map((e) => e.items().map((b) => [...b])),
  });
  const plain = async (cursor: string) =>
    shape(parseRawAutoClaim(
      await conn.send(0, ["XAUTOCLAIM", key, "plain", "me", "0", cursor, "COUNT", "10"], {
        buffers: true,
        parse: CLAIM_REPLY,
      }),
    ));
  const fenced = async (cursor: string, value = leases.valueOf(ref)) =>
    shape(parseFencedClaim(
      await conn.send(0, [
        "EVAL",
        FENCED_CLAIM,
        "2",
        leases.keyOf(ref),
        key,
        value,
        GROUP,
        "me",
        cursor,
        "10",
      ], { buffers: true, parse: FENCED_CLAIM_REPLY }),
    ));
  const steps: string[] = [];
  for (let cursor = "0-0";;) {
    const want = await plain(cursor);
    assert.deepEqual(await fenced(cursor), want);
    steps.push(`${want.ids.length}/${want.deleted.length}`);
    cursor = want.cursor;
    if (cursor === "0-0") break;
  }
  assert.deepEqual(steps, ["9/1", "10/0", "5/0"]);
  await assert.rejects(fenced("0-0", "box/other"), /LEASELOST/);
});

Deno.test("a stream's bucket is its key's slot (modulo 256 on one server), one object per DB and bucket, hash tags and cluster mode included", () => {
  const conn = new RedisConnection({ role: "source", host: "127.0.0.1", port: 1 });
  const standalone = new LeaseKeeper(conn, { group: GROUP, value: "v", ttlMs: 10_000 });
  const cluster = new LeaseKeeper(conn, { group: GROUP, value: "v", ttlMs: 10_000, cluster: true });
  const keys = ["a", "device:7:stream", "{user1}:orders", "x{user1}y", "{}plain", "\u00ff\u0000"];
  for (let i = 0; i < 2000; i++) keys.push(`device:${i}:stream`);
  for (const db of [0, 3]) {
    for (const key of keys) {
      const bytes = new TextEncoder().encode(key);
      const ref = makeStreamRef(db, key);
      const b = standalone.bucketOf(ref);
      assert.deepEqual([b.db, b.n, b.id], [db, bucketOf(bytes), `db${db}:${bucketOf(bytes)}`]);
      assert.equal(standalone.bucketOf(makeStreamRef(db, key)), b, "the same object each time");
      assert.equal(cluster.bucketOf(ref).n, bucketOf(bytes, { cluster: true }));
    }
  }
  assert.notEqual(
    standalone.bucketOf(makeStreamRef(0, "a")),
    standalone.bucketOf(makeStreamRef(3, "a")),
    "a bucket per DB",
  );
  conn.close();
});
