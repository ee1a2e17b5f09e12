/**
 * TARGET_WAIT_REPLICAS: entries are acknowledged on the source only once a
 * replica of the target holds them; with the replica down nothing more is
 * acknowledged, and the copy resumes when it is back.
 */
import assert from "node:assert/strict";
import { spawnCli } from "../testing/cli.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import {
  addEntries,
  entriesDifference,
  pendingCount,
  replicationEnv,
  waitFor,
} from "./_replication.ts";

const GROUP = "redis-sync-group";
const KEY = "wait-stream";

Deno.test("TARGET_WAIT_REPLICAS=1: with the target's replica stopped nothing more is acknowledged, and all is when it returns", async () => {
  await using source = await RedisServer.start();
  // The replica's full syncs (at its start and its return) begin at once, not 5 s later.
  await using target = await RedisServer.start({ args: ["--repl-diskless-sync-delay", "0"] });
  await using replica = await RedisServer.start({
    args: ["--replicaof", "127.0.0.1", String(target.port)],
  });
  await using src = await connect(source);
  await using dst = await connect(target);
  const copyOnReplica = async (n: number) => {
    await using r = await connect(replica);
    return (await r.xrangeAll(KEY)).length === n;
  };
  await addEntries(src, KEY, 100);
  const metricsPort = freePort();
  /** Failed write attempts with NOREPLICAS so far, from the metrics. */
  const shortfalls = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split("\n").find((l) =>
      l.startsWith("redis_stream_sync_write_errors_total{") && l.includes('kind="NOREPLICAS"')
    );
    return line ? Number(line.split(" ").at(-1)) : 0;
  };
  await using cli = spawnCli(["run"], {
    env: replicationEnv(source, target, {
      TARGET_WAIT_REPLICAS: 1,
      TARGET_WAIT_TIMEOUT: 0.3,
      TARGET_REDIS_BACKOFF_MAX: 0.3,
      REDIS_DB_SEARCH_RANGE: "0",
      STREAM_DISCOVERY_PATTERNS: "wait-*",
      LOG_LEVEL: "WARNING",
      METRICS_PORT: metricsPort,
      METRICS_HOST: "127.0.0.1",
    }),
    timeoutMs: 180_000,
  });
  await waitFor(async () => await pendingCount(src, KEY, GROUP) === 0 && await copyOnReplica(100), {
    timeoutMs: 30_000,
    message: "100 entries acknowledged and on the replica",
  });

  await replica.stop();
  await addEntries(src, KEY, 50);
  // Written to the target, not confirmed by a replica: not acknowledged.
  await waitFor(async () => (await dst.xrangeAll(KEY)).length === 150, {
    timeoutMs: 30_000,
    message: "150 entries on the target",
  });
  await cli.waitForOutput(/not acknowledged yet: NOREPLICAS 0 of the 1 replicas/, 30_000);
  // Checked again after several more attempts: still nothing acknowledged.
  const before = await shortfalls();
  await waitFor(async () => await shortfalls() >= before + 3, {
    timeoutMs: 30_000,
    message: "three more attempts refused for want of a replica",
  });
  assert.equal(await pendingCount(src, KEY, GROUP), 50, "acknowledged while the replica was down");

  await replica.start();
  await waitFor(async () => await pendingCount(src, KEY, GROUP) === 0 && await copyOnReplica(150), {
    timeoutMs: 60_000,
    message: "all 150 acknowledged and on the replica after it returned",
  });
  const expected = await src.xrangeAll(KEY);
  assert.equal(entriesDifference(await dst.xrangeAll(KEY), expected), undefined);
  {
    await using r = await connect(replica);
    assert.equal(entriesDifference(await r.xrangeAll(KEY), expected), undefined);
  }
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
});
