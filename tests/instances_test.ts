/**
 * Several instances with the same configuration at once (STREAM_LEASES,
 * the default): the streams are shared through leases on the source,
 * handed over when instances come and go, and a paused instance that lost
 * its leases never writes out of order. Every test ends with an exact copy
 * (IDs and bytes) and nothing pending.
 */
import assert from "node:assert/strict";
import { type CliProcess, runCli, spawnCli } from "../testing/cli.ts";
import { prng, Producer } from "../testing/producer.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import { delay, entriesDifference, replicationEnv, waitFor } from "./_replication.ts";
import { LEASE_KEY_PREFIX, leaseKey } from "../lib/replication/sharing/lease_key.ts";

const GROUP = "redis-sync-group";
const RUN_TIMEOUT_MS = 240_000;

/** The instances' settings: short lease TTL and fast passes, INFO logs (lease lines). */
function instancesEnv(
  source: RedisServer,
  target: RedisServer,
  extra: Record<string, string> = {},
): Record<string, string> {
  return replicationEnv(source, target, {
    STREAM_LEASE_TTL: "2",
    LOG_LEVEL: "INFO",
    REDIS_DB_SEARCH_RANGE: "0",
    SOURCE_REDIS_MAX_RETRIES: "20",
    TARGET_REDIS_MAX_RETRIES: "20",
    ...extra,
  });
}

/** Two servers, a client of each, `n` streams and a producer for them (seeded). */
class Scene implements AsyncDisposable {
  private constructor(
    readonly source: RedisServer,
    readonly target: RedisServer,
    readonly src: TestClient,
    readonly dst: TestClient,
    readonly keys: string[],
    readonly producer: Producer,
  ) {}

  static async start(n: number, seed: number): Promise<Scene> {
    const source = await RedisServer.start();
    const target = await RedisServer.start();
    const src = await connect(source);
    const dst = await connect(target);
    const keys = streamKeys(n);
    return new Scene(source, target, src, dst, keys, new Producer(source, keys, prng(seed)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.producer.stop();
    await this.dst[Symbol.asyncDispose]();
    await this.src[Symbol.asyncDispose]();
    await this.target[Symbol.asyncDispose]();
    await this.source[Symbol.asyncDispose]();
  }
}

function streamKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `inst-${String(i).padStart(3, "0")}-stream`);
}

/** Every stream of `keys` is the same on both sides (IDs, bytes) and nothing is pending. */
async function assertExactCopy(
  src: TestClient,
  dst: TestClient,
  keys: string[],
  context: () => string,
) {
  for (const key of keys) {
    const [a, b] = [await src.xrangeAll(key), await dst.xrangeAll(key)];
    assert.ok(a.length > 0, `${key} is empty on the source`);
    const difference = entriesDifference(b, a);
    assert.equal(
      difference,
      undefined,
      `${key} differs on the target: ${difference}\n${context()}`,
    );
    const pending = await src.send(["XPENDING", key, GROUP]) as unknown[];
    assert.equal(Number(pending[0]), 0, `${key}: entries still pending\n${context()}`);
  }
}

/** Waits until every stream of `keys` has as many entries on the target as on the source. */
async function waitCopied(src: TestClient, dst: TestClient, keys: string[], context: () => string) {
  await waitFor(async () => {
    for (const key of keys) {
      const [a, b] = [await src.send(["XLEN", key]), await dst.send(["XLEN", key])];
      if (Number(a) !== Number(b)) return false;
      const pending = await src.send(["XPENDING", key, GROUP]) as unknown[];
      if (Number(pending[0]) !== 0) return false;
    }
    return true;
  }, { timeoutMs: 90_000, intervalMs: 200, message: `every stream copied\n${context()}` });
}

/** The instance that holds each of `keys` (its bucket's lease), by stream key; held ones only. */
async function leaseHolders(
  src: TestClient,
  keys: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of keys) {
    const lease = new TextDecoder().decode(
      leaseKey(new TextEncoder().encode(key), { group: GROUP }),
    );
    const value = await src.send(["GET", lease]);
    if (typeof value === "string") out.set(key, value.split("/")[0]);
  }
  return out;
}

/** How many bucket leases of the group exist on the source. */
async function bucketLeases(src: TestClient): Promise<number> {
  let cursor = "0", n = 0;
  do {
    const [next, found] = await src.send([
      "SCAN",
      cursor,
      "MATCH",
      `${LEASE_KEY_PREFIX}*:${GROUP}:*`,
      "COUNT",
      "1000",
    ]) as [string, string[]];
    cursor = next;
    n += found.length;
  } while (cursor !== "0");
  return n;
}

