/**
 * Heartbeats (HEARTBEAT_INTERVAL, `lib/replication/run/heartbeat.ts`): each
 * instance adds an entry to `redis-stream-sync:heartbeat:<group>` on the
 * source every interval; the run copies that stream whatever the discovery
 * patterns, so the delay metrics move with no application writes. Unset,
 * nothing is written to the source. Real servers, replicators in-process.
 */
import assert from "node:assert/strict";
import { heartbeatKey } from "../lib/config/mod.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  addEntries,
  captureLogs,
  quietLogs,
  replicationConfig,
  type Settings,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

const BEAT = heartbeatKey("redis-sync-group");
const DELAY_COUNT = "redis_stream_sync_replication_delay_seconds_count";

/** The value of the unlabelled sample `name`, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** The `instance` field of each entry. */
function instances(entries: Array<[string, Uint8Array[]]>): string[] {
  const decoder = new TextDecoder();
  return entries.map(([, fields]) => {
    assert.equal(fields.length, 2, "one field: instance");
    assert.equal(decoder.decode(fields[0]), "instance");
    return decoder.decode(fields[1]);
  });
}

Deno.test("with HEARTBEAT_INTERVAL=1 and patterns that do not match it, the heartbeat stream is copied and replication_delay_seconds moves with no application writes", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dst = await connect(target);
  const settings: Settings = {
    HEARTBEAT_INTERVAL: 1,
    STREAM_DISCOVERY_PATTERNS: "orders-*",
    INSTANCE_ID: "one",
  };
  const metrics = new Metrics("test");
  await using _ = startReplicator(replicationConfig(source, target, settings), {
    hooks: metrics.hooks(),
  });
  // Two heartbeats a second apart, copied: no application stream exists at all.
  let copied: Array<[string, Uint8Array[]]> = [];
  await waitFor(async () => (copied = await dst.xrangeAll(BEAT)).length >= 2, {
    timeoutMs: 15_000,
    message: `two heartbeats copied to ${BEAT}`,
  });
  assert.deepEqual(new Set(instances(copied)), new Set(["redis-sync-consumer-one"]));
  let text = "";
  await waitFor(() => (sample(text = metrics.text(), DELAY_COUNT) ?? 0) >= 2, {
    timeoutMs: 5_000,
    message: "two observations of the delay",
  });
  const count = sample(text, DELAY_COUNT)!;
  const sum = sample(text, "redis_stream_sync_replication_delay_seconds_sum")!;
  assert.ok(sum >= 0 && sum < count * 2.5, `${count} heartbeats, delays summing to ${sum} s`);
});

Deno.test("heartbeats alone are not streams to copy: with no application stream, 'No streams to copy' is still said while they are copied", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dst = await connect(target);
  const config = replicationConfig(source, target, {
    HEARTBEAT_INTERVAL: 0.2,
    STREAM_DISCOVERY_PATTERNS: "orders-*",
    REDIS_STREAMS: "payments",
  });
  {
    await using _ = startReplicator(config);
    await waitFor(async () => (await dst.xrangeAll(BEAT)).length >= 3, {
      timeoutMs: 15_000,
      message: "three heartbeats copied",
    });
    await waitFor(() => logs.at("WARNING", /No streams to copy/).length >= 2, {
      timeoutMs: 5_000,
      message: `"No streams to copy" said at passes while the heartbeats run\n${logs}`,
    });
  }
  assert.match(
    logs.at("WARNING", /No streams to copy/)[0].message,
    /"orders-\*".*none of the 1 streams of REDIS_STREAMS exists/,
  );
  await quietLogs();
});

