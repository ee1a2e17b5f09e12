/**
 * Notifications of new entries (one server) against faults of the read a
 * notification starts: a notification is used up when its stream's read is
 * sent, so a read that fails (its connection lost while the server held
 * it, or refused with a transient error such as BUSY) must leave the stream
 * to be read again at once, as a blocking wait would have found its entry
 * at once; else the entry waits for the reader's next look, up to 30 s.
 *
 * 3,000 streams on one reader (SOURCE_REDIS_POOL_SIZE=2: the subscriber and
 * one reader), as in `source_events_test.ts`: its look comes every 15 s
 * (5 ms a stream), and with leases its sweep reads 200 of them each 15 s,
 * so an entry copied within 2 s was read because of its notification.
 */
import assert from "node:assert/strict";
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

const STREAMS = 3000;
const KEYS = Array.from({ length: STREAMS }, (_, i) => `device:${i}:stream`);

/**
 * `keys` (3,000 streams) of one entry each, copied live by one reader, its subscriber subscribed;
 * `settings` added to the replicator's.
 */
async function oneReaderLive(leases: boolean, keys = KEYS, settings: Settings = {}) {
  const stack = new AsyncDisposableStack();
  try {
    const source = stack.use(await RedisServer.start());
    const target = stack.use(await RedisServer.start());
    const src = stack.use(await connect(source));
    const dst = stack.use(await connect(target));
    await src.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
    for (let i = 0; i < keys.length; i += 1000) {
      await Promise.all(
        keys.slice(i, i + 1000).map((key) => src.send(["XADD", key, "*", "n", "0"])),
      );
    }
    stack.use(startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: leases,
        STREAM_DISCOVERY_INTERVAL: 1,
        SOURCE_REDIS_POOL_SIZE: 2,
        ...settings,
      }),
    ));
    await waitFor(async () => {
      const lengths = await Promise.all(keys.map((key) => dst.send(["XLEN", key])));
      return lengths.every((n) => Number(n) >= 1);
    }, { timeoutMs: 60_000, message: "every stream's first entry on the target" });
    // The subscriber subscribed (psub=1): from now on each new entry is notified.
    await waitFor(
      async () =>
        (await src.clientList()).some((c) =>
          (c.name ?? "").startsWith("redis-stream-sync-events") && c.psub === "1"
        ),
      { message: "the notifications' subscriber subscribed" },
    );
    const moved = stack.move();
    return { source, src, dst, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (error) {
    await stack.disposeAsync();
    throw error;
  }
}

/** The replicator's reader connections held in a command by the server now (`flags` with `b`). */
async function heldReaders(src: TestClient): Promise<Record<string, string>[]> {
  return (await src.clientList()).filter((c) =>
    (c.name ?? "").startsWith("redis-stream-sync-reader") && (c.flags ?? "").includes("b")
  );
}

/** Whether the target's last entry of `key` is `id` within `ms` (then the same entries as the source). */
async function copiedWithin(
  src: TestClient,
  dst: TestClient,
  key: string,
  id: string,
  ms: number,
): Promise<boolean> {
  const copied = await waitFor(async () => {
    const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
    return top[0]?.[0] === id;
  }, { timeoutMs: ms, intervalMs: 20 }).then(() => true, () => false);
  if (copied) assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  return copied;
}

/**
 * Resolves right after the subscriber's keepalive (the replicator's only PING within a minute
 * of its start), so that the next one, and its read of notify-keyspace-events, come 2 s later.
 */
async function afterKeepalive(src: TestClient): Promise<void> {
  const before = await src.commandCalls("ping");
  await waitFor(async () => (await src.commandCalls("ping")) > before, {
    timeoutMs: 5000,
    intervalMs: 5,
    message: "the subscriber's keepalive",
  });
}

for (const leases of [false, true]) {
  Deno.test(`with notifications, an entry whose read was held by the source and failed (its connection killed) is read again at once, not at the next look 15 s later (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    await using live = await oneReaderLive(leases);
    const { source, src, dst } = live;
    await using other = await connect(source);
    const key = KEYS[1234];
    // The entry and a pause of writes in one step: the read its notification starts (a write
    // command: XREADGROUP, or the fenced read's script) is held by the server.
    await src.send(["MULTI"]);
    await src.send(["XADD", key, "*", "n", "1"]);
    await src.send(["CLIENT", "PAUSE", "20000", "WRITE"]);
    const [id] = await src.send(["EXEC"]) as string[];
    try {
      await waitFor(async () => (await heldReaders(other)).length > 0, {
        timeoutMs: 5000,
        message: "the reader's read of the notified stream held by CLIENT PAUSE",
      });
      for (const c of await heldReaders(other)) await other.send(["CLIENT", "KILL", "ID", c.id]);
    } finally {
      await other.send(["CLIENT", "UNPAUSE"]);
    }
    assert.ok(await copiedWithin(src, dst, key, String(id), 2000), `${key}'s entry not copied`);
    assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
  });

  Deno.test(`with notifications, an entry whose read was refused with BUSY (a long script) is read again once the script ends, not at the next look 15 s later (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("INFO");
    await using live = await oneReaderLive(leases);
    const { src, dst } = live;
    const key = KEYS[2345];
    await src.send(["CONFIG", "SET", "busy-reply-threshold", "50"]);
    // The entry, then 400 ms of a busy script: its notification is sent after 50 ms, and the
    // read it starts is refused (BUSY) until the script ends. Not while the subscriber sends
    // its keepalive (refused too, it would stop the notifications' use: a look of every stream).
    await afterKeepalive(src);
    const id = await src.send([
      "EVAL",
      `local id = redis.call('XADD', KEYS[1], '*', 'n', '1')
       local t = redis.call('TIME')
       local start = t[1] * 1000000 + t[2]
       repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 400000
       return id`,
      "1",
      key,
    ]);
    await src.send(["CONFIG", "SET", "busy-reply-threshold", "5000"]);
    assert.ok(await copiedWithin(src, dst, key, String(id), 2000), `${key}'s entry not copied`);
    assert.deepEqual(logs.atLeast("INFO", "refused").map((l) => l.message), []);
    assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
  });
}