/** Whether the registry entry of instance `id` has expired by the source's clock (or is gone). */
async function registryExpired(src: TestClient, id: string): Promise<boolean> {
  const value = await src.send([
    "HGET",
    `redis-stream-sync:instances:${GROUP.length}:${GROUP}`,
    id,
  ]);
  if (typeof value !== "string") return true;
  const [seconds, micros] = await src.send(["TIME"]) as [string, string];
  return Number(value.split(":")[0]) <= Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

function assertNoStop(instances: CliProcess[]): void {
  for (const cli of instances) {
    assert.doesNotMatch(cli.stderr(), /Stopped replicating|ERROR/, cli.stderr().slice(-3000));
  }
}

/**
 * SIGTERM to every instance: each exits 0 without stopping a stream, and
 * the copy is exact with nothing pending.
 */
async function stopAndCheck(
  instances: CliProcess[],
  copy: { src: TestClient; dst: TestClient; keys: string[] },
  context: () => string,
): Promise<void> {
  for (const cli of instances) cli.signal("SIGTERM");
  for (const cli of instances) assert.equal((await cli.wait()).code, 0, context());
  assertNoStop(instances);
  await assertExactCopy(copy.src, copy.dst, copy.keys, context);
}

function logsOf(instances: CliProcess[]): () => string {
  return () =>
    instances.map((cli, i) => `--- instance ${i} ---\n${cli.stderr().slice(-2500)}`).join("\n");
}

Deno.test("two instances started together under a producer: exact copy, no stream stopped, nothing pending", async () => {
  await using scene = await Scene.start(8, 9);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runCount(20_000, 250, 5);
  const env = instancesEnv(source, target);
  await using a = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  await using b = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  const context = logsOf([a, b]);
  await producing;
  await waitCopied(src, dst, keys, context);
  // Both instances are in the group under their own consumer names.
  const holders = new Set((await leaseHolders(src, keys)).values());
  assert.equal(holders.size, 2, `leases held by ${[...holders].join(", ")}\n${context()}`);
  await stopAndCheck([a, b], { src, dst, keys }, context);
  // Leases are given back at shutdown.
  assert.equal(await bucketLeases(src), 0, context());
});

Deno.test("three instances on 100 streams share them; one SIGKILLed mid-way, the others take its streams and finish the copy exactly", async () => {
  await using scene = await Scene.start(100, 11);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runRate(3000);
  const env = instancesEnv(source, target);
  const ports = [freePort(), freePort(), freePort()];
  const start = (port: number) =>
    spawnCli(["run"], { env: { ...env, METRICS_PORT: String(port) }, timeoutMs: RUN_TIMEOUT_MS });
  await using a = start(ports[0]);
  await using b = start(ports[1]);
  await using c = start(ports[2]);
  const context = logsOf([a, b, c]);
  // Shared: each of the three holds some of the 100 leases, and no stream is without one.
  let counts = new Map<string, number>();
  await waitFor(async () => {
    const holders = await leaseHolders(src, keys);
    counts = new Map();
    for (const h of holders.values()) counts.set(h, (counts.get(h) ?? 0) + 1);
    return holders.size === 100 && counts.size === 3;
  }, { timeoutMs: 60_000, message: `100 leases over 3 instances\n${context()}` });
  for (const [id, n] of counts) assert.ok(n >= 10, `instance ${id} holds ${n} of 100 streams`);
  // Each instance's metrics say how many it holds; `status` names each stream's owner.
  const held = async (port: number) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^redis_stream_sync_leases_held (\d+)$/m.exec(text)?.[1] ?? NaN);
  };
  await waitFor(async () => {
    const [x, y, z] = await Promise.all(ports.map(held));
    return x + y + z === 100 && x > 0 && y > 0 && z > 0;
  }, { timeoutMs: 20_000, message: `leases_held of the three add up to 100\n${context()}` });
  const status = await runCli(["status", "--json"], { env });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout).streams as Array<{ key: string; owner: string }>;
  const owners = new Set(rows.filter((r) => keys.includes(r.key)).map((r) => r.owner));
  assert.deepEqual([...owners].sort(), [...counts.keys()].sort(), status.stdout.slice(0, 2000));

  // Instance c dies under load; its streams are taken over and the copy completes.
  await delay(1000);
  c.signal("SIGKILL");
  await c.wait().catch(() => {});
  await waitFor(async () => {
    const holders = await leaseHolders(src, keys);
    return holders.size === 100 && new Set(holders.values()).size === 2;
  }, { timeoutMs: 30_000, message: "the streams of the killed instance taken over" });
  await delay(1000);
  producer.stop();
  await producing;
  await waitCopied(src, dst, keys, context);
  await stopAndCheck([a, b], { src, dst, keys }, context);
});