Deno.test("HEARTBEAT_INTERVAL decides whether the source is written: unset, no XADD reaches it and no heartbeat key exists; at 0.2 s, heartbeats are written and copied", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "orders-stream", 20);
  const own = await src.commandCalls("xadd"); // the test's own entries
  {
    await using replicator = startReplicator(replicationConfig(source, target));
    await waitForCopy(src, "orders-stream", dst);
    await addEntries(src, "orders-stream", 5);
    await waitForCopy(src, "orders-stream", dst);
    await new Promise((resolve) => setTimeout(resolve, 600)); // two discovery passes more
    await replicator.stop();
  }
  assert.equal(await src.commandCalls("xadd"), own + 5, "the tool wrote no entry to the source");
  assert.deepEqual(await src.send(["KEYS", "redis-stream-sync:heartbeat:*"]), []);
  assert.equal(Number(await dst.send(["EXISTS", BEAT])), 0);

  await using _ = startReplicator(replicationConfig(source, target, { HEARTBEAT_INTERVAL: 0.2 }));
  await waitFor(async () => (await dst.xrangeAll(BEAT)).length >= 3, {
    timeoutMs: 15_000,
    message: "three heartbeats copied",
  });
  assert.ok(await src.commandCalls("xadd") >= own + 5 + 3);
});

Deno.test("the heartbeat stream stays small on the source: each heartbeat trims it to about 1000 entries (MAXLEN ~)", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  for (let done = 0; done < 3000; done += 500) {
    const adds = [];
    for (let i = 0; i < 500; i++) adds.push(src.xadd(BEAT, "*", { instance: "earlier" }));
    await Promise.all(adds);
  }
  await using _ = startReplicator(replicationConfig(source, target, { HEARTBEAT_INTERVAL: 0.2 }));
  await waitFor(async () => instances(await dst.xrangeAll(BEAT)).some((i) => i !== "earlier"), {
    timeoutMs: 15_000,
    message: "a heartbeat of the replicator copied",
  });
  const length = Number(await src.send(["XLEN", BEAT]));
  // `~`: Redis trims whole nodes of 100 entries; never the 3000 it had.
  assert.ok(length >= 1000 && length <= 1100, `the source's heartbeat stream holds ${length}`);
});

Deno.test("with two instances each writes its own heartbeats (field instance), and the copy holds both", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dst = await connect(target);
  const settings = (id: string): Settings => ({
    HEARTBEAT_INTERVAL: 0.2,
    INSTANCE_ID: id,
    STREAM_LEASE_TTL: 1,
  });
  await using _a = startReplicator(replicationConfig(source, target, settings("a")));
  await using _b = startReplicator(replicationConfig(source, target, settings("b")));
  await waitFor(async () => {
    const seen = new Set(instances(await dst.xrangeAll(BEAT)));
    return seen.has("redis-sync-consumer-a") && seen.has("redis-sync-consumer-b");
  }, { timeoutMs: 15_000, message: "heartbeats of both instances copied" });
});

Deno.test("a source user that may not XADD: one WARNING however many heartbeats are refused, nothing written, the streams still copied", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.send(["ACL", "SETUSER", "sync", "on", ">sync-pw", "~*", "&*", "+@all", "-xadd"]);
  await addEntries(src, "orders-stream", 10);
  const own = await src.commandCalls("xadd");
  const config = replicationConfig(source, target, {
    SOURCE_REDIS_USERNAME: "sync",
    SOURCE_REDIS_PASSWORD: "sync-pw",
    HEARTBEAT_INTERVAL: 0.1,
  });
  {
    await using _ = startReplicator(config);
    await waitForCopy(src, "orders-stream", dst);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // ten heartbeats refused
    await addEntries(src, "orders-stream", 5);
    await waitForCopy(src, "orders-stream", dst);
  }
  const warned = logs.at("WARNING", /refuses the heartbeats/);
  assert.equal(warned.length, 1, logs.toString());
  assert.match(warned[0].message, new RegExp(`db0:${BEAT}: NOPERM`));
  assert.match(warned[0].message, /the copy goes on without them/);
  assert.equal(await src.commandCalls("xadd"), own + 5);
  assert.equal(Number(await src.send(["EXISTS", BEAT])), 0);
  await quietLogs();
});
