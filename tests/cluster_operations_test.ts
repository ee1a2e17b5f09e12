/**
 * Redis Cluster in operation: a slot holding streams migrated to another
 * master during `run` (on the source and on the target), 1,000 streams
 * under a pool of 10 per master (connections counted on every node), two
 * instances sharing a cluster source, and `check` telling a cluster from
 * a single server.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../testing/cli.ts";
import {
  addMaster,
  ClusterTestClient,
  masterOf,
  migrateSlot,
  startCluster,
  startClusters,
  type TestCluster,
} from "../testing/cluster.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { makeCertificates } from "../testing/tls.ts";
import { delay, entriesDifference, replicationEnv, waitFor } from "./_replication.ts";

const GROUP = "redis-sync-group";

function clientOf(cluster: TestCluster): ClusterTestClient {
  return new ClusterTestClient(cluster.seed, { ports: cluster.nodes.map((n) => n.port) });
}

function clusterEnv(source: TestCluster, target: TestCluster, pattern: string) {
  return replicationEnv(source.seed, target.seed, {
    SOURCE_REDIS_CLUSTER: "true",
    TARGET_REDIS_CLUSTER: "true",
    STREAM_DISCOVERY_PATTERNS: pattern,
    LOG_LEVEL: "WARNING",
  });
}

async function exact(
  source: ClusterTestClient,
  target: ClusterTestClient,
  keys: readonly string[],
): Promise<string | undefined> {
  for (const key of keys) {
    const diff = entriesDifference(await target.xrangeAll(key), await source.xrangeAll(key));
    if (diff) return `${key}: ${diff}`;
    const pending = await source.send(key, ["XPENDING", key, GROUP]) as unknown[];
    if (Number(pending[0]) !== 0) return `${key}: ${pending[0]} pending`;
  }
  return undefined;
}

/** A master of `cluster` other than the one serving `key`. */
async function otherMaster(cluster: TestCluster, key: string): Promise<RedisServer> {
  const { master } = await masterOf(cluster, key);
  for (const probe of ["a", "b", "c", "d", "e", "f", "g", "h"]) {
    const m = (await masterOf(cluster, probe)).master;
    if (m !== master) return m;
  }
  throw new Error("one master only");
}

Deno.test("a slot holding streams migrates to another master during run under load, on the source and then on the target: the copy ends exact", async () => {
  const [sourceCluster, targetCluster] = await startClusters(2);
  await using source = sourceCluster;
  await using target = targetCluster;
  await using src = clientOf(source);
  await using dst = clientOf(target);
  // Six streams in one slot (a hash tag), and six elsewhere.
  const moving = Array.from({ length: 6 }, (_, i) => `rs:{moving}:${i}`);
  const keys = [...moving, ...Array.from({ length: 6 }, (_, i) => `rs:${i}:still`)];
  for (const key of keys) for (let i = 0; i < 200; i++) await src.xadd(key, { n: String(i) });
  const slot = Number(await src.send(moving[0], ["CLUSTER", "KEYSLOT", moving[0]]));
  await using cli = spawnCli(["run"], {
    env: clusterEnv(source, target, "rs:*"),
    timeoutMs: 240_000,
  });
  await waitFor(async () => (await exact(src, dst, keys)) === undefined, {
    timeoutMs: 60_000,
    message: "the backlog copied",
  });
  const stop = new AbortController();
  const load = (async () => {
    let n = 0;
    while (!stop.signal.aborted) {
      for (const key of keys) await src.xadd(key, { n: `live-${n}` }).catch(() => delay(20));
      n++;
    }
    return n;
  })();
  // Key by key, 300 ms apart: the slot is half moved for about two seconds.
  const sourceFrom = (await masterOf(source, moving[0])).master;
  const sourceTo = await otherMaster(source, moving[0]);
  await migrateSlot(source, slot, sourceTo, { batch: 1, pauseMs: 300 });
  assert.notEqual((await masterOf(source, moving[0])).master, sourceFrom);
  const targetFrom = (await masterOf(target, moving[0])).master;
  await migrateSlot(target, slot, await otherMaster(target, moving[0]), { batch: 1, pauseMs: 300 });
  assert.notEqual((await masterOf(target, moving[0])).master, targetFrom);
  await delay(500);
  stop.abort();
  assert.ok(await load > 0);
  await waitFor(async () => (await exact(src, dst, keys)) === undefined, {
    timeoutMs: 60_000,
    message: "an exact copy after both migrations",
  });
  // The status names the new master of a moved stream on each side.
  const status = await runCli(["status", "--json"], {
    env: clusterEnv(source, target, "rs:*"),
    timeoutMs: 60_000,
  });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout).streams as Array<Record<string, string>>;
  const row = rows.find((r) => r.key === moving[0])!;
  assert.equal(row.sourceNode, `127.0.0.1:${sourceTo.port}`);
  assert.equal(row.state, "in-sync");
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst, keys), undefined);
});

