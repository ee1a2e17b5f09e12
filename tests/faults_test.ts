/**
 * Crash safety and fault tolerance: network faults between the replicator
 * and either server (cut connections, a black hole, latency) injected with
 * a TCP proxy while a producer writes; a target that refuses writes (out of
 * memory, read-only, a changed password); pending entries left by an earlier
 * consumer; source streams deleted or replaced while replicated; and odd
 * input (empty streams, a 5 MB entry, a newline in a key, a group created by
 * someone else, 16 DBs). Real `redis-server` processes, no mocks; every
 * test ends by comparing target and source entry by entry.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { StreamStatus } from "../lib/replication/stream/stream.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  addEntries,
  assertSameEntries,
  captureLogs,
  delay,
  type Entries,
  groupNames,
  pendingCount,
  quietLogs,
  replicationConfig,
  type RunningReplicator,
  sameEntries,
  type ServerAddress,
  type Settings,
  startReplicator,
  waitFor,
  waitForCopy,
  waitForDiscoveryPasses,
} from "./_replication.ts";

const GROUP = "redis-sync-group";

/** Short timings: a hung command is given up after 1 s, retries wait 50-500 ms. */
const FAULT_SETTINGS: Settings = {
  STREAM_POLL_INTERVAL: 0.2,
  STREAM_DISCOVERY_INTERVAL: 0.3,
  STREAM_PENDING_CHECK_INTERVAL: 0.5,
  SOURCE_REDIS_BACKOFF_BASE: 0.05,
  SOURCE_REDIS_BACKOFF_MAX: 0.5,
  TARGET_REDIS_BACKOFF_BASE: 0.05,
  TARGET_REDIS_BACKOFF_MAX: 0.5,
  SOURCE_REDIS_COMMAND_TIMEOUT: 1,
  TARGET_REDIS_COMMAND_TIMEOUT: 1,
  REDIS_DB_SEARCH_RANGE: "0",
};

// ---------------------------------------------------------------------------
// Helpers

/** The replicator's configuration: FAULT_SETTINGS, then `settings`. */
function faultConfig(source: ServerAddress, target: ServerAddress, settings: Settings = {}) {
  return replicationConfig(source, target, { ...FAULT_SETTINGS, ...settings });
}

/** Appends entries to `keys` in turn, every `intervalMs`, until stopped. */
class Producer implements AsyncDisposable {
  readonly #client: TestClient;
  readonly #keys: string[];
  readonly #intervalMs: number;
  readonly #task: Promise<void>;
  #stopped = false;
  /** Entries written so far. */
  count = 0;

  constructor(client: TestClient, keys: string[], intervalMs = 5) {
    this.#client = client;
    this.#keys = keys;
    this.#intervalMs = intervalMs;
    this.#task = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      for (const key of this.#keys) {
        this.count++;
        await this.#client.xadd(key, "*", { n: String(this.count), pad: "p".repeat(40) });
      }
      await delay(this.#intervalMs);
    }
  }

  /** Stops writing; rethrows what the loop failed with. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#task;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#stopped = true;
    await this.#task.catch(() => {});
  }
}

/** The IDs of `entries`. */
function ids(entries: Entries): string[] {
  return entries.map(([id]) => id);
}

