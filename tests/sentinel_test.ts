/**
 * Sentinel on either side: one master, one replica and three sentinels
 * (local processes); `SENTINEL FAILOVER` during `run` under load, on the
 * source and, separately, on the target: the copy follows the new master and
 * ends exact, with nothing pending.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../testing/cli.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  addEntries,
  entriesDifference,
  FAST_SETTINGS,
  pendingCount,
  waitFor,
} from "./_replication.ts";
import {
  MASTER_NAME,
  startLoneSentinel,
  startSentinelSetup,
  startTlsSentinelSetup,
} from "./_sentinel.ts";
import { makeCertificates } from "../testing/tls.ts";

const GROUP = "redis-sync-group";
const KEYS = ["sentinel-a", "sentinel-b", "sentinel-c"];

async function addToAll(server: RedisServer, count: number, phase: string): Promise<void> {
  await using c = await connect(server);
  for (const key of KEYS) await addEntries(c, key, count, { phase });
}

/**
 * The same entries as {@linkcode addToAll}, pipelined 100 at a time: a backlog written before
 * the copy starts (a persistent master syncs its AOF once a round trip, not once an entry).
 */
async function backlogOnAll(server: RedisServer, count: number, phase: string): Promise<void> {
  await using c = await connect(server);
  for (const key of KEYS) {
    for (let from = 1; from <= count; from += 100) {
      const batch = [];
      for (let n = from; n < Math.min(count + 1, from + 100); n++) {
        batch.push(c.xadd(key, "*", { n: String(n), phase }));
      }
      await Promise.all(batch);
    }
  }
}

/** Whether every stream of `target` equals its source, and nothing is pending on the source. */
async function exact(source: TestClient, target: TestClient): Promise<boolean> {
  for (const key of KEYS) {
    if (entriesDifference(await target.xrangeAll(key), await source.xrangeAll(key))) return false;
    if (await pendingCount(source, key, GROUP) !== 0) return false;
  }
  return true;
}

Deno.test("a source behind sentinels: SENTINEL FAILOVER during run under load, the copy follows the new master and ends exact", async () => {
  await using setup = await startSentinelSetup();
  await using target = await RedisServer.start();
  const [first] = setup.servers;
  await backlogOnAll(first, 2000, "backlog");
  const env = {
    ...FAST_SETTINGS,
    SOURCE_REDIS_SENTINELS: setup.sentinels,
    SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
    TARGET_REDIS_HOST: target.host,
    TARGET_REDIS_PORT: String(target.port),
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_DISCOVERY_PATTERNS: "sentinel-*",
    LOG_LEVEL: "WARNING",
  };
  await using cli = spawnCli(["run"], { env, timeoutMs: 180_000 });
  await using dst = await connect(target);
  await waitFor(async () => (await dst.xrangeAll(KEYS[0])).length > 0, {
    timeoutMs: 30_000,
    message: "the copy under way",
  });
  await addToAll(first, 300, "before");
  // The old master's writes all reach the replica first (asynchronous replication loses
  // what it had not sent yet, whatever copies it: that is not what is tested here).
  {
    await using m = await connect(first);
    assert.equal(Number(await m.send(["WAIT", "1", "10000"])), 1);
  }
  const second = await setup.failover();
  await addToAll(second, 300, "after");
  await using src = await connect(second);
  await waitFor(() => exact(src, dst), {
    timeoutMs: 60_000,
    message: "an exact copy of the new master, nothing pending",
  });
  for (const key of KEYS) assert.equal((await dst.xrangeAll(key)).length, 2600);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /ERROR/);
});

Deno.test("a target behind sentinels with TARGET_WAIT_REPLICAS=1: SENTINEL FAILOVER during run under load loses nothing acknowledged", async () => {
  await using setup = await startSentinelSetup();
  await using source = await RedisServer.start();
  await backlogOnAll(source, 2000, "backlog");
  const env = {
    ...FAST_SETTINGS,
    SOURCE_REDIS_HOST: source.host,
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_SENTINELS: setup.sentinels,
    TARGET_REDIS_SENTINEL_MASTER: MASTER_NAME,
    TARGET_WAIT_REPLICAS: "1",
    TARGET_WAIT_TIMEOUT: "0.5",
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_DISCOVERY_PATTERNS: "sentinel-*",
    LOG_LEVEL: "WARNING",
  };
  await using cli = spawnCli(["run"], { env, timeoutMs: 180_000 });
  const [first] = setup.servers;
  {
    await using dst = await connect(first);
    await waitFor(async () => (await dst.xrangeAll(KEYS[0])).length > 0, {
      timeoutMs: 30_000,
      message: "the copy under way",
    });
  }
  // Load on the source through the failover of the target.
  const load = addToAll(source, 600, "during");
  const second = await setup.failover();
  await load;
  await addToAll(source, 300, "after");
  await using src = await connect(source);
  await using dst = await connect(second);
  await waitFor(() => exact(src, dst), {
    timeoutMs: 60_000,
    message: "the new target master an exact copy, nothing pending",
  });
  for (const key of KEYS) assert.equal((await dst.xrangeAll(key)).length, 2900);
  // The old master, a replica now, was never written to after it was demoted: it holds
  // exactly what the new master holds (it replicates from it).
  await using old = await connect(first);
  await waitFor(async () => {
    for (const key of KEYS) {
      if (entriesDifference(await old.xrangeAll(key), await src.xrangeAll(key))) return false;
    }
    return true;
  }, { timeoutMs: 30_000, message: "the demoted master in sync with the new one" });
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
});

