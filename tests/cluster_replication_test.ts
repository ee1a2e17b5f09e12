/**
 * Redis Cluster on either side (three masters, three replicas, started by
 * the tests), streams spread over every master: standalone -> cluster,
 * cluster -> standalone and cluster -> cluster, with `run --once` and live.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../testing/cli.ts";
import { ClusterTestClient, startCluster, startClusters } from "../testing/cluster.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import { entriesDifference, FAST_SETTINGS, waitFor } from "./_replication.ts";

const GROUP = "redis-sync-group";

/** 24 streams whose names spread them over all masters, two of them with a shared hash tag. */
const KEYS = [
  ...Array.from({ length: 20 }, (_, i) => `cl:${i}:events`),
  "cl:{tag}:a",
  "cl:{tag}:b",
  "cl:bin:\u00e9\u00ff",
  "cl:sp ace",
];

type Side = ClusterTestClient | TestClient;

async function send(side: Side, key: string, args: (string | Uint8Array)[]): Promise<unknown> {
  return side instanceof ClusterTestClient ? await side.send(key, args) : await side.send(args);
}

async function entriesOf(side: Side, key: string) {
  return await side.xrangeAll(key);
}

/** Adds `count` entries to every key, with binary values and a field repeated. */
async function addAll(side: Side, count: number, phase: string): Promise<void> {
  for (const key of KEYS) {
    for (let n = 0; n < count; n++) {
      await send(side, key, [
        "XADD",
        key,
        "*",
        "n",
        String(n),
        "phase",
        phase,
        "bin",
        new Uint8Array([0, 255, 13, 10, n % 256]),
        "n",
        "again",
      ]);
    }
  }
}

/** Whether every target stream equals its source stream and nothing is pending on the source. */
async function exact(source: Side, target: Side): Promise<string | undefined> {
  for (const key of KEYS) {
    const diff = entriesDifference(await entriesOf(target, key), await entriesOf(source, key));
    if (diff) return `${key}: ${diff}`;
    const pending = await send(source, key, ["XPENDING", key, GROUP]) as unknown[];
    if (Number(pending[0]) !== 0) return `${key}: ${pending[0]} pending`;
  }
  return undefined;
}

function sideEnv(
  prefix: "SOURCE" | "TARGET",
  at: { host: string; port: number },
  cluster: boolean,
) {
  return {
    [`${prefix}_REDIS_HOST`]: at.host,
    [`${prefix}_REDIS_PORT`]: String(at.port),
    ...(cluster ? { [`${prefix}_REDIS_CLUSTER`]: "true" } : {}),
  };
}

const BASE = {
  ...FAST_SETTINGS,
  STREAM_DISCOVERY_PATTERNS: "cl:*",
  REDIS_DB_SEARCH_RANGE: "0",
  LOG_LEVEL: "WARNING",
};

/** Every master of `cluster` holds at least one of `KEYS`. */
async function spreadOverMasters(c: ClusterTestClient, masters: number): Promise<void> {
  const slots = await Promise.all(
    KEYS.map(async (k) => Number(await c.send(k, ["CLUSTER", "KEYSLOT", k]))),
  );
  const ranges = await c.send(KEYS[0], ["CLUSTER", "SLOTS"]) as unknown[][];
  const owners = new Set(
    slots.map((s) => ranges.findIndex((r) => Number(r[0]) <= s && s <= Number(r[1]))),
  );
  assert.equal(owners.size, masters, "the test's streams do not cover every master");
}