/** Connections of the tool on `node`, by the name's role part (`reader0`, `events`, `control`...). */
async function toolConnections(node: RedisServer): Promise<string[]> {
  await using c = await connect(node);
  return (await c.clientList())
    .map((r) => r.name ?? "")
    .filter((name) => name.startsWith("redis-stream-sync-"));
}

Deno.test("1,000 streams over a cluster under a pool of 10 per master: at most 10 plus one control connection on every node, sampled while copying", async () => {
  const [sourceCluster, targetCluster] = await startClusters(2);
  await using source = sourceCluster;
  await using target = targetCluster;
  await using src = clientOf(source);
  await using dst = clientOf(target);
  for (const node of source.nodes) {
    await using c = await connect(node);
    await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
  }
  const keys = Array.from({ length: 1000 }, (_, i) => `many:${i}`);
  // One pipeline per master: grouped by the node that answers without a redirection.
  await Promise.all(keys.map((key) => src.xadd(key, { n: "0" })));
  await using cli = spawnCli(["run"], {
    env: {
      ...clusterEnv(source, target, "many:*"),
      SOURCE_REDIS_POOL_SIZE: "10",
      TARGET_REDIS_POOL_SIZE: "10",
    },
    timeoutMs: 300_000,
  });
  let most = 0;
  const sample = async () => {
    for (const node of [...source.nodes, ...target.nodes]) {
      const names = await toolConnections(node);
      most = Math.max(most, names.length);
      assert.ok(names.length <= 11, `node ${node.port}: ${names.length} connections: ${names}`);
    }
  };
  await waitFor(async () => {
    await sample();
    for (let i = 0; i < keys.length; i += 97) {
      if ((await dst.xrangeAll(keys[i])).length !== 1) return false;
    }
    return true;
  }, { timeoutMs: 120_000, message: "the 1,000 streams under way" });
  // Live entries on many streams, spread over every master.
  for (let i = 0; i < keys.length; i += 10) await src.xadd(keys[i], { n: "1" });
  await waitFor(async () => {
    await sample();
    for (let i = 0; i < keys.length; i += 10) {
      if ((await dst.xrangeAll(keys[i])).length !== 2) return false;
    }
    return true;
  }, { timeoutMs: 120_000, message: "the live entries copied" });
  await sample();
  // The bound is used (readers and the subscriber on each source master).
  assert.ok(most >= 5, `at most ${most} connections on a node`);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst, keys.filter((_, i) => i % 50 === 0)), undefined);
});

