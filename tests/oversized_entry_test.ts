/**
 * An entry the target cannot take: a field name or value longer than the
 * target's `proto-max-bulk-len` (Redis answers such a bulk string with a
 * protocol error and closes the connection). Its stream stops with an error
 * naming the entry, its size and the setting; nothing of it is acked; the
 * other streams go on; once the setting is raised the stream goes on. Real
 * `redis-server` processes, no mocks.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { StreamStatus } from "../lib/replication/stream/stream.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  assertSameEntries,
  captureLogs,
  type Entries,
  replicationConfig,
  type RunningReplicator,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
const MB = 1024 * 1024;

/** `size` bytes that are not all the same (a copy that lost or moved bytes shows). */
function payload(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

/** The status of the stream `key` (DB 0), if the replicator shows it. */
function statusOf(replicator: RunningReplicator, key: string): StreamStatus | undefined {
  return replicator.orchestrator.status().streams.find((s) => s.key === key && s.db === 0);
}

/** The IDs pending in the group of `key`, in order. */
async function pendingIds(client: TestClient, key: string): Promise<string[]> {
  const reply = await client.send(["XPENDING", key, GROUP, "-", "+", "100"]) as unknown[][];
  return reply.map((row) => String(row[0]));
}

/** Adds `count` small entries to `key` with IDs `ms-1`, `ms-2`, ... */
async function addSmall(client: TestClient, key: string, ms: number, count: number) {
  for (let i = 1; i <= count; i++) {
    await client.send(["XADD", key, `${ms}-${i}`, "n", String(i), "bytes", payload(100, i)]);
  }
}

const TOO_LARGE =
  /Entry 1-2 of stream "db0:big-stream" has a value of 2,097,152 bytes, above the target's proto-max-bulk-len \(1,048,576\): it cannot be written; raise proto-max-bulk-len on the target \(CONFIG SET proto-max-bulk-len/;

Deno.test("an entry with a value above the target's proto-max-bulk-len stops its stream with an error naming the entry, its size and the setting, nothing of it acked, while other streams go on; once the setting is raised the stream goes on", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start({ args: ["--proto-max-bulk-len", "1mb"] });
  await using src = await connect(source);
  await using dst = await connect(target);
  const big = payload(2 * MB, 7);
  await addSmall(src, "big-stream", 1, 1); // 1-1: fits
  await src.send(["XADD", "big-stream", "1-2", "blob", big, "tail", "x"]); // cannot be written
  await src.send(["XADD", "big-stream", "1-3", "n", "3"]); // fits, but comes after 1-2
  await addSmall(src, "other-stream", 1, 50);
  await using replicator = startReplicator(replicationConfig(source, target));

  await waitFor(() => TOO_LARGE.test(statusOf(replicator, "big-stream")?.lastError ?? ""), {
    timeoutMs: 15_000,
    message: "the status of big-stream to name the entry that cannot be written",
  });
  await waitFor(() => statusOf(replicator, "big-stream")?.state === "error", {
    timeoutMs: 5_000,
    message: "big-stream in the error state",
  });
  assert.equal(
    logs.atLeast("ERROR", TOO_LARGE).length,
    1,
    `said once at ERROR:\n${logs.toString()}`,
  );
  // The other stream goes on, exactly (IDs and bytes), while big-stream stays stopped.
  for (let round = 2; round <= 4; round++) {
    await addSmall(src, "other-stream", round, 50);
    await waitForCopy(src, "other-stream", dst);
  }
  // big-stream: what comes before the entry is written, nothing from it on (no hole).
  const source1 = await src.xrangeAll("big-stream");
  assertSameEntries(await dst.xrangeAll("big-stream"), source1.slice(0, 1), "big-stream's copy");
  // The source keeps the entry, unacknowledged: pending in the group, and so is what follows.
  await waitFor(async () => (await pendingIds(src, "big-stream"))[0] === "1-2", {
    timeoutMs: 5_000,
    message: "1-1 acked, 1-2 the first pending entry",
  });
  // (1-3 is pending too, or not delivered yet: either way not acked.)
  assert.deepEqual((await pendingIds(src, "big-stream")).filter((id) => id !== "1-3"), ["1-2"]);
  // Not retried for ever: no retry warnings, no lost connections.
  assert.deepEqual(
    logs.atLeast("WARNING", /not acknowledged yet|lost|retrying/),
    [],
    logs.toString(),
  );

  // The setting raised: the stream goes on by itself (its next start reads it again).
  await dst.send(["CONFIG", "SET", "proto-max-bulk-len", String(4 * MB)]);
  const copied: Entries = await waitForCopy(src, "big-stream", dst, "big-stream", {
    timeoutMs: 30_000,
  });
  assert.equal(copied.length, 3);
  assert.equal(copied[1][1][1].length, big.length);
  await waitFor(async () => (await pendingIds(src, "big-stream")).length === 0, {
    timeoutMs: 5_000,
    message: "nothing pending on big-stream",
  });
  await waitFor(() => statusOf(replicator, "big-stream")?.state === "replicating", {
    timeoutMs: 5_000,
    message: "big-stream replicating again",
  });
  await addSmall(src, "other-stream", 5, 10);
  await waitForCopy(src, "other-stream", dst);
  const result = await replicator.stop();
  assert.equal(result.ok, true, JSON.stringify(result.failures));
});