Deno.test("an owner paused past its lease while another takes over writes nothing out of order once resumed", async () => {
  await using scene = await Scene.start(4, 13);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runRate(1000);
  const env = instancesEnv(source, target);
  await using a = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  const context = () => logsOf([a])() + (second ? logsOf([second])() : "");
  let second: CliProcess | undefined;
  await waitFor(async () => (await leaseHolders(src, keys)).size === keys.length, {
    timeoutMs: 30_000,
    message: "the first instance holds every lease",
  });
  await waitFor(async () => Number(await dst.send(["XLEN", keys[0]])) > 200, {
    timeoutMs: 30_000,
    message: "copying",
  });
  // Paused with reads, writes and acks in flight: its leases expire (TTL 2 s).
  a.signal("SIGSTOP");
  // It cannot have read beyond what the source holds now.
  const readable = Number(await src.send(["XLEN", keys[0]]));
  try {
    await using b = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
    second = b;
    const firstHolder = [...(await leaseHolders(src, keys)).values()][0];
    await waitFor(async () => {
      const holders = await leaseHolders(src, keys);
      return holders.size === keys.length && [...holders.values()].every((h) => h !== firstHolder);
    }, { timeoutMs: 30_000, message: `the second instance took every lease\n${context()}` });
    // Well past anything the paused one could have read: 250 entries written after it stopped.
    await waitFor(async () => Number(await dst.send(["XLEN", keys[0]])) > readable + 250, {
      timeoutMs: 30_000,
      message: `the second instance copies past what the first could have read\n${context()}`,
    });
    // Resumed while the producer runs: whatever it had read must not land out of order.
    a.signal("SIGCONT");
    await delay(3000);
    producer.stop();
    await producing;
    await waitCopied(src, dst, keys, context);
    await stopAndCheck([a, b], { src, dst, keys }, context);
  } finally {
    a.signal("SIGCONT");
  }
});

Deno.test("a rolling restart, ten times under load (start the new instance, then SIGTERM the old): exact copy", async () => {
  await using scene = await Scene.start(10, 17);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runRate(2000);
  const env = instancesEnv(source, target);
  const logs: string[] = [];
  let old = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  try {
    for (let round = 0; round < 10; round++) {
      const next = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
      // The new instance is up and holds streams before the old one goes.
      await next.waitForOutput(
        /Leases: \d+ streams? taken|Replicating \d+ (new )?streams?/,
        30_000,
      );
      old.signal("SIGTERM");
      const result = await old.wait();
      logs.push(result.stderr.slice(-1500));
      assert.equal(
        result.code,
        0,
        `round ${round}: the old instance exited ${result.code}\n${result.stderr}`,
      );
      assert.doesNotMatch(result.stderr, /Stopped replicating|ERROR/, result.stderr);
      old = next;
    }
    producer.stop();
    await producing;
    const context = () => `${logs.join("\n---\n")}\n--- last ---\n${old.stderr().slice(-2500)}`;
    await waitCopied(src, dst, keys, context);
    old.signal("SIGTERM");
    assert.equal((await old.wait()).code, 0, context());
    await assertExactCopy(src, dst, keys, context);
  } finally {
    producer.stop();
    await old[Symbol.asyncDispose]();
  }
});

