/**
 * Notifications of new entries on one server (issue 24): with the source's
 * `notify-keyspace-events` sending stream events, readers wait in the tool,
 * not with a read blocked on the source over thousands of keys, and a
 * notification names the stream to read. They fall back to blocking waits
 * as soon as the notifications stop, and a lost subscription has every
 * stream looked at once it is renewed, so no entry waits for the end of a
 * wait (up to 30 s at 6,000 streams a reader) because a notification was
 * missed.
 *
 * Why 3,000 streams: with SOURCE_REDIS_POOL_SIZE=2 (the subscriber and one
 * reader), the reader's wait (blocking or not) lasts 15 s (5 ms a stream),
 * far longer than the bounds checked here, so an entry copied within them
 * was woken by a notification or by the look after a renewed subscription,
 * not by the end of a wait. With the default pool, the streams are shared
 * by 9 readers, as in production.
 */
import assert from "node:assert/strict";
import { keyEventOf } from "../lib/redis/mod.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import { monitor } from "./_monitor.ts";
import { MASTER_NAME, startSentinelSetup } from "./_sentinel.ts";
import {
  assertSameEntries,
  captureLogs,
  delay,
  type LogCapture,
  quietLogs,
  replicationConfig,
  startReplicator,
  waitFor,
} from "./_replication.ts";

const STREAMS = 3000;
const KEYS = Array.from({ length: STREAMS }, (_, i) => `device:${i}:stream`);

/** Adds one entry to each of `keys` (pipelined). */
async function fill(client: TestClient, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    await Promise.all(
      keys.slice(i, i + 1000).map((key) => client.send(["XADD", key, "*", "n", "0"])),
    );
  }
}

/** The source's clients blocked in a read now (`flags` with `b`), by name and command. */
async function blockedClients(client: TestClient): Promise<string[]> {
  const list = String(await client.send(["CLIENT", "LIST"]));
  return list.split("\n").filter((line) => /\bflags=\w*b/.test(line))
    .map((line) => `${/\bname=(\S*)/.exec(line)?.[1]} ${/\bcmd=(\S*)/.exec(line)?.[1]}`);
}

/** A source with `flags` as its notify-keyspace-events and 3,000 streams of one entry each. */
async function setUp(src: TestClient, flags: string): Promise<void> {
  await src.send(["CONFIG", "SET", "notify-keyspace-events", flags]);
  await fill(src, KEYS);
}

/** Waits until every stream's first entry is on the target. */
async function allCopied(dst: TestClient): Promise<void> {
  await waitFor(async () => {
    const lengths = await Promise.all(KEYS.map((key) => dst.send(["XLEN", key])));
    return lengths.every((n) => Number(n) >= 1);
  }, { timeoutMs: 60_000, message: "every stream's first entry on the target" });
}

/** Adds one entry to each of `keys` and waits until the target has them (false: not within `ms`). */
async function addAndAwait(
  src: TestClient,
  dst: TestClient,
  keys: string[],
  ms: number,
): Promise<string[]> {
  const ids = new Map<string, string>();
  for (const key of keys) ids.set(key, String(await src.send(["XADD", key, "*", "n", "1"])));
  const late = new Set(keys);
  await waitFor(async () => {
    for (const key of [...late]) {
      const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
      if (top[0]?.[0] === ids.get(key)) late.delete(key);
    }
    return late.size === 0;
  }, { timeoutMs: ms, intervalMs: 20 }).catch(() => {});
  for (const key of keys) {
    if (!late.has(key)) assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  }
  return [...late];
}

/** The watchdog's reports of streams left waiting (none: every entry was woken in time). */
function stalls(logs: LogCapture): string[] {
  return logs.atLeast("WARNING", "no progress").map((line) => line.message);
}

function someKeys(n: number): string[] {
  const picked = new Set<string>();
  while (picked.size < n) picked.add(KEYS[Math.floor(Math.random() * KEYS.length)]);
  return [...picked];
}

Deno.test("a keyspace event message names its DB and key, from SUBSCRIBE and from PSUBSCRIBE", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(
    keyEventOf([bytes("message"), bytes("__keyevent@0__:xadd"), bytes("a:b")]),
    { db: 0, key: bytes("a:b") },
  );
  assert.deepEqual(
    keyEventOf([
      bytes("pmessage"),
      bytes("__keyevent@*__:xadd"),
      bytes("__keyevent@12__:xadd"),
      bytes("s\x00\xff"),
    ]),
    { db: 12, key: bytes("s\x00\xff") },
  );
  assert.equal(keyEventOf([bytes("message"), bytes("news"), bytes("x")]), undefined);
});