/** A flat Redis map reply (`[k, v, k, v...]`) as a Map. */
function flatMap(reply: unknown): Map<string, unknown> {
  const flat = reply as unknown[];
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

/** XINFO GROUPS `key`, the entry of `GROUP`. */
async function groupInfo(client: TestClient, key: string): Promise<Map<string, unknown>> {
  const groups = await client.send(["XINFO", "GROUPS", key]) as unknown[];
  const group = groups.map(flatMap).find((g) => g.get("name") === GROUP);
  if (!group) throw new Error(`no group ${GROUP} on ${key}`);
  return group;
}

/** XINFO CONSUMERS of `GROUP` on `key`: name -> pending count. */
async function consumers(client: TestClient, key: string): Promise<Map<string, number>> {
  const reply = await client.send(["XINFO", "CONSUMERS", key, GROUP]) as unknown[];
  return new Map(reply.map(flatMap).map((c) => [String(c.get("name")), Number(c.get("pending"))]));
}

/**
 * The IDs the group acknowledged on the source: delivered (up to the
 * group's last-delivered-id; the groups of these tests start at 0) and no
 * longer pending.
 */
async function ackedIds(client: TestClient, key: string): Promise<string[]> {
  const lastDelivered = String((await groupInfo(client, key)).get("last-delivered-id"));
  const delivered = ids(await client.xrangeAll(key)).filter((id) =>
    compareIds(id, lastDelivered) <= 0
  );
  const pending = await client.send(["XPENDING", key, GROUP, "-", "+", "1000000"]) as unknown[][];
  const pendingIds = new Set(pending.map((p) => String(p[0])));
  return delivered.filter((id) => !pendingIds.has(id));
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/**
 * Checks, again and again until stopped, that every entry the group
 * acknowledged on the source is on the target (never acked-but-missing).
 * The source is read before the target, and an ack always follows the write,
 * so a correct replicator never trips it. It must also have seen acks
 * advance on every key while it watched: a watcher whose checks cover
 * nothing would pass whatever the replicator does.
 */
class AckWatcher implements AsyncDisposable {
  readonly #src: TestClient;
  readonly #dst: TestClient;
  readonly #keys: string[];
  readonly #task: Promise<void>;
  #stopped = false;
  /** Checks done (each covers every key). */
  checks = 0;
  /** Per key: entries acked (and on the target) at the first check. */
  readonly first = new Map<string, number>();
  /** Per key: most entries acked (and on the target) seen in one check. */
  readonly highest = new Map<string, number>();
  /** The first violation seen. */
  violation: string | undefined;

  constructor(src: TestClient, dst: TestClient, keys: string[]) {
    this.#src = src;
    this.#dst = dst;
    this.#keys = keys;
    this.#task = (async () => {
      while (!this.#stopped && this.violation === undefined) {
        await this.#check();
        await delay(100); // pacing: the checks run all along, not once per event
      }
    })();
  }

  async #check(): Promise<void> {
    for (const key of this.#keys) {
      const acked = await ackedIds(this.#src, key);
      const onTarget = new Set(ids(await this.#dst.xrangeAll(key)));
      const missing = acked.filter((id) => !onTarget.has(id));
      if (missing.length > 0 && this.violation === undefined) {
        this.violation = `${key}: ${missing.length} acked entries missing on the target, ` +
          `e.g. ${missing.slice(0, 3).join(", ")} (target has ${onTarget.size})`;
      }
      if (!this.first.has(key)) this.first.set(key, acked.length);
      this.highest.set(key, Math.max(this.highest.get(key) ?? 0, acked.length));
    }
    this.checks++;
  }

  /**
   * Stops after one last check, and asserts that no violation was seen and
   * that acks advanced on every key since the first check.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#task;
    await this.#check();
    assert.equal(this.violation, undefined, this.violation);
    for (const key of this.#keys) {
      const first = this.first.get(key) ?? 0;
      const highest = this.highest.get(key) ?? 0;
      assert.ok(
        highest > first,
        `the ack watcher saw no entry of ${key} acked while it watched (${first} acked at its first check, ${highest} at most, ${this.checks} checks)`,
      );
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#stopped = true;
    await this.#task.catch(() => {});
  }
}

/** Waits until the target equals the source for every key and nothing is pending in the group. */
async function waitSettled(
  src: TestClient,
  dst: TestClient,
  keys: string[],
  timeoutMs = 20_000,
): Promise<void> {
  for (const key of keys) await waitForCopy(src, key, dst, key, { timeoutMs });
  await waitFor(async () => {
    for (const key of keys) if (await pendingCount(src, key, GROUP) !== 0) return false;
    return true;
  }, { timeoutMs, message: "no entry pending in the group" });
  for (const key of keys) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), `target ${key}`);
  }
}

/** The ID of the newest entry of `key` (undefined when empty or missing). */
async function lastId(client: TestClient, key: string): Promise<string | undefined> {
  const last = await client.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
  return last.length > 0 ? String(last[0][0]) : undefined;
}

/** Adds a marker entry to `key` and waits until the target holds it (or a later one). */
async function markerCopied(src: TestClient, dst: TestClient, key: string): Promise<void> {
  const id = await src.xadd(key, "*", { marker: "1" });
  await waitFor(async () => {
    const last = await lastId(dst, key);
    return last !== undefined && compareIds(last, id) >= 0;
  }, { timeoutMs: 20_000, message: `marker ${id} of ${key} on the target` });
}

/**
 * Waits until entries written to each of `keys` after this call reach the
 * target: replication is flowing (a producer must be writing to them).
 */
async function waitForLiveCopy(
  src: TestClient,
  dst: TestClient,
  keys: string[],
  timeoutMs = 20_000,
): Promise<void> {
  for (const key of keys) {
    const now = await lastId(src, key) ?? "0-0";
    await waitFor(async () => {
      const last = await lastId(dst, key);
      return last !== undefined && compareIds(last, now) > 0;
    }, { timeoutMs, message: `entries of ${key} written after ${now} on the target` });
  }
}

/** Waits until `proxy` has accepted a connection since it had accepted `before` (a reconnect). */
async function reconnected(proxy: TcpProxy, before: number): Promise<void> {
  await waitFor(() => proxy.accepted > before, { message: "the replicator to reconnect" });
}

/** The status of one stream (by key, DB 0 unless given). */
function streamStatus(
  replicator: RunningReplicator,
  key: string,
  db = 0,
): StreamStatus | undefined {
  return replicator.orchestrator.status().streams.find((s) => s.key === key && s.db === db);
}

/** Source and target servers, each behind a proxy, and direct clients to both. */
interface ProxiedSetup {
  source: RedisServer;
  target: RedisServer;
  sourceProxy: TcpProxy;
  targetProxy: TcpProxy;
  src: TestClient;
  dst: TestClient;
}

/**
 * The shared course of a network fault test: two streams copied through
 * proxies on both sides, a producer writing (and copied), `fault` run while
 * it writes, then a marker entry copied to the target and the producer's
 * later entries too, then an exact copy with nothing pending; every ack
 * checked against the target all along.
 */