Deno.test("sentinel keys: a master name is required with the sentinels, and check names the master it reached", async () => {
  await using setup = await startSentinelSetup({ failoverReady: false });
  const noName = await runCli(["check"], {
    env: { SOURCE_REDIS_SENTINELS: setup.sentinels },
    timeoutMs: 30_000,
  });
  assert.equal(noName.code, 78);
  assert.match(
    noName.stderr,
    /SOURCE_REDIS_SENTINEL_MASTER must be set: SOURCE_REDIS_SENTINELS is set/,
  );
  const [master] = setup.servers;
  const ok = await runCli(["check"], {
    env: {
      SOURCE_REDIS_SENTINELS: setup.sentinels,
      SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
      TARGET_REDIS_HOST: master.host,
      TARGET_REDIS_PORT: String(master.port),
      // The master is the target too: the copies go to a DB that is not scanned.
      REDIS_DB_SEARCH_RANGE: "0",
      TARGET_REDIS_DB: "1",
    },
    timeoutMs: 30_000,
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Source "mymaster via sentinels" answers/);
  const unknown = await runCli(["check"], {
    env: {
      SOURCE_REDIS_SENTINELS: setup.sentinels,
      SOURCE_REDIS_SENTINEL_MASTER: "nosuchmaster",
      SOURCE_REDIS_MAX_RETRIES: "0",
      TARGET_REDIS_HOST: master.host,
      TARGET_REDIS_PORT: String(master.port),
      // The master is the target too: the copies go to a DB that is not scanned.
      REDIS_DB_SEARCH_RANGE: "0",
      TARGET_REDIS_DB: "1",
    },
    timeoutMs: 30_000,
  });
  assert.equal(unknown.code, 69, unknown.stderr);
  assert.match(unknown.stderr, /No sentinel gave the source's master "nosuchmaster"/);
  assert.match(unknown.stderr, /does not monitor a master named "nosuchmaster"/);
});

Deno.test("a sentinel that names a replica is passed over: the copy goes from the master the other sentinels name", async () => {
  await using setup = await startSentinelSetup({ failoverReady: false });
  await using target = await RedisServer.start();
  const [master, replica] = setup.servers;
  // Asked first (listed first): it names the replica as the master.
  await using wrong = await startLoneSentinel(replica.port);
  await backlogOnAll(master, 200, "backlog");
  const result = await runCli(["run", "--once"], {
    env: {
      ...FAST_SETTINGS,
      SOURCE_REDIS_SENTINELS: `127.0.0.1:${wrong.port},${setup.sentinels}`,
      SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
      TARGET_REDIS_HOST: target.host,
      TARGET_REDIS_PORT: String(target.port),
      REDIS_DB_SEARCH_RANGE: "0",
      STREAM_DISCOVERY_PATTERNS: "sentinel-*",
    },
    timeoutMs: 60_000,
  });
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  await using src = await connect(master);
  await using dst = await connect(target);
  assert.ok(await exact(src, dst), "not an exact copy of the master");
});

Deno.test("a sentinel that accepts connections and never answers does not stop the others from being asked", async () => {
  await using setup = await startSentinelSetup({ failoverReady: false });
  const [master] = setup.servers;
  // Listed first: a port that takes connections and never says a word.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of silent) held.push(conn);
    } catch {
      // closed
    }
  })();
  try {
    const result = await runCli(["check"], {
      env: {
        SOURCE_REDIS_SENTINELS: `127.0.0.1:${silent.addr.port},${setup.sentinels}`,
        SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
        SOURCE_REDIS_COMMAND_TIMEOUT: "1",
        SOURCE_REDIS_MAX_RETRIES: "1",
        TARGET_REDIS_HOST: master.host,
        TARGET_REDIS_PORT: String(master.port),
        // The master is the target too: the copies go to a DB that is not scanned.
        REDIS_DB_SEARCH_RANGE: "0",
        TARGET_REDIS_DB: "1",
      },
      timeoutMs: 60_000,
    });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /Source "mymaster via sentinels" answers/);
    assert.ok(held.length >= 1, "the silent sentinel was not asked first");
  } finally {
    silent.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("sentinels over TLS name a master reached over TLS: run --once copies exactly; a CA that did not sign them is a TLS error about the sentinels (78)", async () => {
  await using certs = await makeCertificates();
  await using setup = await startTlsSentinelSetup(certs, { failoverReady: false });
  await using target = await RedisServer.start();
  await backlogOnAll(setup.master, 150, "backlog");
  const env = {
    ...FAST_SETTINGS,
    SOURCE_REDIS_SENTINELS: setup.sentinels,
    SOURCE_REDIS_SENTINEL_MASTER: MASTER_NAME,
    SOURCE_REDIS_TLS: "true",
    SOURCE_REDIS_TLS_CA_FILE: certs.ca,
    TARGET_REDIS_HOST: target.host,
    TARGET_REDIS_PORT: String(target.port),
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_DISCOVERY_PATTERNS: "sentinel-*",
  };
  const run = await runCli(["run", "--once"], { env, timeoutMs: 60_000 });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  await using src = await connect(setup.master);
  await using dst = await connect(target);
  assert.ok(await exact(src, dst), "not an exact copy of the master");
  // The sentinels' own CA missing: a TLS error about the sentinels, at once (78).
  const untrusted = await runCli(["check"], {
    env: { ...env, SOURCE_REDIS_TLS_CA_FILE: certs.otherCert },
    timeoutMs: 60_000,
  });
  assert.equal(untrusted.code, 78, untrusted.stderr);
  assert.match(untrusted.stderr, /No sentinel of the source could be reached: .*not trusted/);
});
