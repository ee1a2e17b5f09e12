/**
 * Failovers of a Redis Cluster during `run` under load: on the source and,
 * separately, on the target, a master handing over with `CLUSTER FAILOVER`
 * and another one SIGKILLed (its replica promoted by the cluster). The copy
 * follows the new masters and ends exact, with nothing pending.
 */
import assert from "node:assert/strict";
import { spawnCli } from "../testing/cli.ts";
import {
  clusterFailover,
  ClusterTestClient,
  killMaster,
  masterOf,
  startCluster,
  type TestCluster,
} from "../testing/cluster.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import { RedisConnection } from "../lib/redis/connection.ts";
import { confirmReplicas } from "../lib/replication/write/_replica_wait.ts";
import { delay, entriesDifference, FAST_SETTINGS, waitFor } from "./_replication.ts";

const GROUP = "redis-sync-group";
const KEYS = Array.from({ length: 12 }, (_, i) => `fo:${i}:stream`);

type Side = ClusterTestClient | TestClient;

function sendTo(side: Side, key: string, args: string[]): Promise<unknown> {
  return side instanceof ClusterTestClient ? side.send(key, args) : side.send(args);
}

/** Adds entries to every key, round after round, until `stop` aborts (failures retried). */
async function produce(side: Side, stop: AbortSignal, phase: string): Promise<number> {
  let added = 0;
  for (let n = 0; !stop.aborted; n++) {
    for (const key of KEYS) {
      try {
        await sendTo(side, key, ["XADD", key, "*", "n", String(n), "phase", phase]);
        added++;
      } catch {
        await delay(50); // a master failing over: the next try finds the new one
      }
    }
  }
  return added;
}

async function exact(source: Side, target: Side): Promise<string | undefined> {
  for (const key of KEYS) {
    const diff = entriesDifference(await target.xrangeAll(key), await source.xrangeAll(key));
    if (diff) return `${key}: ${diff}`;
    const pending = await sendTo(source, key, ["XPENDING", key, GROUP]) as unknown[];
    if (Number(pending[0]) !== 0) return `${key}: ${pending[0]} pending`;
  }
  return undefined;
}

function clientOf(cluster: TestCluster): ClusterTestClient {
  return new ClusterTestClient(cluster.seed, { ports: cluster.nodes.map((n) => n.port) });
}

/** Two keys of `KEYS` on different masters: one for the graceful failover, one for the kill. */
async function twoMasters(cluster: TestCluster): Promise<[string, string]> {
  const first = await masterOf(cluster, KEYS[0]);
  for (const key of KEYS) {
    if ((await masterOf(cluster, key)).master !== first.master) return [KEYS[0], key];
  }
  throw new Error("every test key is on one master");
}

/** Waits until the replica of `key`'s master has every write of it (WAIT). */
async function replicated(cluster: TestCluster, key: string): Promise<void> {
  const { master } = await masterOf(cluster, key);
  await using m = await connect(master);
  assert.equal(Number(await m.send(["WAIT", "1", "10000"])), 1);
}

const BASE = {
  ...FAST_SETTINGS,
  STREAM_DISCOVERY_PATTERNS: "fo:*",
  REDIS_DB_SEARCH_RANGE: "0",
  LOG_LEVEL: "WARNING",
};

Deno.test("a cluster source: CLUSTER FAILOVER of one master and a SIGKILLed other master during run under load; the copy ends exact, nothing pending", async () => {
  await using cluster = await startCluster();
  await using target = await RedisServer.start();
  await using src = clientOf(cluster);
  await using dst = await connect(target);
  const [graceful, killed] = await twoMasters(cluster);
  for (const key of KEYS) {
    for (let i = 0; i < 300; i++) await src.xadd(key, { n: String(i), phase: "backlog" });
  }
  await using cli = spawnCli(["run"], {
    env: {
      ...BASE,
      SOURCE_REDIS_HOST: cluster.seed.host,
      SOURCE_REDIS_PORT: String(cluster.seed.port),
      SOURCE_REDIS_CLUSTER: "true",
      TARGET_REDIS_HOST: target.host,
      TARGET_REDIS_PORT: String(target.port),
    },
    timeoutMs: 240_000,
  });
  await waitFor(async () => (await dst.xrangeAll(KEYS[0])).length > 0, {
    timeoutMs: 30_000,
    message: "the copy under way",
  });
  // Load through a graceful failover: the replica takes over once it has every write.
  let stop = new AbortController();
  let load = produce(src, stop.signal, "graceful");
  await delay(500);
  await clusterFailover(cluster, await masterOf(cluster, graceful));
  await delay(500);
  stop.abort();
  assert.ok(await load > 0);
  // A master killed: what it had not sent to its replica would be lost with it, whatever
  // copies it (not what is tested), so the load pauses until the replica has it all.
  await replicated(cluster, killed);
  await killMaster(cluster, await masterOf(cluster, killed));
  stop = new AbortController();
  load = produce(src, stop.signal, "after-kill");
  await delay(1000);
  stop.abort();
  assert.ok(await load > 0);
  await waitFor(async () => (await exact(src, dst)) === undefined, {
    timeoutMs: 90_000,
    message: "an exact copy of the source after both failovers, nothing pending",
  });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst), undefined);
});

