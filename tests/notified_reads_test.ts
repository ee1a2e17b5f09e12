/**
 * A notified stream's read takes its notification when it is sent (not a
 * microtask later, when it is encoded: the reader's next pass read the
 * stream again meanwhile), and gives it back when it fails: a reviewer's
 * attacks on the window between the two, kept where they guard what no
 * other test does (reads of several DBs failing in flight; a cluster
 * source's read refused with BUSY). One reader (SOURCE_REDIS_POOL_SIZE=2: the subscriber and one reader)
 * serves 1,500 streams in DB 0 and 1,500 in DB 5, so a read of one DB
 * waits (its notifications already taken) until the other DB's reads in
 * flight are answered and SELECT is sent; notifications keep coming
 * meanwhile. STREAM_POLL_INTERVAL=30: each DB is looked at every 15 s, and
 * with leases 200 streams are swept every 15 s, so an entry copied within a
 * few seconds was read because of its notification (or a renotification
 * after a failed read), not by a look.
 */
import assert from "node:assert/strict";
import { ClusterTestClient, startCluster } from "../testing/cluster.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  delay,
  replicationConfig,
  type Settings,
  startReplicator,
  waitFor,
} from "./_replication.ts";

const PER_DB = 1500;
const DB0_KEYS = Array.from({ length: PER_DB }, (_, i) => `a:${i}`);
const DB5_KEYS = Array.from({ length: PER_DB }, (_, i) => `b:${i}`);

async function fill(client: TestClient, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) {
    await Promise.all(keys.slice(i, i + 500).map((k) => client.send(["XADD", k, "*", "n", "0"])));
  }
}

function pick(keys: string[], n: number): string[] {
  const out = new Set<string>();
  while (out.size < n) out.add(keys[Math.floor(Math.random() * keys.length)]);
  return [...out];
}

/** Keys of `keys` whose last entry on the target is not the source's within `ms`; the others exact. */
async function lateAfter(
  src: TestClient,
  dst: TestClient,
  keys: string[],
  ms: number,
): Promise<string[]> {
  const late = new Set(keys);
  const last = async (c: TestClient, k: string) =>
    String(((await c.send(["XREVRANGE", k, "+", "-", "COUNT", "1"])) as unknown[][])[0]?.[0]);
  await waitFor(async () => {
    for (const k of [...late]) if ((await last(src, k)) === (await last(dst, k))) late.delete(k);
    return late.size === 0;
  }, { timeoutMs: ms, intervalMs: 50 }).catch(() => {});
  for (const k of keys) {
    if (!late.has(k)) assertSameEntries(await dst.xrangeAll(k), await src.xrangeAll(k), k);
  }
  return [...late];
}

async function twoDbsOneReader(leases: boolean, settings: Settings = {}) {
  const stack = new AsyncDisposableStack();
  try {
    const source = stack.use(await RedisServer.start());
    const target = stack.use(await RedisServer.start());
    const src0 = stack.use(await connect(source));
    const src5 = stack.use(await connect(source, { db: 5 }));
    const dst0 = stack.use(await connect(target));
    const dst5 = stack.use(await connect(target, { db: 5 }));
    await src0.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
    await fill(src0, DB0_KEYS);
    await fill(src5, DB5_KEYS);
    stack.use(startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: leases,
        STREAM_DISCOVERY_INTERVAL: 1,
        STREAM_DISCOVERY_PATTERNS: "a:*,b:*",
        REDIS_DB_SEARCH_RANGE: "0,5",
        TARGET_REDIS_DB: "same",
        SOURCE_REDIS_POOL_SIZE: 2,
        STREAM_POLL_INTERVAL: 30,
        STREAM_STALL_TIMEOUT: 60,
        ...settings,
      }),
    ));
    await waitFor(async () => {
      const a = await Promise.all(DB0_KEYS.map((k) => dst0.send(["XLEN", k])));
      const b = await Promise.all(DB5_KEYS.map((k) => dst5.send(["XLEN", k])));
      return [...a, ...b].every((n) => Number(n) >= 1);
    }, { timeoutMs: 60_000, message: "every stream's first entry on the target" });
    await waitFor(
      async () =>
        (await src0.clientList()).some((c) =>
          (c.name ?? "").startsWith("redis-stream-sync-events") && c.psub === "1"
        ),
      { message: "the notifications' subscriber subscribed" },
    );
    const moved = stack.move();
    return { src0, src5, dst0, dst5, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (error) {
    await stack.disposeAsync();
    throw error;
  }
}

