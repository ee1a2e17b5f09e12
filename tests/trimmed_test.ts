/**
 * Entries the source trims (MAXLEN, MINID, XTRIM) before the consumer group
 * delivered them are lost for the target: the replicator says so (one
 * WARNING per stream and pass with how many, a counter metric, a field in
 * `status`), and `status` no longer reports them as lag once the copy is
 * complete.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli, waitFor } from "../testing/cli.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  addEntries,
  assertSameEntries,
  captureLogs,
  replicationConfig,
  replicationEnv,
  runOnce,
  startReplicator,
  waitForDiscoveryPasses,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
const KEY = "trim-stream";
const WARNING =
  /(\d+) entries of db0:trim-stream were trimmed on the source before they could be copied; they are lost for the target \((\d+) so far\)/;

interface StatusRow {
  key: string;
  lag: number;
  pending: number;
  state: string;
  trimmedBeforeCopy: number | null;
}

async function status(source: RedisServer, target: RedisServer): Promise<StatusRow> {
  const result = await runCli(["status", "--json"], {
    env: replicationEnv(source, target, { LOG_LEVEL: "ERROR" }),
  });
  assert.equal(result.code, 0, result.stderr);
  const rows = (JSON.parse(result.stdout) as { streams: StatusRow[] }).streams;
  const row = rows.find((r) => r.key === KEY);
  assert.ok(row, result.stdout);
  return row;
}

/** 10 entries copied, then 90 more of which the source trims 40 while nothing replicates. */
async function trimmedWhileDown(
  source: RedisServer,
  target: RedisServer,
  src: TestClient,
): Promise<void> {
  await addEntries(src, KEY, 10);
  assert.ok((await runOnce(replicationConfig(source, target))).ok);
  await addEntries(src, KEY, 90);
  assert.equal(Number(await src.send(["XTRIM", KEY, "MAXLEN", "50"])), 50);
}

Deno.test("entries trimmed on the source before they were copied: one warning with how many, the rest copied exactly, status shows them and not as lag", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await trimmedWhileDown(source, target, src);
  const copiedBefore = (await dst.xrangeAll(KEY)).slice(0, 10);
  assert.equal(copiedBefore.length, 10);

  // Before the copy: the 50 entries left are behind, the 40 trimmed ones are lost, not lag.
  const before = await status(source, target);
  assert.equal(before.trimmedBeforeCopy, 40, JSON.stringify(before));
  assert.equal(before.lag, 50, JSON.stringify(before));
  assert.equal(before.state, "behind");

  const result = await runOnce(replicationConfig(source, target));
  assert.ok(result.ok, JSON.stringify(result.failures));
  const lines = logs.at("WARNING", WARNING);
  assert.equal(lines.length, 1, logs.toString());
  const [, count, total] = WARNING.exec(lines[0].message)!;
  assert.equal(Number(count), 40);
  assert.equal(Number(total), 40);
  // What the source still has is copied exactly, after what was copied before.
  assertSameEntries(await dst.xrangeAll(KEY), [...copiedBefore, ...await src.xrangeAll(KEY)], KEY);

  // After the copy: in sync, nothing behind; the loss stays visible.
  const after = await status(source, target);
  assert.equal(after.trimmedBeforeCopy, 40, JSON.stringify(after));
  assert.equal(after.lag, 0, JSON.stringify(after));
  assert.equal(after.pending, 0);
  assert.equal(after.state, "in-sync", JSON.stringify(after));
});

Deno.test("a running replicator warns once about entries trimmed before they were copied, not at every pass, and again when more are", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await trimmedWhileDown(source, target, src);
  await using replicator = startReplicator(replicationConfig(source, target));
  await waitFor(async () => Number(await dst.send(["XLEN", KEY])) === 60, {
    timeoutMs: 20_000,
    message: "the 50 entries left copied",
  });
  await waitForDiscoveryPasses(replicator, 3);
  const row = replicator.orchestrator.status().streams.find((s) => s.key === KEY);
  assert.equal(row?.stats?.trimmedBeforeCopy, 40, JSON.stringify(row?.stats));
  assert.equal(row?.stats?.lag, 0, JSON.stringify(row?.stats));
  assert.equal(logs.at("WARNING", WARNING).length, 1, logs.toString());

  // More trimmed ahead of the group while it runs: the next pass reports the new ones.
  await replicator.stop();
  await addEntries(src, KEY, 30);
  await src.send(["XTRIM", KEY, "MAXLEN", "10"]); // 20 of the 30 new ones never delivered
  await using again = startReplicator(replicationConfig(source, target));
  await waitFor(() => logs.at("WARNING", WARNING).length === 2, {
    timeoutMs: 20_000,
    message: "a second warning",
  });
  const [, count, total] = WARNING.exec(logs.at("WARNING", WARNING)[1].message)!;
  assert.equal(Number(total), 60);
  assert.equal(Number(count), 60); // a new process reports what Redis counts since the group began
  await again.stop();
});

Deno.test("run serves the trimmed-before-copy counter on /metrics", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await trimmedWhileDown(source, target, src);
  const port = freePort();
  await using cli = spawnCli(["run"], {
    env: replicationEnv(source, target, { METRICS_PORT: port, LOG_LEVEL: "WARNING" }),
  });
  await cli.waitForOutput(WARNING, 30_000);
  const series = `redis_stream_sync_entries_trimmed_before_copy_total{db="0",stream="${KEY}"} 40`;
  let body = "";
  await waitFor(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    });
    body = await response.text();
    return body.split("\n").includes(series);
  }, { timeoutMs: 20_000, message: `${series} on /metrics` });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    Number(await src.send(["XPENDING", KEY, GROUP]).then((r) => (r as unknown[])[0])),
    0,
  );
});