Deno.test("a cluster target with TARGET_WAIT_REPLICAS=1: CLUSTER FAILOVER of one master and a SIGKILLed other master during run under load; the copy ends exact", async () => {
  await using cluster = await startCluster();
  await using source = await RedisServer.start();
  await using src = await connect(source);
  await using dst = clientOf(cluster);
  const [graceful, killed] = await twoMasters(cluster);
  for (const key of KEYS) {
    for (let i = 0; i < 300; i++) await src.xadd(key, "*", { n: String(i), phase: "backlog" });
  }
  await using cli = spawnCli(["run"], {
    env: {
      ...BASE,
      SOURCE_REDIS_HOST: source.host,
      SOURCE_REDIS_PORT: String(source.port),
      TARGET_REDIS_HOST: cluster.seed.host,
      TARGET_REDIS_PORT: String(cluster.seed.port),
      TARGET_REDIS_CLUSTER: "true",
      // An entry is acked once its master's replica has it too: a killed master loses nothing.
      TARGET_WAIT_REPLICAS: "1",
      TARGET_WAIT_TIMEOUT: "1",
    },
    timeoutMs: 240_000,
  });
  await waitFor(async () => (await dst.xrangeAll(KEYS[0])).length > 0, {
    timeoutMs: 30_000,
    message: "the copy under way",
  });
  const stop = new AbortController();
  const load = produce(src, stop.signal, "live");
  await delay(500);
  await clusterFailover(cluster, await masterOf(cluster, graceful));
  await delay(500);
  // Its replica promoted has no replica of its own until the killed node is back as one
  // (until then TARGET_WAIT_REPLICAS=1 keeps its entries unacknowledged, as it must).
  await killMaster(cluster, await masterOf(cluster, killed), { rejoin: true });
  await delay(1000);
  stop.abort();
  assert.ok(await load > 0);
  await waitFor(async () => (await exact(src, dst)) === undefined, {
    timeoutMs: 90_000,
    message: "an exact copy on the new masters, nothing pending",
  });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst), undefined);
});

Deno.test("the careful write's replica check on a cluster covers what another connection wrote: with the replica stopped it is refused, and passes once it is back", async () => {
  await using cluster = await startCluster();
  const key = "wait:{careful}";
  const { master, replica } = await masterOf(cluster, key);
  await using writer = await connect(master);
  await using r = await connect(replica!);
  const pid = Number(/process_id:(\d+)/.exec(String(await r.send(["INFO", "server"])))![1]);
  const conn = new RedisConnection({ role: "target", host: master.host, port: master.port });
  try {
    // Open before the write below (a connection's WAIT covers what the server had when it
    // connected, and what it wrote itself).
    await conn.connect();
    // The replica has acknowledged all the master has so far (acks come every second):
    // only what is written after the stop is missing on it.
    await waitFor(async () => {
      const info = String(await writer.send(["INFO", "replication"]));
      const master = Number(/master_repl_offset:(\d+)/.exec(info)![1]);
      return Number(/slave0:.*offset=(\d+)/.exec(info)?.[1] ?? -1) >= master;
    }, { timeoutMs: 10_000, message: "the replica up to date" });
    // An entry written on another connection while the replica cannot take it.
    Deno.kill(pid, "SIGSTOP");
    await writer.send(["XADD", key, "*", "n", "1"]);
    await assert.rejects(
      confirmReplicas(conn, 0, { replicas: 1, timeoutMs: 300 }),
      /NOREPLICAS 0 of the 1 replicas/,
    );
    Deno.kill(pid, "SIGCONT");
    await confirmReplicas(conn, 0, { replicas: 1, timeoutMs: 5000 });
  } finally {
    try {
      Deno.kill(pid, "SIGCONT");
    } catch {
      // running already
    }
    conn.close();
  }
});