async function networkFaultCourse(
  fault: (setup: ProxiedSetup, replicator: RunningReplicator) => Promise<void>,
): Promise<{ statuses: StreamStatus[] }> {
  const keys = ["one-stream", "two-stream"];
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using sourceProxy = await TcpProxy.start(source);
  await using targetProxy = await TcpProxy.start(target);
  await using src = await connect(source);
  await using dst = await connect(target);
  await using watchSrc = await connect(source);
  await using watchDst = await connect(target);
  for (const key of keys) await addEntries(src, key, 200);
  await using replicator = startReplicator(faultConfig(sourceProxy, targetProxy));
  for (const key of keys) await waitForCopy(src, key, dst);
  await using watcher = new AckWatcher(watchSrc, watchDst, keys);
  await using producer = new Producer(src, keys);
  await waitForLiveCopy(src, dst, keys);
  await fault({ source, target, sourceProxy, targetProxy, src, dst }, replicator);
  await markerCopied(src, dst, keys[0]);
  await waitForLiveCopy(src, dst, keys);
  await producer.stop();
  await waitSettled(src, dst, keys);
  await watcher.stop();
  assert.ok(producer.count > 200, `the producer wrote only ${producer.count} entries`);
  assert.ok(!replicator.finished, "the run ended by itself");
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  const statuses = keys.map((key) => streamStatus(replicator, key)!);
  for (const status of statuses) {
    assert.notEqual(status.state, "error", status.lastError);
  }
  return { statuses };
}

// ---------------------------------------------------------------------------
// The proxy itself

Deno.test("the test proxy forwards, cuts, black-holes and delays connections", async () => {
  await using server = await RedisServer.start();
  await using proxy = await TcpProxy.start(server);
  const client = await connect(proxy);
  try {
    assert.equal(await client.send(["PING"]), "PONG");
    assert.equal(proxy.connections, 1);
    // Delay: a round trip takes at least twice the delay.
    proxy.delay(100);
    const started = Date.now();
    assert.equal(await client.send(["PING"]), "PONG");
    assert.ok(Date.now() - started >= 190, `PING took ${Date.now() - started} ms`);
    proxy.delay(0);
    // Black hole: no reply and no close until lifted; then the held command is answered.
    proxy.blackhole(true);
    let answered = false;
    const reply = client.send(["PING"]).then((r) => (answered = true, r));
    await delay(500); // time passes on purpose: nothing may happen meanwhile
    assert.equal(answered, false, "a black-holed command was answered");
    assert.ok(client.isOpen);
    proxy.blackhole(false);
    assert.equal(await reply, "PONG");
    // Cut: the connection is closed, the next one works.
    proxy.cut();
    await waitFor(() => proxy.connections === 0 && !client.isOpen, { message: "the cut" });
  } finally {
    await client.close();
  }
  await using again = await connect(proxy);
  assert.equal(await again.send(["PING"]), "PONG");
  assert.equal(proxy.accepted, 2);
});

// ---------------------------------------------------------------------------
// Network faults