/** Bursts of single entries into random streams of both DBs at once, `rounds` times. */
async function bursts(
  src0: TestClient,
  src5: TestClient,
  rounds: number,
  touched: { db0: Set<string>; db5: Set<string> },
  between?: () => Promise<void>,
): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const a = pick(DB0_KEYS, 40);
    const b = pick(DB5_KEYS, 40);
    a.forEach((k) => touched.db0.add(k));
    b.forEach((k) => touched.db5.add(k));
    await Promise.all([
      ...a.map((k) => src0.send(["XADD", k, "*", "n", String(r)])),
      ...b.map((k) => src5.send(["XADD", k, "*", "n", String(r)])),
    ]);
    if (between) await between();
    else await delay(Math.floor(Math.random() * 15));
  }
}

for (const leases of [false, true]) {
  Deno.test(`with notifications, one reader over two DBs: its connection killed again and again during bursts into both DBs (reads that took notifications fail in flight, or before they are encoded): every entry copied within 5 s after, not at the next look 15 s later (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    await using live = await twoDbsOneReader(leases);
    const { src0, src5, dst0, dst5 } = live;
    const touched = { db0: new Set<string>(), db5: new Set<string>() };
    let round = 0;
    await bursts(src0, src5, 30, touched, async () => {
      if (round++ % 3 !== 0) return void await delay(5);
      for (const c of await src0.clientList()) {
        if ((c.name ?? "").startsWith("redis-stream-sync-reader")) {
          await src0.send(["CLIENT", "KILL", "ID", c.id]).catch(() => {});
        }
      }
      await delay(Math.floor(Math.random() * 20));
    });
    assert.deepEqual(await lateAfter(src0, dst0, [...touched.db0], 5000), [], "DB 0 late");
    assert.deepEqual(await lateAfter(src5, dst5, [...touched.db5], 1000), [], "DB 5 late");
    assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
  });
}

const CL_KEYS = Array.from({ length: 60 }, (_, i) => `cl:${i}:s`);

for (const leases of [false, true]) {
  Deno.test(`cluster source with notifications, the sweep 30 s away: an entry whose notified read is refused with BUSY (a script on its master) is read again when the script ends, within 3 s, exact (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    await using cluster = await startCluster();
    await using target = await RedisServer.start();
    await using src = new ClusterTestClient(cluster.seed);
    await using dst = await connect(target);
    for (const node of cluster.nodes.slice(0, 3)) {
      await using c = await connect(node);
      await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
      await c.send(["CONFIG", "SET", "busy-reply-threshold", "50"]);
    }
    const keys = CL_KEYS.slice(0, 12);
    for (const k of keys) await src.send(k, ["XADD", k, "*", "n", "0"]);
    await using _live = startReplicator(
      replicationConfig(cluster.seed, target, {
        SOURCE_REDIS_CLUSTER: true,
        STREAM_LEASES: leases,
        STREAM_DISCOVERY_INTERVAL: 1,
        STREAM_DISCOVERY_PATTERNS: "cl:*",
        REDIS_DB_SEARCH_RANGE: "0",
        STREAM_POLL_INTERVAL: 30,
        STREAM_STALL_TIMEOUT: 60,
      }),
    );
    await waitFor(async () => {
      const n = await Promise.all(keys.map((k) => dst.send(["XLEN", k])));
      return n.every((x) => Number(x) >= 1);
    }, { timeoutMs: 30_000, message: "every stream's first entry on the target" });
    await delay(1500);
    for (const key of keys.slice(0, 4)) {
      const id = String(
        await src.send(key, [
          "EVAL",
          `local id = redis.call('XADD', KEYS[1], '*', 'n', '1')
           local t = redis.call('TIME')
           local start = t[1] * 1000000 + t[2]
           repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 300000
           return id`,
          "1",
          key,
        ]),
      );
      await waitFor(async () => {
        const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
        return top[0]?.[0] === id;
      }, { timeoutMs: 3000, intervalMs: 20, message: `${key}'s entry ${id} on the target` });
      assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
    }
    assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
  });
}