for (const leases of [true, false]) {
  Deno.test(`with notify-keyspace-events Et, no reader blocks on the source and single entries into random streams among 3,000 are copied within 2 s, in DB 0 and DB 3 (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    await using src3 = await connect(source, { db: 3 });
    await using dst3 = await connect(target, { db: 3 });
    await src3.send(["XADD", "db3:stream", "*", "n", "0"]);
    await setUp(src, "Et");
    await using _live = startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: leases,
        STREAM_DISCOVERY_INTERVAL: 1,
        STREAM_DISCOVERY_PATTERNS: "device:*:stream,db3:*",
        REDIS_DB_SEARCH_RANGE: "0,3",
        TARGET_REDIS_DB: "same",
      }),
    );
    await allCopied(dst);
    await waitFor(async () => Number(await dst3.send(["XLEN", "db3:stream"])) === 1, {
      timeoutMs: 10_000,
      message: "db3:stream's first entry on the target",
    });
    // Longer than a fenced reader's shortest sweep period (5 s): every reader is in its wait.
    await delay(6000);
    const blocked: string[] = [];
    for (let i = 0; i < 10; i++) {
      blocked.push(...await blockedClients(src));
      await delay(100);
    }
    assert.deepEqual(blocked, [], "clients blocked on the source");
    assert.deepEqual(await addAndAwait(src, dst, someKeys(20), 2000), [], "entries not copied");
    assert.deepEqual(await addAndAwait(src3, dst3, ["db3:stream"], 2000), [], "DB 3's entry");
    assert.deepEqual(stalls(logs), []);
  });
}

/**
 * 3,000 streams copied live by one reader (SOURCE_REDIS_POOL_SIZE=2: the
 * subscriber and one reader), whose wait of 15 s has begun.
 */
async function oneReaderLive() {
  const stack = new AsyncDisposableStack();
  try {
    const source = stack.use(await RedisServer.start());
    const target = stack.use(await RedisServer.start());
    const src = stack.use(await connect(source));
    const dst = stack.use(await connect(target));
    await setUp(src, "Et");
    stack.use(startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: false,
        STREAM_DISCOVERY_INTERVAL: 1,
        SOURCE_REDIS_POOL_SIZE: 2,
      }),
    ));
    await allCopied(dst);
    await delay(3000);
    const moved = stack.move();
    return { src, dst, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (error) {
    await stack.disposeAsync();
    throw error;
  }
}

Deno.test("a lost subscription to notifications is renewed, and entries added while it was lost are copied within seconds, not at the end of a 15 s wait, by reads of at most 1,000 streams each", async () => {
  const logs = await captureLogs("WARNING");
  await using live = await oneReaderLive();
  const { src, dst } = live;
  // Every command from now on, with its number of arguments (the slow log keeps the first 31).
  await src.send(["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
  await src.send(["CONFIG", "SET", "slowlog-max-len", "100000"]);
  await src.send(["SLOWLOG", "RESET"]);
  // The subscriber goes; entries come before it is back: their notifications are lost.
  await src.send(["CLIENT", "KILL", "TYPE", "pubsub"]);
  const keys = someKeys(10);
  assert.deepEqual(await addAndAwait(src, dst, keys, 8000), [], "entries not copied within 8 s");
  assert.deepEqual(await blockedClients(src), [], "clients blocked on the source");
  // Not found by the watchdog (STREAM_STALL_TIMEOUT): by the look after the renewal.
  assert.deepEqual(stalls(logs), []);
  // That look read all 3,000 streams (a non-blocking XREADGROUP), 1,000 keys a read at most.
  const reads = (await src.send(["SLOWLOG", "GET", "-1"]) as unknown[][])
    .map((entry) => entry[3] as string[])
    .filter((args) => args[0].toUpperCase() === "XREADGROUP" && !args.includes("BLOCK"))
    .map((args) => {
      const more = /^\.\.\. \((\d+) more arguments\)$/.exec(args.at(-1)!);
      return more ? args.length - 1 + Number(more[1]) : args.length;
    });
  const streamsRead = reads.map((n) => (n - 7) / 2);
  assert.ok(streamsRead.some((n) => n >= 1000), `reads of ${streamsRead.join(", ")} streams`);
  assert.ok(streamsRead.every((n) => n <= 1000), `reads of ${streamsRead.join(", ")} streams`);
});

Deno.test("notifications switched off at run time: readers wait on the source again, and new entries are copied within seconds", async () => {
  const logs = await captureLogs("WARNING");
  await using live = await oneReaderLive();
  const { src, dst } = live;
  await src.send(["CONFIG", "SET", "notify-keyspace-events", ""]);
  // Within the recheck of notify-keyspace-events (5 s), the readers block on the source.
  await waitFor(async () => (await blockedClients(src)).length > 0, {
    timeoutMs: 8000,
    message: "a reader blocked on the source",
  });
  assert.deepEqual(await addAndAwait(src, dst, someKeys(10), 2000), [], "entries not copied");
  assert.deepEqual(stalls(logs), []);
});

Deno.test("a source behind sentinels whose new master sends no notifications: after SENTINEL FAILOVER, readers wait on the source again and new entries are copied within seconds, not at the end of a 15 s wait", async () => {
  const logs = await captureLogs("WARNING");
  await using setup = await startSentinelSetup();
  await using target = await RedisServer.start();
  const [first] = setup.servers;
  {
    await using m = await connect(first);
    await setUp(m, "Et"); // on the first master only: a replica's settings are its own
    assert.equal(Number(await m.send(["WAIT", "1", "10000"])), 1);
  }
  await using _live = startReplicator(
    replicationConfig(first, target, {
      SOURCE_REDIS_SENTINELS: setup.sentinels,
      SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
      STREAM_LEASES: false,
      STREAM_DISCOVERY_INTERVAL: 1,
      SOURCE_REDIS_POOL_SIZE: 2, // the subscriber and one reader: its wait lasts 15 s
      REDIS_DB_SEARCH_RANGE: "0",
    }),
  );
  await using dst = await connect(target);
  await allCopied(dst);
  await delay(3000);
  {
    await using m = await connect(first);
    assert.deepEqual(await blockedClients(m), [], "clients blocked on the first master");
  }
  const second = await setup.failover();
  await using src = await connect(second);
  assert.equal(
    String(await src.send(["CONFIG", "GET", "notify-keyspace-events"])).includes("E"),
    false,
  );
  // Within the subscriber's renewal and the recheck of the setting, a reader blocks on the new master.
  await waitFor(async () => (await blockedClients(src)).length > 0, {
    timeoutMs: 15_000,
    message: "a reader blocked on the new master",
  });
  assert.deepEqual(await addAndAwait(src, dst, someKeys(10), 2000), [], "entries not copied");
  assert.deepEqual(stalls(logs), []);
});

for (const leases of [true, false]) {
  Deno.test(`with notifications, each single entry is read once (one read of its stream per entry, not two), and copied (STREAM_LEASES=${leases})`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    const key = "solo:stream";
    await src.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
    await src.send(["XADD", key, "*", "n", "0"]);
    await using _live = startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: leases,
        STREAM_DISCOVERY_PATTERNS: "solo:*",
      }),
    );
    const copied = async (id: string) => {
      await waitFor(async () => {
        const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
        return top[0]?.[0] === id;
      }, { timeoutMs: 5000, intervalMs: 2, message: `${id} on the target` });
    };
    // Warm: the stream runs, and a notification woke a read of it.
    await copied(String(await src.send(["XADD", key, "*", "n", "warm"])));
    let stop = false;
    const seen = await monitor(source.port, () => stop);
    await seen.ready;
    const entries = 20;
    for (let k = 1; k <= entries; k++) {
      await copied(String(await src.send(["XADD", key, "*", "n", String(k)])));
      await delay(30);
    }
    stop = true;
    await src.send(["PING"]); // a line more: the monitor sees `stop`
    const quoted = `"${key}"`;
    // Fenced reads show their XREADGROUP as run by the script (`lua`), plain ones as sent.
    const reads = (await seen.lines).filter((l) =>
      l.includes('"XREADGROUP"') && l.includes(quoted)
    );
    // A sweep or a look at every stream (every second or few) may read it too, once or twice.
    assert.ok(
      reads.length >= entries && reads.length <= entries + 5,
      `${reads.length} reads of ${key} for ${entries} entries:\n${reads.join("\n")}`,
    );
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  });
}