Deno.test("source connections cut while a producer writes (replies lost in flight included): exact copy, nothing pending", async () => {
  const logs = await captureLogs("INFO");
  await networkFaultCourse(async ({ src, sourceProxy }) => {
    // Plain cuts at arbitrary moments, each once the replicator has reconnected.
    for (let i = 0; i < 3; i++) {
      const accepted = sourceProxy.accepted;
      sourceProxy.cut();
      await reconnected(sourceProxy, accepted);
    }
    // Cuts while an XREADGROUP reply is held in the proxy: the server has
    // delivered the entries to the group (pending) but the replicator never
    // gets them. They must still be copied, in order, before later entries.
    sourceProxy.delay(150);
    for (let i = 0; i < 4; i++) {
      const before = Number((await groupInfo(src, "one-stream")).get("entries-read"));
      await waitFor(
        async () => Number((await groupInfo(src, "one-stream")).get("entries-read")) > before,
        {
          timeoutMs: 10_000,
          intervalMs: 5,
          message: "a read of one-stream",
        },
      );
      const accepted = sourceProxy.accepted;
      sourceProxy.cut();
      await reconnected(sourceProxy, accepted);
    }
    sourceProxy.delay(0);
  });
  assert.ok(logs.at("WARNING", /source "127\.0\.0\.1:\d+"/).length > 0, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
});

Deno.test("target connections cut while a producer writes (replies of applied writes lost included): exact copy, nothing pending", async () => {
  const logs = await captureLogs("INFO");
  const { statuses } = await networkFaultCourse(async ({ dst, targetProxy }) => {
    for (let i = 0; i < 3; i++) {
      const accepted = targetProxy.accepted;
      targetProxy.cut();
      await reconnected(targetProxy, accepted);
    }
    // Cuts while the reply of a transaction the target applied is held in
    // the proxy: the retry must find the entries there, not write them twice.
    targetProxy.delay(150);
    for (let i = 0; i < 3; i++) {
      const before = Number(await dst.send(["XLEN", "one-stream"]));
      await waitFor(async () => Number(await dst.send(["XLEN", "one-stream"])) > before, {
        timeoutMs: 10_000,
        intervalMs: 5,
        message: "a write to one-stream",
      });
      const accepted = targetProxy.accepted;
      targetProxy.cut();
      await reconnected(targetProxy, accepted);
    }
    targetProxy.delay(0);
  });
  assert.ok(
    statuses.some((s) => s.skipped > 0),
    `no batch was found already written: ${JSON.stringify(statuses)}`,
  );
  assert.ok(logs.at("WARNING", /target "127\.0\.0\.1:\d+"/).length > 0, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
});

/** Black-holes `proxy` for 3 s; checks that the hang was detected by the 1 s timeout meanwhile. */
async function blackholeFor3s(
  proxy: TcpProxy,
  logs: Awaited<ReturnType<typeof captureLogs>>,
  role: "source" | "target",
): Promise<void> {
  const acceptedBefore = proxy.accepted;
  // The proxy closes nothing while black-holed: any failure of a connection
  // through it is the replicator's own command (or connect) timeout.
  const timeoutLine = new RegExp(`${role} "127\\.0\\.0\\.1:${proxy.port}"`);
  proxy.blackhole(true);
  const started = Date.now();
  try {
    // The hang is found by the command timeout (1 s, plus a read's 0.2 s
    // block) while the black hole lasts ...
    await waitFor(() => logs.at("WARNING", timeoutLine).length > 0, {
      timeoutMs: 6_000,
      message: `a ${role} timeout warning during the black hole`,
    });
    // ... and new connections are tried meanwhile.
    await waitFor(() => proxy.accepted > acceptedBefore, {
      timeoutMs: 6_000,
      message: `a new ${role} connection during the black hole`,
    });
    // The fault's duration: the hang goes on until 3 s have passed.
    await delay(Math.max(0, 3_000 - (Date.now() - started)));
  } finally {
    proxy.blackhole(false);
  }
}

Deno.test("source black-holed for 3 s: the hang is detected by the command timeout, then an exact copy", async () => {
  const logs = await captureLogs("INFO");
  await networkFaultCourse(async ({ sourceProxy }) => {
    await blackholeFor3s(sourceProxy, logs, "source");
  });
  assert.ok(logs.at("INFO", /Connection to source .* restored after/).length > 0, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
});

Deno.test("target black-holed for 3 s: the hang is detected by the command timeout, nothing acked meanwhile, then an exact copy", async () => {
  const logs = await captureLogs("INFO");
  await networkFaultCourse(async ({ targetProxy }) => {
    await blackholeFor3s(targetProxy, logs, "target");
  });
  assert.ok(logs.at("INFO", /Connection to target .* restored after/).length > 0, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
});

Deno.test("50 ms of latency on the source and on the target: exact copy, no connection dropped", async () => {
  const logs = await captureLogs("INFO");
  await networkFaultCourse(async ({ sourceProxy, targetProxy, src, dst }, replicator) => {
    const proxies = [sourceProxy, targetProxy];
    const servers = [src, dst];
    const accepted = proxies.map((p) => p.accepted);
    const open = proxies.map((p) => p.connections);
    const received = await Promise.all(servers.map((c) => c.connectionsReceived()));
    const status = replicator.orchestrator.status();
    const reconnects = [status.source.reconnects, status.target.reconnects];
    sourceProxy.delay(50);
    targetProxy.delay(50);
    // Replication keeps flowing under latency, a few times over.
    for (let i = 0; i < 3; i++) await waitForLiveCopy(src, dst, ["one-stream", "two-stream"]);
    // No connection was closed meanwhile (the pools may open new ones): every
    // connection accepted since is still open, on the proxies and on the
    // servers (total_connections_received; the test's own are older).
    for (const [i, role] of ["source", "target"].entries()) {
      let seen = "";
      await waitFor(async () => {
        const openedSince = proxies[i].accepted - accepted[i];
        const openNow = proxies[i].connections - open[i];
        const receivedSince = await servers[i].connectionsReceived() - received[i];
        seen = `${openedSince} accepted since, ${openNow} more open, ${receivedSince} received`;
        return openedSince === openNow && receivedSince === openedSince;
      }, { timeoutMs: 5_000, message: `no ${role} connection closed under latency` }).catch(
        (error) => assert.fail(`${(error as Error).message}: ${seen}`),
      );
    }
    const after = replicator.orchestrator.status();
    assert.deepEqual([after.source.reconnects, after.target.reconnects], reconnects, "reconnects");
  });
  assert.deepEqual(logs.atLeast("WARNING"), [], logs.toString());
});

// ---------------------------------------------------------------------------
// The target refuses writes

Deno.test("target out of memory: nothing acked beyond what it stored, one warning, then an exact copy", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start({
    args: ["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"],
  });
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "oom-stream";
  const value = "v".repeat(1000);
  for (let i = 0; i < 4000; i += 100) {
    const commands = [];
    for (let j = 0; j < 100; j++) commands.push(src.xadd(key, "*", { i: String(i + j), value }));
    await Promise.all(commands);
  }
  await using replicator = startReplicator(faultConfig(source, target));
  // Blocked: the target stops growing and the stream keeps retrying.
  await waitFor(() => (streamStatus(replicator, key)?.errors ?? 0) >= 5, {
    timeoutMs: 20_000,
    message: "5 failed attempts",
  });
  const stored = Number(await dst.send(["XLEN", key]));
  assert.ok(stored > 0 && stored < 4000, `the target holds ${stored} entries`);
  for (let i = 0; i < 5; i++) {
    assert.ok(await pendingCount(src, key, GROUP) > 0, "nothing pending while blocked");
    const acked = await ackedIds(src, key);
    const onTarget = new Set(ids(await dst.xrangeAll(key)));
    assert.ok(acked.length <= onTarget.size, `${acked.length} acked > ${onTarget.size} stored`);
    assert.deepEqual(acked.filter((id) => !onTarget.has(id)), [], "acked but not on the target");
    // The next check only after one more refused attempt.
    const errors = streamStatus(replicator, key)?.errors ?? 0;
    await waitFor(() => (streamStatus(replicator, key)?.errors ?? 0) > errors, {
      message: "one more failed attempt",
    });
  }
  assert.equal(
    Number(await dst.send(["XLEN", key])),
    stored,
    "the target grew while out of memory",
  );
  const oomLines = logs.at("WARNING", /OOM/);
  assert.equal(oomLines.length, 1, logs.toString());
  assert.match(oomLines[0].message, /db0:oom-stream/);
  assert.match(oomLines[0].message, /maxmemory/);
  await dst.send(["CONFIG", "SET", "maxmemory", "0"]);
  await waitSettled(src, dst, [key]);
  assert.ok(logs.at("INFO", /Replication of db0:oom-stream resumed/).length > 0, logs.toString());
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("target turned read-only replica then back to master: nothing acked meanwhile, then an exact copy", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using watchSrc = await connect(source);
  await using watchDst = await connect(target);
  const key = "ro-stream";
  await addEntries(src, key, 100);
  await using replicator = startReplicator(faultConfig(source, target));
  await waitForCopy(src, key, dst);
  await using watcher = new AckWatcher(watchSrc, watchDst, [key]);
  await using producer = new Producer(src, [key]);
  await waitForLiveCopy(src, dst, [key]);
  // A master nobody listens on: the target turns read-only at once and never
  // syncs (a real master would replace its data set).
  await dst.send(["REPLICAOF", "127.0.0.1", String(freePort())]);
  const stored = Number(await dst.send(["XLEN", key]));
  await waitFor(() => (streamStatus(replicator, key)?.errors ?? 0) >= 3, {
    timeoutMs: 10_000,
    message: "3 failed attempts",
  });
  assert.ok(await pendingCount(src, key, GROUP) > 0, "nothing pending while read-only");
  assert.equal(Number(await dst.send(["XLEN", key])), stored);
  await dst.send(["REPLICAOF", "NO", "ONE"]);
  await waitForLiveCopy(src, dst, [key]);
  await producer.stop();
  await waitSettled(src, dst, [key]);
  await watcher.stop();
  const readonlyLines = logs.at("WARNING", /READONLY/);
  assert.equal(readonlyLines.length, 1, logs.toString());
  assert.match(readonlyLines[0].message, /db0:ro-stream/);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("target password changed while running: retries without loss, resumes when it is back, never logs it", async () => {
  const logs = await captureLogs("DEBUG");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start({ args: ["--requirepass", "Pw1-secret"] });
  await using src = await connect(source);
  await using dst = await connect(target, { password: "Pw1-secret" });
  await using watchSrc = await connect(source);
  await using watchDst = await connect(target, { password: "Pw1-secret" });
  const key = "auth-stream";
  await addEntries(src, key, 100);
  await using replicator = startReplicator(
    faultConfig(source, target, { TARGET_REDIS_PASSWORD: "Pw1-secret" }),
  );
  await waitForCopy(src, key, dst);
  await using watcher = new AckWatcher(watchSrc, watchDst, [key]);
  await using producer = new Producer(src, [key]);
  await waitForLiveCopy(src, dst, [key]);
  await dst.send(["CONFIG", "SET", "requirepass", "Pw2-other"]);
  // Existing connections stay authenticated: drop the replicator's (CLIENT
  // KILL TYPE normal, but keeping the test's own clients).
  for (const client of await dst.clientList()) {
    if (client.name.startsWith("redis-stream-sync")) {
      await dst.send(["CLIENT", "KILL", "ID", client.id]);
    }
  }
  await waitFor(() => logs.at("WARNING", /Authentication to target .* failed/).length > 0, {
    timeoutMs: 10_000,
    message: "an authentication failure",
  });
  // It keeps retrying, and holds what it read meanwhile (pending, not acked).
  const errors = streamStatus(replicator, key)?.errors ?? 0;
  await waitFor(() => (streamStatus(replicator, key)?.errors ?? 0) >= errors + 3, {
    message: "3 more failed attempts",
  });
  assert.ok(await pendingCount(src, key, GROUP) > 0, "nothing pending while refused");
  assert.ok(!replicator.finished, "the run ended on a refused password");
  await dst.send(["CONFIG", "SET", "requirepass", "Pw1-secret"]);
  await waitForLiveCopy(src, dst, [key]);
  await producer.stop();
  await waitSettled(src, dst, [key]);
  await watcher.stop();
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  const text = logs.toString();
  assert.ok(logs.lines.length > 0);
  assert.ok(!text.includes("Pw1-secret"), "the configured password was logged");
  assert.ok(!text.includes("Pw2-other"), "the new password was logged");
});

// ---------------------------------------------------------------------------
// Pending entries, deleted and replaced streams

Deno.test("entries left pending by the original service's PID-suffixed consumer are copied and acked, the consumer removed; entries deleted while pending are acked", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "pending-stream";
  const all = await addEntries(src, key, 100);
  await src.send(["XGROUP", "CREATE", key, GROUP, "0"]);
  const old = "redis-sync-consumer-12345";
  // The old consumer read 60 entries and acked none of them.
  await src.send(["XREADGROUP", "GROUP", GROUP, old, "COUNT", "60", "STREAMS", key, ">"]);
  assert.equal(await pendingCount(src, key, GROUP), 60);
  // Three of them are deleted from the source while pending.
  const deleted = [all[9], all[29], all[59]];
  assert.equal(Number(await src.send(["XDEL", key, ...deleted])), 3);
  await using replicator = startReplicator(
    faultConfig(source, target, { STREAM_CONSUMER_IDLE_TIMEOUT: 0.5 }),
  );
  await waitSettled(src, dst, [key]);
  const copied = ids(await dst.xrangeAll(key));
  assert.deepEqual(copied, all.filter((id) => !deleted.includes(id)));
  await waitFor(async () => !(await consumers(src, key)).has(old), {
    timeoutMs: 10_000,
    message: `${old} removed from the group`,
  });
  // What is left is this instance's consumer: the configured name and its instance id.
  const left = [...(await consumers(src, key)).keys()];
  assert.equal(left.length, 1, left.join(", "));
  assert.match(left[0], /^redis-sync-consumer-[A-Za-z0-9._-]+-\d+$/);
  const status = streamStatus(replicator, key)!;
  assert.equal(status.deleted, 3);
  assert.equal(status.recovered, 57);
  assert.equal(logs.at("WARNING", /pending entries of db0:pending-stream were deleted/).length, 1);
  assert.equal(logs.at("INFO", /Removed consumer redis-sync-consumer-12345/).length, 1);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("a source stream deleted while replicated ends its loop cleanly; when it comes back it is copied again", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "keep-stream", 50);
  await addEntries(src, "gone-stream", 50);
  await using replicator = startReplicator(faultConfig(source, target));
  const before = await waitForCopy(src, "gone-stream", dst);
  await using producer = new Producer(src, ["keep-stream"]);
  await waitForLiveCopy(src, dst, ["keep-stream"]);
  await src.send(["DEL", "gone-stream"]);
  // Its loop ends, with a warning; a stream that is gone leaves the status.
  await waitFor(
    () =>
      streamStatus(replicator, "gone-stream") === undefined &&
      logs.at("INFO", /stream is gone .*: db0:gone-stream;/).length > 0,
    { timeoutMs: 10_000, message: "the loop of gone-stream to end" },
  );
  // Other streams go on.
  await markerCopied(src, dst, "keep-stream");
  await waitForDiscoveryPasses(replicator, 3); // passes without the key start no loop
  assert.equal(streamStatus(replicator, "gone-stream"), undefined, "the loop started again");
  // The key comes back, with higher IDs.
  await addEntries(src, "gone-stream", 20);
  const after = await src.xrangeAll("gone-stream");
  await waitFor(async () => (await dst.send(["XLEN", "gone-stream"])) === 70, {
    timeoutMs: 10_000,
    message: "the new entries of gone-stream on the target",
  });
  // The target keeps the old entries and gets the new ones: IDs and bytes.
  assertSameEntries(await dst.xrangeAll("gone-stream"), [...before, ...after], "gone-stream");
  assert.deepEqual(await groupNames(src, "gone-stream"), [GROUP]);
  await producer.stop();
  await waitSettled(src, dst, ["keep-stream"]);
  await waitFor(async () => await pendingCount(src, "gone-stream", GROUP) === 0, {
    message: "nothing pending for gone-stream",
  });
  assert.ok(!replicator.finished, "the run ended");
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
  // A deletion is normal: said at INFO, once.
  assert.equal(logs.at("INFO", /stream is gone .*: db0:gone-stream;/).length, 1, logs.toString());
  assert.equal(
    logs.at("WARNING", /(is|are) gone .*db0:gone-stream|db0:gone-stream is gone/).length,
    0,
  );
});

Deno.test("a source stream replaced by a key of another type is dropped with one warning; others go on", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "keep-stream", 50);
  await addEntries(src, "typed-stream", 30);
  await using replicator = startReplicator(faultConfig(source, target));
  const typed = await waitForCopy(src, "typed-stream", dst);
  await using producer = new Producer(src, ["keep-stream"]);
  await waitForLiveCopy(src, dst, ["keep-stream"]);
  await src.send(["DEL", "typed-stream"]);
  await src.send(["SET", "typed-stream", "now a string"]);
  await waitFor(() => logs.at("WARNING", /db0:typed-stream/).length > 0, {
    timeoutMs: 10_000,
    message: "a warning about typed-stream",
  });
  await markerCopied(src, dst, "keep-stream");
  await waitForDiscoveryPasses(replicator, 4); // several passes: no repeated warning
  await producer.stop();
  await waitSettled(src, dst, ["keep-stream"]);
  assert.ok(!replicator.finished, "the run ended");
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.equal(logs.at("WARNING", /db0:typed-stream/).length, 1, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
  assert.equal(await src.send(["GET", "typed-stream"]), "now a string");
  // The copy is kept as it was: IDs and bytes.
  assertSameEntries(await dst.xrangeAll("typed-stream"), typed, "target typed-stream");
});

/** The replicator's reader connections on the source that are blocked in XREADGROUP now. */
async function blockedReaders(client: TestClient): Promise<number> {
  return (await client.clientList()).filter((c) =>
    // XREADGROUP, or with leases (the default) XREAD, which takes nothing while it waits.
    (c.name ?? "").startsWith("redis-stream-sync-reader") &&
    (c.cmd === "xreadgroup" || c.cmd === "xread") &&
    (c.flags ?? "").includes("b")
  ).length;
}

/** The replicator's connections open on a server now (CLIENT LIST, by their names). */
async function replicatorConnections(client: TestClient): Promise<number> {
  return (await client.clientList()).filter((c) => (c.name ?? "").startsWith("redis-stream-sync"))
    .length;
}

/**
 * A read blocks for 30 s here, and every wait for a copy below gives up
 * after 10 s: a copy can only arrive in time if the reader is woken (CLIENT
 * UNBLOCK) when a stream joins it, instead of waiting out its read. Generous
 * for a slow machine, impossible for a reader that is not woken.
 */
const LONG_POLL_SECONDS = 30;
const PROMPT_MS = 10_000;

/** The shared-reader scenario, with leases (fenced reads, XREAD waits) or without (XREADGROUP). */
async function sharedReaderScenario(leases: boolean): Promise<void> {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keep = ["keep-a-stream", "keep-b-stream"];
  for (const key of [...keep, "gone-stream", "typed-stream"]) await addEntries(src, key, 20);
  const connectionsBefore = await src.connectionsReceived();
  let mostConnections = 0;
  const sampleConnections = async () => {
    mostConnections = Math.max(mostConnections, await replicatorConnections(src));
  };
  await using replicator = startReplicator(faultConfig(source, target, {
    SOURCE_REDIS_POOL_SIZE: 1,
    STREAM_LEASES: leases,
    STREAM_POLL_INTERVAL: LONG_POLL_SECONDS,
    SOURCE_REDIS_COMMAND_TIMEOUT: 5,
    // No group maintenance during the test: a stream that is gone must be
    // noticed by the shared read itself, not by a maintenance pass.
    STREAM_PENDING_CHECK_INTERVAL: 600,
  }));
  const copiedPromptly = async (key: string) => {
    await waitForCopy(src, key, dst, key, { timeoutMs: PROMPT_MS });
  };
  /** Appends to one stream, while the shared reader blocks, and waits for its copy. */
  const appendWhileBlocked = async (key: string, count: number) => {
    await waitFor(async () => await blockedReaders(src) === 1, {
      message: "the shared reader blocked in XREADGROUP or XREAD",
    });
    await sampleConnections();
    await addEntries(src, key, count);
    await copiedPromptly(key);
  };
  for (const key of [...keep, "gone-stream", "typed-stream"]) await copiedPromptly(key);
  const goneCopy = await dst.xrangeAll("gone-stream");
  const typedCopy = await dst.xrangeAll("typed-stream");
  // After its batch a stream reads again while the reader already blocks on
  // the others: each round needs the wake-up.
  for (let round = 0; round < 3; round++) {
    for (const key of keep) await appendWhileBlocked(key, 3);
  }

  // Deleted while the shared read blocks on it: the read is woken with an
  // error; only that stream's loop ends.
  await waitFor(async () => await blockedReaders(src) === 1, { message: "a blocked reader" });
  await src.send(["DEL", "gone-stream"]);
  await waitFor(
    () =>
      streamStatus(replicator, "gone-stream") === undefined &&
      logs.at("INFO", /stream is gone .*: db0:gone-stream;/).length > 0,
    { timeoutMs: PROMPT_MS, message: "the loop of gone-stream to end" },
  );
  for (let round = 0; round < 2; round++) {
    for (const key of keep) await appendWhileBlocked(key, 2);
  }

  // Replaced by a string in one command while the shared read blocks on it.
  await waitFor(async () => await blockedReaders(src) === 1, { message: "a blocked reader" });
  await src.send(["SET", "typed-stream", "now a string"]);
  await waitFor(
    () =>
      streamStatus(replicator, "typed-stream") === undefined &&
      logs.at("WARNING", /db0:typed-stream/).length > 0,
    { timeoutMs: PROMPT_MS, message: "the loop of typed-stream to end" },
  );
  for (let round = 0; round < 2; round++) {
    for (const key of keep) await appendWhileBlocked(key, 2);
  }

  // A new stream, created while the reader blocks and nothing else is written:
  // discovery finds it, and the reader must be woken to read it.
  await waitFor(async () => await blockedReaders(src) === 1, { message: "a blocked reader" });
  await addEntries(src, "new-stream", 7);
  await copiedPromptly("new-stream");
  await appendWhileBlocked("new-stream", 3);
  await sampleConnections();

  await waitSettled(src, dst, [...keep, "new-stream"]);
  assert.ok(!replicator.finished, "the run ended");
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  // The copies of the deleted and the retyped stream are kept as they were.
  assertSameEntries(await dst.xrangeAll("gone-stream"), goneCopy, "target gone-stream");
  assertSameEntries(await dst.xrangeAll("typed-stream"), typedCopy, "target typed-stream");
  assert.equal(await src.send(["GET", "typed-stream"]), "now a string");
  assert.equal(logs.at("INFO", /stream is gone .*: db0:gone-stream;/).length, 1, logs.toString());
  assert.equal(
    logs.at("WARNING", /(is|are) gone .*db0:gone-stream|db0:gone-stream is gone/).length,
    0,
  );
  assert.equal(logs.at("WARNING", /db0:typed-stream/).length, 1, logs.toString());
  assert.equal(logs.atLeast("ERROR").length, 0, logs.toString());
  // One reader connection and the control connection, never more, never reopened:
  // CLIENT LIST samples, and the server's count of connections it accepted.
  assert.ok(mostConnections >= 1 && mostConnections <= 2, `${mostConnections} source connections`);
  const opened = await src.connectionsReceived() - connectionsBefore;
  assert.ok(opened >= 1 && opened <= 2, `the replicator opened ${opened} source connections`);
}

Deno.test("streams sharing one reader connection (pool of 1, 30 s reads): one deleted, one retyped while it blocks; the others keep copying and a new stream is copied without waiting out the read (leases: fenced reads, XREAD waits)", async () => {
  await sharedReaderScenario(true);
});

Deno.test("streams sharing one reader connection (pool of 1, 30 s reads): one deleted, one retyped while it blocks; the others keep copying and a new stream is copied without waiting out the read (without leases: blocking XREADGROUP)", async () => {
  await sharedReaderScenario(false);
});

// ---------------------------------------------------------------------------
// Odd input

Deno.test("streams with 0 entries (trimmed, or made by XGROUP CREATE MKSTREAM) cause no error and are copied once they get entries", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "trimmed-stream", 5);
  await src.send(["XTRIM", "trimmed-stream", "MAXLEN", "0"]);
  await src.send(["XGROUP", "CREATE", "made-stream", GROUP, "$", "MKSTREAM"]);
  await addEntries(src, "full-stream", 5);
  assert.equal(Number(await src.send(["XLEN", "trimmed-stream"])), 0);
  assert.equal(Number(await src.send(["XLEN", "made-stream"])), 0);
  await using replicator = startReplicator(faultConfig(source, target));
  await waitForCopy(src, "full-stream", dst);
  await waitFor(
    () =>
      ["trimmed-stream", "made-stream"].every((key) =>
        streamStatus(replicator, key)?.state === "replicating"
      ),
    { message: "the empty streams' loops replicating" },
  );
  await waitForDiscoveryPasses(replicator, 2); // passes over empty streams: nothing happens
  for (const key of ["trimmed-stream", "made-stream"]) {
    const status = streamStatus(replicator, key);
    assert.equal(status?.state, "replicating", JSON.stringify(status));
    assert.equal(Number(await dst.send(["EXISTS", key])), 0);
  }
  await addEntries(src, "trimmed-stream", 3);
  await addEntries(src, "made-stream", 2);
  await waitSettled(src, dst, ["trimmed-stream", "made-stream", "full-stream"]);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(logs.atLeast("WARNING"), [], logs.toString());
});

Deno.test("a 5 MB entry is copied byte for byte", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const big = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65_536) crypto.getRandomValues(big.subarray(i, i + 65_536));
  await addEntries(src, "big-stream", 2);
  await src.xadd("big-stream", "*", [new TextEncoder().encode("blob"), big, "tail", "x"]);
  await addEntries(src, "big-stream", 2);
  await using replicator = startReplicator(faultConfig(source, target));
  const copied = await waitForCopy(src, "big-stream", dst);
  assert.equal(copied.length, 5);
  assert.equal(copied[2][1][1].length, big.length);
  assert.ok(sameEntries(await dst.xrangeAll("big-stream"), copied));
  await waitSettled(src, dst, ["big-stream"]);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("keys with a newline (and CR, space, tab) in their name are copied under the same bytes", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = ["line\nbreak-stream", "crlf\r\n-stream", "space tab\t-stream"];
  for (const key of keys) await addEntries(src, key, 7);
  await using replicator = startReplicator(faultConfig(source, target));
  await waitSettled(src, dst, keys);
  for (const key of keys) await addEntries(src, key, 3);
  await waitSettled(src, dst, keys);
  const targetKeys = (await dst.send(["KEYS", "*"]) as string[]).sort();
  assert.deepEqual(targetKeys, [...keys].sort());
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
  assert.deepEqual(logs.atLeast("WARNING"), [], logs.toString());
});

Deno.test("a consumer group created by someone else at $ is used as is: only entries added after it are copied", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const key = "preset-stream";
  const early = await addEntries(src, key, 5);
  await src.send(["XGROUP", "CREATE", key, GROUP, "$"]);
  await using replicator = startReplicator(faultConfig(source, target));
  await waitFor(() => streamStatus(replicator, key)?.state === "replicating", {
    message: "the loop of preset-stream replicating",
  });
  const later = await addEntries(src, key, 3);
  await waitFor(async () => Number(await dst.send(["XLEN", key])) === 3, {
    message: "the 3 later entries on the target",
  });
  // Group maintenance passes (each looks at the group's consumers with XINFO CONSUMERS, every
  // STREAM_PENDING_CHECK_INTERVAL, and claims what is pending) must not bring the early entries in.
  const passes = await src.commandCalls("xinfo|consumers");
  await waitFor(async () => await src.commandCalls("xinfo|consumers") >= passes + 2, {
    message: "2 group maintenance passes",
  });
  assert.deepEqual(ids(await dst.xrangeAll(key)), later);
  assertSameEntries(await dst.xrangeAll(key), (await src.xrangeAll(key)).slice(5), key);
  assert.equal(await pendingCount(src, key, GROUP), 0);
  assert.equal(early.length, 5);
  const result = await replicator.stop();
  assert.ok(result.ok, JSON.stringify(result.failures));
});