Deno.test("two instances share a cluster source: each copies some streams, together every stream exactly once", async () => {
  await using source = await startCluster();
  await using target = await RedisServer.start();
  await using src = clientOf(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 30 }, (_, i) => `two:${i}`);
  for (const key of keys) for (let i = 0; i < 100; i++) await src.xadd(key, { n: String(i) });
  const env = (id: string) =>
    replicationEnv(source.seed, target, {
      SOURCE_REDIS_CLUSTER: "true",
      STREAM_DISCOVERY_PATTERNS: "two:*",
      STREAM_LEASE_TTL: "3",
      INSTANCE_ID: id,
      LOG_LEVEL: "WARNING",
    });
  await using one = spawnCli(["run"], { env: env("one"), timeoutMs: 240_000 });
  await using two = spawnCli(["run"], { env: env("two"), timeoutMs: 240_000 });
  const copied = async () => {
    for (const key of keys) {
      const diff = entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key));
      if (diff) return false;
      const pending = await src.send(key, ["XPENDING", key, GROUP]) as unknown[];
      if (Number(pending[0]) !== 0) return false;
    }
    return true;
  };
  await waitFor(copied, { timeoutMs: 90_000, message: "the backlog copied by the two" });
  for (const key of keys) for (let i = 0; i < 20; i++) await src.xadd(key, { n: `live-${i}` });
  await waitFor(copied, { timeoutMs: 60_000, message: "the live entries copied by the two" });
  // Both hold leases (each lease key in its stream's slot): the streams are shared, as
  // `status` shows it from the cluster.
  await waitFor(async () => {
    const status = await runCli(["status", "--json"], { env: env("status"), timeoutMs: 60_000 });
    if (status.code !== 0) return false;
    const rows = JSON.parse(status.stdout).streams as Array<Record<string, string>>;
    const owners = new Set(rows.map((r) => r.owner));
    return rows.length === keys.length && owners.has("one") && owners.has("two");
  }, { timeoutMs: 90_000, message: "both instances holding leases" });
  for (const key of keys) for (let i = 0; i < 20; i++) await src.xadd(key, { n: `more-${i}` });
  await waitFor(copied, { timeoutMs: 60_000, message: "what came after the hand-over copied" });
  one.signal("SIGTERM");
  two.signal("SIGTERM");
  assert.equal((await one.wait()).code, 0);
  assert.equal((await two.wait()).code, 0);
  assert.ok(await copied());
});

Deno.test("check exits 78 when *_REDIS_CLUSTER does not match the server, naming the key", async () => {
  await using cluster = await startCluster();
  await using single = await RedisServer.start();
  const notCluster = await runCli(["check"], {
    env: replicationEnv(cluster.seed, single, {
      REDIS_DB_SEARCH_RANGE: "0",
    }),
  });
  assert.equal(notCluster.code, 78, notCluster.stderr);
  assert.match(
    notCluster.stderr,
    /is a Redis Cluster node \(cluster_enabled:1\): set SOURCE_REDIS_CLUSTER=true/,
  );
  const wrongly = await runCli(["check"], {
    env: replicationEnv(cluster.seed, single, {
      SOURCE_REDIS_CLUSTER: "true",
      TARGET_REDIS_CLUSTER: "true",
    }),
  });
  assert.equal(wrongly.code, 78, wrongly.stderr);
  assert.match(
    wrongly.stderr,
    /TARGET_REDIS_CLUSTER is true, but the target "127\.0\.0\.1:\d+" is not a cluster node/,
  );
  const ok = await runCli(["check"], {
    env: replicationEnv(cluster.seed, single, {
      SOURCE_REDIS_CLUSTER: "true",
    }),
  });
  assert.equal(ok.code, 0, ok.stderr);
});