for (const leases of [false, true]) {
  Deno.test(`with notifications, an entry that comes without an xadd event (a copy of the stream with one more entry renamed onto it) is copied by the reader's look within STREAM_POLL_INTERVAL, not left to the watchdog (STREAM_LEASES=${leases})`, async () => {
    const logs = await captureLogs("WARNING");
    const keys = KEYS.slice(0, 10);
    // A look every 3 s (10 streams: 5 ms each is less); the watchdog after a minute only.
    await using live = await oneReaderLive(leases, keys, {
      STREAM_POLL_INTERVAL: 3,
      STREAM_STALL_TIMEOUT: 60,
    });
    const { src, dst } = live;
    const key = keys[7];
    // COPY takes the consumer group along (where it stands); RENAME sends no xadd event.
    await src.send(["COPY", key, "tmp"]);
    const id = String(await src.send(["XADD", "tmp", "*", "n", "1"]));
    await src.send(["RENAME", "tmp", key]);
    assert.ok(await copiedWithin(src, dst, key, id, 4500), `${key}'s entry not copied`);
    assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
  });
}

Deno.test("with notifications, a subscriber the source drops for its output buffer (client-output-buffer-limit pubsub) loses the notifications of a burst; its entries are copied by the looks once that is noticed, within seconds, not by the watchdog", async () => {
  const logs = await captureLogs("WARNING");
  await using live = await oneReaderLive(false, KEYS, { STREAM_STALL_TIMEOUT: 60 });
  const { src, dst } = live;
  const subscribers = async () =>
    (await src.clientList()).filter((c) => (c.name ?? "").startsWith("redis-stream-sync-events"))
      .map((c) => c.id);
  const [before] = await subscribers();
  // 500 entries in one transaction: their notifications (some 35 KB, more than the 16 KB a
  // client's reply buffer holds before the limit counts) overflow the subscriber's buffer.
  await src.send(["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1kb 0 0"]);
  const keys = KEYS.slice(0, 500);
  await src.send(["MULTI"]);
  for (const key of keys) await src.send(["XADD", key, "*", "n", "1"]);
  const ids = (await src.send(["EXEC"]) as string[]).map(String);
  await src.send(["CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"]);
  const late = new Set(keys);
  await waitFor(async () => {
    for (const [i, key] of keys.entries()) {
      if (!late.has(key)) continue;
      const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
      if (top[0]?.[0] === ids[i]) late.delete(key);
    }
    return late.size === 0;
  }, { timeoutMs: 6000, intervalMs: 50 }).catch(() => {});
  assert.deepEqual([...late], [], "entries not copied within 6 s");
  assert.equal((await subscribers()).includes(before), false, "the subscriber was dropped");
  assert.deepEqual(logs.atLeast("WARNING", "no progress").map((l) => l.message), []);
});

Deno.test("with notifications, a long script that makes the source answer BUSY to the subscriber's keepalive is not taken for an ACL refusal: the notifications are used again within seconds after it, not a minute later", async () => {
  const logs = await captureLogs("INFO");
  // 10 streams: a blocking wait lasts STREAM_POLL_INTERVAL (1 s), so readers that block show.
  await using live = await oneReaderLive(false, KEYS.slice(0, 10), { STREAM_POLL_INTERVAL: 1 });
  const { src } = live;
  await src.send(["CONFIG", "SET", "busy-reply-threshold", "50"]);
  // 2.5 s busy: the keepalive (every 2 s) and the read of the setting are refused with BUSY.
  await src.send([
    "EVAL",
    `local t = redis.call('TIME')
     local start = t[1] * 1000000 + t[2]
     repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 2500000
     return 1`,
    "0",
  ]);
  await src.send(["CONFIG", "SET", "busy-reply-threshold", "5000"]);
  // The readers may block meanwhile (a safe fallback); within 8 s none does for 2 s in a row.
  await waitFor(async () => {
    for (let i = 0; i < 20; i++) {
      if ((await heldReaders(src)).length > 0) return false;
      await delay(100);
    }
    return true;
  }, { timeoutMs: 8000, intervalMs: 0, message: "the readers waiting in the tool again" });
  const said = logs.atLeast("INFO", "stream notifications").map((l) => l.message);
  assert.deepEqual(said.filter((m) => /ACL|refused/.test(m)), [], "an ACL refusal said");
});