Deno.test("streams in all 16 DBs are replicated with TARGET_REDIS_DB=same", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  const srcs: TestClient[] = [];
  const dsts: TestClient[] = [];
  try {
    for (let db = 0; db < 16; db++) {
      srcs.push(await connect(source, { db }));
      dsts.push(await connect(target, { db }));
      await addEntries(srcs[db], `db${db}-stream`, 10 + db);
      if (db % 3 === 0) await addEntries(srcs[db], `extra${db}-stream`, 4);
    }
    await using replicator = startReplicator(
      faultConfig(source, target, { REDIS_DB_SEARCH_RANGE: "0-15", TARGET_REDIS_DB: "same" }),
    );
    const keysOf = (
      db: number,
    ) => [`db${db}-stream`, ...(db % 3 === 0 ? [`extra${db}-stream`] : [])];
    for (let db = 0; db < 16; db++) await waitSettled(srcs[db], dsts[db], keysOf(db));
    for (let db = 0; db < 16; db++) await addEntries(srcs[db], `db${db}-stream`, 5);
    for (let db = 0; db < 16; db++) {
      await waitSettled(srcs[db], dsts[db], keysOf(db));
      assert.deepEqual((await dsts[db].send(["KEYS", "*"]) as string[]).sort(), keysOf(db).sort());
    }
    const result = await replicator.stop();
    assert.ok(result.ok, JSON.stringify(result.failures));
    assert.equal(result.streams.length, 16 + 6);
  } finally {
    for (const client of [...srcs, ...dsts]) await client.close();
  }
});