Deno.test("a master added during run and given a slot with streams: the copy follows it (its streams read there, notifications included)", async () => {
  await using source = await startCluster();
  await using target = await RedisServer.start();
  await using src = clientOf(source);
  await using dst = await connect(target);
  for (const node of source.nodes) {
    await using c = await connect(node);
    await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
  }
  const moving = Array.from({ length: 4 }, (_, i) => `add:{new}:${i}`);
  const keys = [...moving, "add:a", "add:b", "add:c"];
  for (const key of keys) for (let i = 0; i < 100; i++) await src.xadd(key, { n: String(i) });
  const slot = Number(await src.send(moving[0], ["CLUSTER", "KEYSLOT", moving[0]]));
  const same = async () => {
    for (const key of keys) {
      if (entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key))) return false;
      const pending = await src.send(key, ["XPENDING", key, GROUP]) as unknown[];
      if (Number(pending[0]) !== 0) return false;
    }
    return true;
  };
  await using cli = spawnCli(["run"], {
    env: replicationEnv(source.seed, target, {
      SOURCE_REDIS_CLUSTER: "true",
      STREAM_DISCOVERY_PATTERNS: "add:*",
      // Sweeps far apart: entries on the new master arrive by its subscriber's notifications.
      STREAM_POLL_INTERVAL: "30",
      LOG_LEVEL: "WARNING",
    }),
    timeoutMs: 240_000,
  });
  await waitFor(same, { timeoutMs: 60_000, message: "the backlog copied" });
  const added = await addMaster(source);
  {
    await using c = await connect(added);
    await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
  }
  await migrateSlot(source, slot, added, { batch: 2, pauseMs: 200 });
  assert.equal((await masterOf(source, moving[0])).master, added);
  // The layout refresh (every 5 s) sees the new master: its streams are read there, and its
  // notifications listened to.
  await waitFor(async () => {
    const names = await subscribedNames(added);
    return names.some((x) => x.startsWith("redis-stream-sync-events")) &&
      names.some((x) => x.startsWith("redis-stream-sync-reader"));
  }, {
    timeoutMs: 20_000,
    message: "a reader and a subscribed events connection on the new master",
  });
  for (const key of moving) await src.xadd(key, { n: "on-the-new-master" });
  await waitFor(same, {
    timeoutMs: 15_000,
    message: "entries on the new master copied (by notification: the sweep is 30 s away)",
  });
  await using n = await connect(added);
  const names = (await n.clientList()).map((r) => r.name ?? "");
  assert.ok(names.some((x) => x.startsWith("redis-stream-sync-events")), names.join(","));
  assert.ok(names.some((x) => x.startsWith("redis-stream-sync-reader")), names.join(","));
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
});

Deno.test("a cluster reached over TLS with the seed's settings only: the nodes it discovers are reached over TLS too, and the copy is exact", async () => {
  await using certs = await makeCertificates();
  await using source = await startCluster({ tls: certs });
  await using target = await RedisServer.start();
  await using src = clientOf(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 12 }, (_, i) => `tls-cl:${i}`);
  await spreadCheck(src, keys);
  for (const key of keys) for (let i = 0; i < 30; i++) await src.xadd(key, { n: String(i) });
  const env = replicationEnv({ host: "127.0.0.1", port: source.tlsPorts![0] }, target, {
    SOURCE_REDIS_CLUSTER: "true",
    SOURCE_REDIS_TLS: "true",
    SOURCE_REDIS_TLS_CA_FILE: certs.ca,
    STREAM_DISCOVERY_PATTERNS: "tls-cl:*",
  });
  const result = await runCli(["run", "--once"], { env, timeoutMs: 120_000 });
  assert.equal(result.code, 0, result.stderr);
  for (const key of keys) {
    assert.equal(entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key)), undefined);
  }
  // Over TLS the nodes announce their TLS ports: the tool read from each master there.
  const status = await runCli(["status", "--json"], { env, timeoutMs: 60_000 });
  assert.equal(status.code, 0, status.stderr);
  const nodes = new Set(
    (JSON.parse(status.stdout).streams as Array<Record<string, string>>).map((r) => r.sourceNode),
  );
  const tlsMasters = source.tlsPorts!.slice(0, 3).map((p) => `127.0.0.1:${p}`);
  assert.deepEqual([...nodes].sort(), [...tlsMasters].sort());
});

/** The names of the connections on `node`; an events connection counts once it has subscribed. */
async function subscribedNames(node: RedisServer): Promise<string[]> {
  await using c = await connect(node);
  return (await c.clientList())
    .filter((r) =>
      !(r.name ?? "").startsWith("redis-stream-sync-events") ||
      Number(r.sub ?? 0) + Number(r.psub ?? 0) + Number(r.ssub ?? 0) > 0
    )
    .map((r) => r.name ?? "");
}

/** The keys cover every master (checked through the test's own client). */
async function spreadCheck(src: ClusterTestClient, keys: string[]): Promise<void> {
  const slots = await Promise.all(
    keys.map(async (k) => Number(await src.send(k, ["CLUSTER", "KEYSLOT", k]))),
  );
  const ranges = await src.send(keys[0], ["CLUSTER", "SLOTS"]) as unknown[][];
  const owners = new Set(
    slots.map((s) => ranges.findIndex((r) => Number(r[0]) <= s && s <= Number(r[1]))),
  );
  assert.equal(owners.size, 3, "the keys do not cover every master");
}