Deno.test("a field name above the target's proto-max-bulk-len is named as such; an entry of a stream the target took before the limit was lowered stops it after the connection closed by the protocol error, which the log says", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addSmall(src, "late-stream", 1, 3);
  await addSmall(src, "other-stream", 1, 20);
  await using replicator = startReplicator(replicationConfig(source, target));
  await waitForCopy(src, "late-stream", dst);
  await waitForCopy(src, "other-stream", dst);
  // Lowered while running: the writer read the default when it started.
  await dst.send(["CONFIG", "SET", "proto-max-bulk-len", String(MB)]);
  await src.send(["XADD", "late-stream", "2-1", payload(MB + 1, 3), "v"]);
  await addSmall(src, "late-stream", 3, 2);
  await waitFor(
    () =>
      /Entry 2-1 of stream "db0:late-stream" has a field name of 1,048,577 bytes, above the target's proto-max-bulk-len \(1,048,576\)/
        .test(statusOf(replicator, "late-stream")?.lastError ?? ""),
    { timeoutMs: 15_000, message: "late-stream stopped, naming the field name's size" },
  );
  // The first attempt went out with the old limit: the target answered with a protocol
  // error and closed the connection; the log says so, not just "connection reset".
  const closed = logs.atLeast("WARNING", /Protocol error: invalid bulk length/);
  assert.ok(closed.length > 0, logs.toString());
  assert.ok(
    closed.every((l) => /proto-max-bulk-len/.test(l.message)),
    `the protocol error names the setting:\n${logs.toString()}`,
  );
  assertSameEntries(
    await dst.xrangeAll("late-stream"),
    (await src.xrangeAll("late-stream")).slice(0, 3),
    "late-stream's copy",
  );
  const pending = await pendingIds(src, "late-stream");
  assert.deepEqual(pending.filter((id) => id !== "3-1" && id !== "3-2"), ["2-1"]);
  await addSmall(src, "other-stream", 2, 20);
  await waitForCopy(src, "other-stream", dst);
});

Deno.test("a target user that may not read proto-max-bulk-len (no CONFIG): the entry the target refuses with a protocol error is found by its place among the replies and stops its stream, nothing of it acked, while other streams go on; once the setting is raised the stream goes on", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start({ args: ["--proto-max-bulk-len", "1mb"] });
  await using src = await connect(source);
  await using dst = await connect(target);
  await dst.send([
    "ACL",
    "SETUSER",
    "sync-target",
    "on",
    ">target-pw",
    "~*",
    "&*",
    "+@all",
    "-config",
  ]);
  await addSmall(src, "big-stream", 1, 1);
  await src.send(["XADD", "big-stream", "1-2", "blob", payload(2 * MB, 5), "tail", "x"]);
  await src.send(["XADD", "big-stream", "1-3", "n", "3"]);
  await addSmall(src, "other-stream", 1, 50);
  await using replicator = startReplicator(
    replicationConfig(source, target, {
      TARGET_REDIS_USERNAME: "sync-target",
      TARGET_REDIS_PASSWORD: "target-pw",
    }),
  );
  const refused =
    /Entry 1-2 of stream "db0:big-stream" has a value of 2,097,152 bytes, which the target refused \("ERR Protocol error: invalid bulk length", closing the connection\): above its proto-max-bulk-len: it cannot be written; raise proto-max-bulk-len on the target/;
  await waitFor(() => refused.test(statusOf(replicator, "big-stream")?.lastError ?? ""), {
    timeoutMs: 15_000,
    message: "big-stream stopped, naming the entry the target refused",
  });
  assert.equal(logs.atLeast("ERROR", refused).length, 1, `said once:\n${logs.toString()}`);
  for (let round = 2; round <= 4; round++) {
    await addSmall(src, "other-stream", round, 50);
    await waitForCopy(src, "other-stream", dst);
  }
  // The write of 1-1..1-3 was one transaction, lost whole: nothing of big-stream is on the
  // target, nothing acked.
  assert.deepEqual(await dst.xrangeAll("big-stream"), []);
  const pending = await pendingIds(src, "big-stream");
  assert.deepEqual(pending.filter((id) => id !== "1-3"), ["1-1", "1-2"]);

  await dst.send(["CONFIG", "SET", "proto-max-bulk-len", String(4 * MB)]);
  await waitForCopy(src, "big-stream", dst, "big-stream", { timeoutMs: 30_000 });
  await waitFor(async () => (await pendingIds(src, "big-stream")).length === 0, {
    timeoutMs: 5_000,
    message: "nothing pending on big-stream",
  });
  await addSmall(src, "other-stream", 5, 10);
  await waitForCopy(src, "other-stream", dst);
  const result = await replicator.stop();
  assert.equal(result.ok, true, JSON.stringify(result.failures));
});
