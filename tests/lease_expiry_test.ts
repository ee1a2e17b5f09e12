/**
 * A lone instance whose bucket leases expire under it (the process paused
 * longer than STREAM_LEASE_TTL, as a VM freeze or a stop-the-world pause
 * does): it says so at WARNING (not "lost to other instances": there are
 * none), takes its buckets again, and `run --once` ends with an exact copy
 * and a Done line that accounts for every entry: copied (by the streams'
 * runs before the expiry too) or found already on the target. And lease
 * keys deleted on the source while a write is held by the target: said as
 * removed by something else, with their streams, every entry counted once.
 */
import assert from "node:assert/strict";
import { leaseKey } from "../lib/replication/sharing/lease_key.ts";
import { spawnCli } from "../testing/cli.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { entriesDifference, replicationEnv, waitFor } from "./_replication.ts";

const GROUP = "redis-sync-group";
const STREAMS = 200;
const ENTRIES = 500;

Deno.test("run --once paused past its lease TTL mid-copy says its leases expired, takes them again, and ends with an exact copy and every entry accounted for", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  // 200 streams of 500 entries (100,000), each entry with its own bytes, made in one script.
  await src.send([
    "EVAL",
    `for s = 0, tonumber(ARGV[1]) - 1 do
       for i = 1, tonumber(ARGV[2]) do
         redis.call('XADD', 'exp-' .. s .. '-stream', i .. '-' .. (s % 3), 'n', i, 'b', string.char(i % 256, s % 256))
       end
     end`,
    "0",
    String(STREAMS),
    String(ENTRIES),
  ]);
  const keys = Array.from({ length: STREAMS }, (_, i) => `exp-${i}-stream`);
  const env = replicationEnv(source, target, {
    STREAM_LEASE_TTL: "2",
    LOG_LEVEL: "INFO",
    REDIS_DB_SEARCH_RANGE: "0",
    // Small reads: the copy takes long enough to be paused in the middle of it.
    STREAM_BATCH_SIZE: "5",
  });
  await using once = spawnCli(["run", "--once"], { env, timeoutMs: 180_000 });
  const output = () => once.stdout() + once.stderr();
  await waitFor(async () => Number(await dst.send(["DBSIZE"])) > 0, {
    timeoutMs: 30_000,
    intervalMs: 20,
    message: "the copy began",
  });
  once.signal("SIGSTOP");
  let copiedAtPause = 0;
  try {
    for (const key of keys) copiedAtPause += Number(await dst.send(["XLEN", key]));
    // Every bucket lease expires while it sleeps (a TTL after its last renewal).
    const leases = keys.map((key) => leaseKey(new TextEncoder().encode(key), { group: GROUP }));
    await waitFor(async () => {
      for (const lease of leases) if (Number(await src.send(["EXISTS", lease])) !== 0) return false;
      return true;
    }, { timeoutMs: 10_000, intervalMs: 100, message: "every lease expired during the pause" });
  } finally {
    once.signal("SIGCONT");
  }
  assert.ok(copiedAtPause < STREAMS * ENTRIES, `paused before the end (${copiedAtPause} copied)`);
  const result = await once.wait();
  assert.equal(result.code, 0, output());
  assert.match(output(), /expired before this instance renewed them/, output());
  assert.doesNotMatch(output(), /[1-9]\d* lost to other instances/, output());
  const done = output().match(
    /Done: (\d+) streams, (\d+) entries copied(?:, (\d+) already on the target)?$/m,
  );
  assert.ok(done, `a Done line\n${output()}`);
  assert.equal(Number(done[1]), STREAMS, output());
  // Each entry is written once, or found on the target when read again (written before the
  // pause, its ack not sent): together, every entry of the source.
  assert.equal(
    Number(done[2]) + Number(done[3] ?? 0),
    STREAMS * ENTRIES,
    `every entry counted\n${output()}`,
  );
  for (const key of keys) {
    const difference = entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key));
    assert.equal(difference, undefined, `${key} differs on the target: ${difference}`);
    const pending = await src.send(["XPENDING", key, GROUP]) as unknown[];
    assert.equal(Number(pending[0]), 0, `${key}: entries still pending`);
  }
});

Deno.test("run --once whose lease key is deleted while the target holds a write: said as removed by something else (with its streams), the stream is taken again only once the write is answered, and every entry is counted once", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "del-stream";
  const entries = 20_000;
  await src.send([
    "EVAL",
    `for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], i .. '-0', 'n', i) end`,
    "1",
    key,
    String(entries),
  ]);
  const env = replicationEnv(source, target, {
    STREAM_LEASE_TTL: "2",
    LOG_LEVEL: "INFO",
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_BATCH_SIZE: "20",
    TARGET_REDIS_COMMAND_TIMEOUT: "30",
  });
  await using once = spawnCli(["run", "--once"], { env, timeoutMs: 120_000 });
  const output = () => once.stdout() + once.stderr();
  await waitFor(async () => Number(await dst.send(["XLEN", key])) > 0, {
    timeoutMs: 30_000,
    intervalMs: 5,
    message: "the copy began",
  });
  // The target holds every write for 5 s (slow or busy): a write is in flight meanwhile.
  await dst.send(["CLIENT", "PAUSE", "5000", "WRITE"]);
  const lease = leaseKey(new TextEncoder().encode(key), { group: GROUP });
  // The lease key deleted (an operator, an eviction) until the instance notices.
  await waitFor(async () => {
    await src.send(["DEL", lease]);
    return /were gone before their TTL ran out/.test(output());
  }, { timeoutMs: 10_000, intervalMs: 50, message: "the lease found gone" });
  const result = await once.wait();
  assert.equal(result.code, 0, output());
  const difference = entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key));
  assert.equal(difference, undefined, `the target differs: ${difference}`);
  const pending = await src.send(["XPENDING", key, GROUP]) as unknown[];
  assert.equal(Number(pending[0]), 0, "entries still pending");
  // Renewed within the TTL and gone: not a pause; its stream counted (also when a read found
  // the lease gone first), in the WARNING and in the Leases line (the metric's number).
  assert.match(output(), /\(1 stream\) were gone before their TTL ran out/, output());
  assert.doesNotMatch(output(), /\(0 streams\)|expired before this instance renewed/, output());
  assert.match(output(), /Leases: .*, [1-9]\d* expired/, output());
  // The write held by the target was answered before the stream was taken again: every entry
  // written once by this process, none found "already on the target" by a second run's write.
  const done = output().match(
    /Done: (\d+) streams?, (\d+) entries copied(?:, (\d+) already on the target)?$/m,
  );
  assert.ok(done, `a Done line\n${output()}`);
  assert.equal(Number(done[2]) + Number(done[3] ?? 0), entries, `every entry once\n${output()}`);
  assert.equal(Number(done[2]), entries, `every entry written counted as copied\n${output()}`);
});