Deno.test("standalone -> cluster: run --once copies every stream exactly onto the masters that own them, and their consumer groups with their pending entries (STREAM_GROUPS_SYNC_PENDING)", async () => {
  await using cluster = await startCluster();
  await using source = await RedisServer.start();
  await using src = await connect(source);
  await using dst = new ClusterTestClient(cluster.seed);
  await spreadOverMasters(dst, 3);
  await addAll(src, 30, "backlog");
  // An application's group on each stream: 10 entries delivered to "c1", not acknowledged.
  const delivered = new Map<string, string[]>();
  for (const key of KEYS) {
    await src.send(["XGROUP", "CREATE", key, "app", "0"]);
    const reply = await src.send([
      "XREADGROUP",
      "GROUP",
      "app",
      "c1",
      "COUNT",
      "10",
      "STREAMS",
      key,
      ">",
    ]) as [string, [string, unknown][]][];
    delivered.set(key, reply[0][1].map(([id]) => id));
  }
  const result = await runCli(["run", "--once"], {
    env: {
      ...BASE,
      ...sideEnv("SOURCE", source, false),
      ...sideEnv("TARGET", cluster.seed, true),
      STREAM_GROUPS_SYNC: "app",
      STREAM_GROUPS_SYNC_PENDING: "true",
    },
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst), undefined);
  // Each stream is on its own master (no MOVED left behind, no key on a wrong node).
  for (const key of KEYS) assert.equal((await dst.xrangeAll(key)).length, 30);
  for (const key of KEYS) {
    const ids = delivered.get(key)!;
    const groups = await dst.send(key, ["XINFO", "GROUPS", key]) as unknown[][];
    assert.deepEqual(groups.map((g) => [g[1], g[7]]), [["app", ids.at(-1)]], key);
    const pel = await dst.send(key, ["XPENDING", key, "app", "-", "+", "100"]) as unknown[][];
    assert.deepEqual(pel.map(([id, consumer]) => `${id} ${consumer}`), ids.map((id) => `${id} c1`));
  }
});

Deno.test("cluster -> standalone: run --once copies the streams of every master exactly, nothing pending", async () => {
  await using cluster = await startCluster();
  await using target = await RedisServer.start();
  await using src = new ClusterTestClient(cluster.seed);
  await using dst = await connect(target);
  await addAll(src, 30, "backlog");
  const result = await runCli(["run", "--once"], {
    env: { ...BASE, ...sideEnv("SOURCE", cluster.seed, true), ...sideEnv("TARGET", target, false) },
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst), undefined);
});

Deno.test("cluster -> cluster live without leases: a backlog and then entries added while running are copied exactly, with notifications on", async () => {
  const [sourceCluster, targetCluster] = await startClusters(2);
  await using source = sourceCluster;
  await using target = targetCluster;
  await using src = new ClusterTestClient(source.seed);
  await using dst = new ClusterTestClient(target.seed);
  for (const node of source.nodes) {
    await using c = await connect(node);
    await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
  }
  await addAll(src, 20, "backlog");
  const metricsPort = freePort();
  await using cli = spawnCli(["run"], {
    env: {
      ...BASE,
      ...sideEnv("SOURCE", source.seed, true),
      ...sideEnv("TARGET", target.seed, true),
      // A sweep far away: what is copied quickly was found by a notification.
      STREAM_POLL_INTERVAL: "30",
      // Plain XREADGROUP per slot (the fenced reads are in the other cluster tests), and no
      // lease registration before the readers start.
      STREAM_LEASES: "false",
      LOG_LEVEL: "INFO",
      METRICS_PORT: String(metricsPort),
    },
    timeoutMs: 180_000,
  });
  await waitFor(async () => (await exact(src, dst)) === undefined, {
    timeoutMs: 60_000,
    message: "the backlog copied",
  });
  await addAll(src, 5, "live");
  await waitFor(async () => (await exact(src, dst)) === undefined, {
    timeoutMs: 20_000,
    message: "the live entries copied (by notifications: the sweep is 30 s away)",
  });
  // Per-node health in the metrics: each master of both clusters, up.
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  for (const [server, cluster] of [["source", source], ["target", target]] as const) {
    for (const node of cluster.nodes.slice(0, 3)) {
      assert.match(
        metrics,
        new RegExp(
          `^redis_stream_sync_node_up\\{server="${server}",node="127\\.0\\.0\\.1:${node.port}"\\} 1$`,
          "m",
        ),
      );
    }
  }
  assert.match(metrics, /^redis_stream_sync_server_up\{server="source"\} 1$/m);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await exact(src, dst), undefined);
  assert.doesNotMatch(result.stderr, /sends no stream notifications/);
});