Deno.test("an instance paused until its INSTANCE_ID was taken by a new process stops with exit 1 when it wakes; the copy stays exact", async () => {
  await using scene = await Scene.start(3, 19);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runRate(500);
  const env = instancesEnv(source, target, { INSTANCE_ID: "box" });
  await using a = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  await a.waitForOutput(/Instance box \(consumer redis-sync-consumer-box\)/, 30_000);
  await waitFor(async () => (await leaseHolders(src, keys)).size === keys.length, {
    timeoutMs: 30_000,
    message: "the first instance holds every lease",
  });
  a.signal("SIGSTOP");
  try {
    // Past the TTL (2 s): its leases and its registry entry expire.
    await waitFor(
      async () => (await leaseHolders(src, keys)).size === 0 && await registryExpired(src, "box"),
      { timeoutMs: 30_000, message: "the paused instance's leases and registry entry expired" },
    );
    await using b = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
    await b.waitForOutput(/Instance box \(consumer redis-sync-consumer-box\)/, 30_000);
    await waitFor(async () => (await leaseHolders(src, keys)).size === keys.length, {
      timeoutMs: 30_000,
      message: "the second process holds every lease",
    });
    a.signal("SIGCONT");
    const result = await a.wait();
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /Instance id "box" was taken by another process/);
    producer.stop();
    await producing;
    const context = () => b.stderr().slice(-3000);
    await waitCopied(src, dst, keys, context);
    b.signal("SIGTERM");
    assert.equal((await b.wait()).code, 0, context());
    await assertExactCopy(src, dst, keys, context);
  } finally {
    a.signal("SIGCONT");
  }
});

Deno.test("with a long lease TTL, a stream handed over is taken by the new instance well before the TTL, and a SIGKILLed instance's streams too", async () => {
  await using scene = await Scene.start(12, 23);
  const { source, target, src, dst, keys, producer } = scene;
  const producing = producer.runRate(500);
  // 30 s, renewed every 10 s: a lease that is not given back is renewed for ever, or taken
  // when it expires, 30 s after the first instance took it; an instance not seen gone keeps
  // its leases until they expire, at least 20 s after it died (renewed at most 10 s before).
  const env = instancesEnv(source, target, { STREAM_LEASE_TTL: "30" });
  await using a = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  await waitFor(async () => (await leaseHolders(src, keys)).size === keys.length, {
    timeoutMs: 30_000,
    message: "the first instance holds every lease",
  });
  const first = [...(await leaseHolders(src, keys)).values()][0];
  await using b = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  const context = logsOf([a, b]);
  // Handed over at the first instance's next lease tick (a third of the TTL: within 10 s of
  // its start), given back at once.
  await waitFor(async () => new Set((await leaseHolders(src, keys)).values()).size === 2, {
    timeoutMs: 20_000,
    message: `the second instance holds some leases, well before the 30 s TTL\n${context()}`,
  });
  b.signal("SIGKILL");
  await b.wait().catch(() => {});
  await waitFor(async () => {
    const holders = await leaseHolders(src, keys);
    return holders.size === keys.length && [...holders.values()].every((h) => h === first);
  }, {
    timeoutMs: 15_000,
    message: `the killed instance's streams taken over, well before the 30 s TTL\n${context()}`,
  });
  producer.stop();
  await producing;
  await waitCopied(src, dst, keys, context);
  a.signal("SIGTERM");
  assert.equal((await a.wait()).code, 0, context());
  await assertExactCopy(src, dst, keys, context);
});

Deno.test("an instance of an older version (one lease per stream) in the registry: run copies nothing until it is gone, then everything; run --once refuses with exit 1", async () => {
  await using scene = await Scene.start(3, 11);
  const { source, target, src, dst, keys } = scene;
  for (const key of keys) await src.send(["XADD", key, "*", "n", "1"]);
  // What a running instance of the older version writes: kind "a", valid for a minute.
  const [seconds] = await src.send(["TIME"]) as [string, string];
  const registry = `redis-stream-sync:instances:${GROUP.length}:${GROUP}`;
  await src.send([
    "HSET",
    registry,
    "old-1",
    `${Number(seconds) * 1000 + 60_000}:a0123456789abcdef`,
  ]);
  const env = instancesEnv(source, target);
  const once = await runCli(["run", "--once"], { env, timeoutMs: 60_000 });
  assert.equal(once.code, 1, once.stderr);
  assert.match(once.stderr, /older version of redis-stream-sync.*old-1.*stop them first/);
  await using run = spawnCli(["run"], { env, timeoutMs: RUN_TIMEOUT_MS });
  await waitFor(() => /older version of redis-stream-sync.*old-1/.test(run.stderr()), {
    timeoutMs: 20_000,
    message: `the warning about the older instance\n${run.stderr()}`,
  });
  await delay(3000); // more than a TTL (2 s) and a discovery pass
  for (const key of keys) assert.equal(Number(await dst.send(["XLEN", key])), 0, run.stderr());
  assert.equal(await bucketLeases(src), 0, "no bucket taken while it runs");
  await src.send(["HDEL", registry, "old-1"]);
  await waitCopied(src, dst, keys, () => run.stderr());
  run.signal("SIGTERM");
  assert.equal((await run.wait()).code, 0, run.stderr());
});
