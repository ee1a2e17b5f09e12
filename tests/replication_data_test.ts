/**
 * End-to-end tests of what the replicator copies and how safely: bytes and
 * IDs copied exactly, odd key names, idempotent re-delivery, a target that
 * something else wrote into, a read whose reply was lost, hundreds of
 * streams over a bounded pool, graceful shutdown of the real CLI, and both
 * servers restarted while it runs. Real `redis-server` processes, no mocks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { loadConfig } from "../lib/config/load_config.ts";
import { setupLogging } from "../lib/log.ts";
import { Orchestrator, type RunResult } from "../lib/replication/mod.ts";
import { runCli, spawnCli, stopBoundSeconds, waitFor, writeConfig } from "../testing/cli.ts";
import { connect, type RedisArg, RedisServer, type TestClient } from "../testing/redis.ts";

const GROUP = "redis-sync-group";
const ENCODER = new TextEncoder();

// ---------------------------------------------------------------------------
// Helpers

/** A double-quoted env.conf value (escapes `\`, `"` and newlines). */
function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** env.conf text for `source` -> `target`, fast timings, plus `extra`. */
function envConf(
  source: RedisServer,
  target: RedisServer,
  extra: Record<string, string> = {},
): string {
  const values: Record<string, string> = {
    SOURCE_REDIS_HOST: source.host,
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_HOST: target.host,
    TARGET_REDIS_PORT: String(target.port),
    SOURCE_REDIS_BACKOFF_BASE: "0.05",
    SOURCE_REDIS_BACKOFF_MAX: "0.5",
    TARGET_REDIS_BACKOFF_BASE: "0.05",
    TARGET_REDIS_BACKOFF_MAX: "0.5",
    STREAM_POLL_INTERVAL: "0.2",
    STREAM_DISCOVERY_INTERVAL: "0.3",
    STREAM_DISCOVERY_PATTERNS: "*",
    REDIS_DB_SEARCH_RANGE: "0",
    LOG_LEVEL: "ERROR",
    METRICS_PORT: "0",
    ...extra,
  };
  return Object.entries(values).map(([key, value]) => `${key}=${quote(value)}\n`).join("");
}

/** Log lines of the service, captured (and kept off the test output). */
async function captureLogs(level: "ERROR" | "WARNING" | "INFO" = "ERROR"): Promise<string[]> {
  const lines: string[] = [];
  await setupLogging({ level, format: "%(levelname)s %(message)s", write: (l) => lines.push(l) });
  return lines;
}

/** Rejects when `promise` has not settled within `ms` (so that a hang fails the test). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `run --once` in-process; fails (after aborting the run) when it has not returned in 30 s. */
async function runOnce(envText: string, timeoutMs = 30_000): Promise<RunResult> {
  const { config } = loadConfig({}, {}, envText);
  const controller = new AbortController();
  const run = new Orchestrator(config).run(controller.signal, { once: true });
  try {
    return await within(run, timeoutMs, "run --once to return");
  } catch (error) {
    controller.abort();
    await within(run, 15_000, "run --once to stop").catch(() => {});
    throw error;
  }
}

/** A continuous in-process `run`; stop() (or disposal) aborts it and waits for it. */
class Running implements AsyncDisposable {
  readonly orchestrator: Orchestrator;
  readonly promise: Promise<RunResult>;
  #controller = new AbortController();
  #settled = false;

  constructor(envText: string) {
    const { config } = loadConfig({}, {}, envText);
    this.orchestrator = new Orchestrator(config);
    this.promise = this.orchestrator.run(this.#controller.signal);
    this.promise.then(() => (this.#settled = true), () => (this.#settled = true));
  }

  /** Whether run() returned (or threw) already. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Aborts the run and waits (at most 15 s, then fails) for it to return. */
  async stop(): Promise<RunResult> {
    this.#controller.abort();
    return await within(this.promise, 15_000, "the replicator to stop");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#controller.abort();
    await within(this.promise.catch(() => {}), 15_000, "the replicator to stop (at disposal)");
  }
}

type Entry = [string, Uint8Array[]];

function bytes(value: RedisArg): Uint8Array {
  return typeof value === "string" ? ENCODER.encode(value) : value;
}

function show(key: RedisArg): string {
  return JSON.stringify(typeof key === "string" ? key : Buffer.from(key).toString("latin1"));
}

/** Where `a` and `b` first differ (IDs, field count, bytes), or undefined when equal. */
function firstDifference(
  a: Entry[],
  b: Entry[],
  limit = Math.max(a.length, b.length),
): string | undefined {
  const n = Math.min(a.length, b.length, limit);
  for (let i = 0; i < n; i++) {
    const [idA, fieldsA] = a[i];
    const [idB, fieldsB] = b[i];
    if (idA !== idB) return `entry #${i}: ID ${idA} vs ${idB}`;
    if (fieldsA.length !== fieldsB.length) {
      return `entry ${idA}: ${fieldsA.length} vs ${fieldsB.length} fields/values`;
    }
    for (let j = 0; j < fieldsA.length; j++) {
      if (Buffer.compare(fieldsA[j], fieldsB[j]) !== 0) {
        return `entry ${idA}: field/value #${j} differs (${fieldsA[j].length} vs ${
          fieldsB[j].length
        } bytes)`;
      }
    }
  }
  if (n < limit && a.length !== b.length) return `${a.length} vs ${b.length} entries`;
  return undefined;
}

/** Asserts that target stream `targetKey` equals source stream `key`: same IDs, same bytes. */
async function assertSameStream(
  source: TestClient,
  target: TestClient,
  key: RedisArg,
  targetKey: RedisArg = key,
): Promise<Entry[]> {
  const a = await source.xrangeAll(key);
  const b = await target.xrangeAll(targetKey);
  assert.ok(a.length > 0, `source stream ${show(key)} is empty`);
  const diff = firstDifference(a, b);
  assert.equal(
    diff,
    undefined,
    `target ${show(targetKey)} differs from source ${show(key)}: ${diff}`,
  );
  return b;
}

/** Whether the target stream already equals the source stream (for polling). */
async function sameStream(
  source: TestClient,
  target: TestClient,
  key: RedisArg,
  targetKey: RedisArg = key,
): Promise<boolean> {
  const a = await source.xrangeAll(key);
  const b = await target.xrangeAll(targetKey);
  return a.length > 0 && firstDifference(a, b) === undefined;
}

/** Pending entries of the group on `key`. */
async function pendingCount(client: TestClient, key: RedisArg, group = GROUP): Promise<number> {
  const reply = await client.send(["XPENDING", key, group]) as unknown[];
  return Number(reply[0]);
}

/** XINFO STREAM `entries-added` of a stream: every entry ever added to it, trimmed ones included. */
async function entriesAdded(client: TestClient, key: RedisArg): Promise<number> {
  const flat = await client.send(["XINFO", "STREAM", key]) as unknown[];
  return Number(flat[flat.findIndex((item) => String(item) === "entries-added") + 1]);
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(out.subarray(at, at + 65_536));
  return out;
}

/** Every key of the server's DB 0, as hex. */
async function keysHex(client: TestClient): Promise<string[]> {
  const keys = await client.sendBuffers(["KEYS", "*"]) as Uint8Array[];
  return keys.map((k) => Buffer.from(k).toString("hex")).sort();
}

function hex(key: RedisArg): string {
  return Buffer.from(bytes(key)).toString("hex");
}

/**
 * Adds entries to `key` on `server` as fast as it can (XADD *), until
 * stopped; survives the server going away (reconnects when it is back).
 */
class Producer {
  readonly #server: RedisServer;
  readonly #key: string;
  readonly #pauseMs: number;
  #stopped = false;
  #loop: Promise<void>;
  added = 0;
  failures = 0;

  constructor(server: RedisServer, key: string, pauseMs = 2) {
    this.#server = server;
    this.#key = key;
    this.#pauseMs = pauseMs;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let client: TestClient | null = null;
    while (!this.#stopped) {
      try {
        client ??= await connect(this.#server);
        const n = this.added + 1;
        await client.xadd(this.#key, "*", ["n", String(n), "payload", randomBytes(64 + (n % 200))]);
        this.added = n;
      } catch {
        this.failures++;
        await client?.close();
        client = null;
        await delay(50);
        continue;
      }
      await delay(this.#pauseMs);
    }
    await client?.close();
  }

  /** Stops producing; resolves with the number of entries added. */
  async stop(): Promise<number> {
    this.#stopped = true;
    await this.#loop;
    return this.added;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Byte-exact copies

Deno.test("binary field names and values are copied byte for byte", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);

  const allBytes = new Uint8Array(256).map((_, i) => i);
  const high = new Uint8Array(128).map((_, i) => 0x80 + i);
  const thousand: RedisArg[] = [];
  for (let i = 0; i < 1000; i++) thousand.push(`field-${i}`, i % 7 === 0 ? high : `value-${i}`);
  const entries: Array<[string, RedisArg[]]> = [
    ["1-0", [high, allBytes]],
    ["1-1", [new Uint8Array([0x61, 0x00, 0x62]), new Uint8Array([0, 0, 0]), "nul\0inside", "\0"]],
    ["2-0", ["", "empty field name", "empty value", ""]],
    ["2-1", ["", ""]],
    ["3-0", ["dup", "1", "dup", "2"]],
    ["1700000000000-0", ["big", randomBytes(1024 * 1024)]],
    ["1700000000000-1", ["bigger", randomBytes(2 * 1024 * 1024), "tail", high]],
    ["1700000000001-7", thousand],
    ["1700000000002-0", [new Uint8Array([0xc3, 0x28, 0xff, 0xfe]), "\u6d41\u{1f600}"]],
  ];
  for (const [id, fields] of entries) await source.xadd("bin-stream", id, fields);
  // Extreme IDs: the smallest possible and the largest possible.
  await source.xadd("edge-ids", "0-1", ["a", "b"]);
  await source.xadd("edge-ids", "18446744073709551615-18446744073709551615", ["z", "y"]);

  const result = await runOnce(envConf(sourceServer, targetServer, { STREAM_BATCH_SIZE: "4" }));
  assert.deepEqual(result.failures, []);
  assert.ok(result.ok);

  const copied = await assertSameStream(source, target, "bin-stream");
  assert.deepEqual(copied.map(([id]) => id), entries.map(([id]) => id));
  // Spot checks against what was written (not only against the source).
  assert.deepEqual(copied[0][1], [high, allBytes]);
  assert.equal(copied[4][1].length, 4);
  assert.equal(copied[5][1][1].length, 1024 * 1024);
  assert.equal(copied[6][1][1].length, 2 * 1024 * 1024);
  assert.equal(copied[7][1].length, 2000);
  assert.deepEqual(copied[2][1].map((b) => b.length), [0, 16, 11, 0]);
  const edges = await assertSameStream(source, target, "edge-ids");
  assert.deepEqual(edges.map(([id]) => id), ["0-1", "18446744073709551615-18446744073709551615"]);

  for (const key of ["bin-stream", "edge-ids"]) assert.equal(await pendingCount(source, key), 0);
});

// ---------------------------------------------------------------------------
// Odd key names

const ODD_TEXT_KEYS = ["my stream", "line\nbreak", "{braces}:x", "\u6d41-stream", "tab\there"];
const RAW_KEY = new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x6b]);

/** Five entries in each of `keys[from]..keys[to - 1]` (IDs from the key's index, so distinct per key). */
async function seedOddKeys(
  source: TestClient,
  keys: RedisArg[],
  from = 0,
  to = keys.length,
): Promise<void> {
  for (let i = from; i < to; i++) {
    for (let n = 1; n <= 5; n++) {
      await source.xadd(keys[i], `${i + 1}-${n}`, [
        "key#",
        String(i),
        "bin",
        new Uint8Array([n, 0, 255]),
      ]);
    }
  }
}

Deno.test("odd key names named in REDIS_STREAMS are copied to the same bytes (with prefix)", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  await seedOddKeys(source, ODD_TEXT_KEYS);

  const result = await runOnce(envConf(sourceServer, targetServer, {
    STREAM_AUTO_DISCOVERY: "false",
    REDIS_STREAMS: ODD_TEXT_KEYS.join(","),
    TARGET_STREAM_PREFIX: "copy:",
  }));
  assert.deepEqual(result.failures, []);
  for (const key of ODD_TEXT_KEYS) {
    await assertSameStream(source, target, key, `copy:${key}`);
    assert.equal(await pendingCount(source, key), 0);
  }
  assert.deepEqual(await keysHex(target), ODD_TEXT_KEYS.map((k) => hex(`copy:${k}`)).sort());
});

Deno.test("odd key names, raw non-UTF-8 bytes included, are discovered and copied", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const keys: RedisArg[] = [...ODD_TEXT_KEYS, RAW_KEY];
  await seedOddKeys(source, keys, 0, 3);

  await using run = new Running(envConf(sourceServer, targetServer));
  // Streams created while it runs are discovered too.
  await seedOddKeys(source, keys, 3);
  await waitFor(async () => {
    for (const key of keys) if (!(await sameStream(source, target, key))) return false;
    return true;
  }, { timeoutMs: 20_000, message: "every odd-named stream on the target" });
  await run.stop();

  for (const key of keys) {
    await assertSameStream(source, target, key);
    assert.equal(await pendingCount(source, key), 0);
  }
  assert.deepEqual(await keysHex(target), keys.map(hex).sort());
});

// ---------------------------------------------------------------------------
// Idempotency

Deno.test("re-delivered and other consumers' pending entries leave the target unchanged", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  for (let i = 1; i <= 50; i++) await source.xadd("idem-stream", `${i}-0`, ["i", String(i)]);
  const env = envConf(sourceServer, targetServer, { STREAM_BATCH_SIZE: "8" });

  const first = await runOnce(env);
  assert.ok(first.ok, JSON.stringify(first.failures));
  const before = await assertSameStream(source, target, "idem-stream");
  assert.equal(before.length, 50);

  // Everything is delivered again, and 20 entries are held by another consumer.
  await source.send(["XGROUP", "SETID", "idem-stream", GROUP, "0"]);
  await source.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "intruder",
    "COUNT",
    "20",
    "STREAMS",
    "idem-stream",
    ">",
  ]);
  assert.equal(await pendingCount(source, "idem-stream"), 20);

  const second = await runOnce(env);
  assert.ok(second.ok, JSON.stringify(second.failures));
  const status = second.streams.find((s) => s.key === "idem-stream");
  assert.ok(status);
  assert.equal(status.copied, 0);
  assert.equal(status.skipped, 50);
  assert.equal(status.recovered, 20);
  const after = await target.xrangeAll("idem-stream");
  assert.equal(firstDifference(before, after), undefined);
  assert.equal(await pendingCount(source, "idem-stream"), 0);

  // New entries, some of them taken (not acked) by another consumer: copied once each.
  for (let i = 51; i <= 60; i++) await source.xadd("idem-stream", `${i}-0`, ["i", String(i)]);
  await source.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "intruder",
    "COUNT",
    "4",
    "STREAMS",
    "idem-stream",
    ">",
  ]);
  const third = await runOnce(env);
  assert.ok(third.ok, JSON.stringify(third.failures));
  const final = await assertSameStream(source, target, "idem-stream");
  assert.equal(final.length, 60);
  assert.equal(new Set(final.map(([id]) => id)).size, 60);
  assert.equal(await pendingCount(source, "idem-stream"), 0);
});

Deno.test("re-delivery after TARGET_STREAM_MAXLEN trimmed the target: every entry skipped, the target unchanged byte for byte, nothing pending", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const key = "capped-stream";
  for (let i = 1; i <= 1000; i++) {
    await source.xadd(key, `5000-${i}`, ["i", String(i), "b", new Uint8Array([i & 0xff, 0, 0xff])]);
  }
  const env = envConf(sourceServer, targetServer, { TARGET_STREAM_MAXLEN: "100" });
  const first = await runOnce(env);
  assert.ok(first.ok, JSON.stringify(first.failures));
  assert.equal(first.streams.find((s) => s.key === key)?.copied, 1000);
  const sourceEntries = await source.xrangeAll(key);
  const before = await target.xrangeAll(key);
  // `MAXLEN ~ 100` trims whole nodes: the newest 100 entries at least, far fewer than 1000.
  assert.ok(before.length >= 100 && before.length <= 300, `target holds ${before.length}`);
  assert.equal(firstDifference(before, sourceEntries.slice(-before.length)), undefined);
  const addedBefore = await entriesAdded(target, key);

  // Everything is delivered again. Most entries are now older than the
  // target's first entry: they pass as trimmed (the target lost that many),
  // the others are found on the target; none may be written again.
  await source.send(["XGROUP", "SETID", key, GROUP, "0"]);
  const second = await runOnce(env);
  assert.ok(second.ok, JSON.stringify(second.failures));
  const status = second.streams.find((s) => s.key === key);
  assert.equal(status?.copied, 0, JSON.stringify(status));
  assert.equal(status?.skipped, 1000, JSON.stringify(status));
  const after = await target.xrangeAll(key);
  assert.equal(firstDifference(after, before), undefined, "the target changed");
  assert.equal(await entriesAdded(target, key), addedBefore, "entries were written again");
  assert.equal(firstDifference(await source.xrangeAll(key), sourceEntries), undefined);
  assert.equal(await pendingCount(source, key), 0);
});

Deno.test("entries never copied do not pass as trimmed on a target that lost fewer entries than they are: the stream stops, nothing acked", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const key = "never-copied-stream";
  for (let i = 1; i <= 500; i++) await source.xadd(key, `1-${i}`, ["i", String(i)]);
  // Someone else wrote 150 higher entries into the target stream, then trimmed 50 of them:
  // the target "lost" 50 entries, but never held any of the source's 500.
  for (let i = 1; i <= 150; i++) await target.xadd(key, `2-${i}`, ["foreign", String(i)]);
  await target.send(["XTRIM", key, "MAXLEN", "100"]);
  const foreign = await target.xrangeAll(key);
  // Batches of 50 (each no larger than what the target lost) must not pass one by one.
  const result = await runOnce(envConf(sourceServer, targetServer, { STREAM_BATCH_SIZE: "50" }));
  assert.equal(result.ok, false);
  // Found at the start: the source's last ID is below the target's (the check of entries one
  // by one, when the target is filled while running, is in tests/integrity_test.ts).
  assert.match(
    result.failures[0]?.reason ?? "",
    /never-copied-stream cannot be copied in order: its last ID 1-500 is below the last ID 2-150/,
  );
  assert.equal(firstDifference(await target.xrangeAll(key), foreign), undefined);
  // Nothing acked: every entry delivered to the group is still pending.
  const groups = await source.send(["XINFO", "GROUPS", key]) as unknown[][];
  const info = new Map<string, unknown>();
  for (let i = 0; i + 1 < groups[0].length; i += 2) {
    info.set(String(groups[0][i]), groups[0][i + 1]);
  }
  assert.equal(Number(info.get("pending")), Number(info.get("entries-read")));
});

Deno.test("a target that already holds entries 1..N gets exactly N+1..N+M, in order", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const N = 30;
  const M = 20;
  for (let i = 1; i <= N + M; i++) {
    const fields = ["i", String(i), "b", new Uint8Array([i, 0, 0xff])];
    await source.xadd("resume-stream", `1000-${i}`, fields);
    if (i <= N) await target.xadd("resume-stream", `1000-${i}`, fields);
  }
  // Batches of 7: one batch straddles the entries the target has and the new ones.
  const result = await runOnce(envConf(sourceServer, targetServer, { STREAM_BATCH_SIZE: "7" }));
  assert.ok(result.ok, JSON.stringify(result.failures));
  const copied = await assertSameStream(source, target, "resume-stream");
  assert.equal(copied.length, N + M);
  const status = result.streams.find((s) => s.key === "resume-stream");
  assert.equal(status?.copied, M);
  assert.equal(status?.skipped, N);
  assert.equal(await pendingCount(source, "resume-stream"), 0);
});

// ---------------------------------------------------------------------------
// Something else wrote into the target stream

Deno.test("a target stream written by something else stops that stream, unacked; others go on", async () => {
  const logs = await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  for (let i = 1; i <= 5; i++) {
    await source.xadd("broken-stream", `${i}-0`, ["i", String(i)]);
    await source.xadd("fine-stream", `${i}-0`, ["i", String(i)]);
  }
  // Someone else wrote a higher ID into the target stream: 1-0..5-0 can never be inserted.
  await target.xadd("broken-stream", "100-0", ["foreign", "writer"]);
  const env = envConf(sourceServer, targetServer);

  const once = await runOnce(env);
  assert.equal(once.ok, false);
  assert.equal(once.failures.length, 1, JSON.stringify(once.failures));
  assert.match(once.failures[0].stream, /broken-stream/);
  assert.match(once.failures[0].reason, /something else wrote into the target stream/);
  // Found at the start (its group was new): the source's last ID is below the target's.
  assert.match(once.failures[0].reason, /last ID 5-0 is below the last ID 100-0/);
  assert.deepEqual(await nothingAcked(source, "broken-stream"), { read: 0, pending: 0 });
  const foreign: Entry[] = [["100-0", [bytes("foreign"), bytes("writer")]]];
  assert.equal(firstDifference(await target.xrangeAll("broken-stream"), foreign), undefined);
  await assertSameStream(source, target, "fine-stream");
  assert.equal(await pendingCount(source, "fine-stream"), 0);

  // Running continuously: the broken stream keeps failing (logged, named), the other flows.
  await using run = new Running(env);
  for (let i = 6; i <= 9; i++) {
    await source.xadd("broken-stream", `${i}-0`, ["i", String(i)]);
    await source.xadd("fine-stream", `${i}-0`, ["i", String(i)]);
  }
  await waitFor(() => sameStream(source, target, "fine-stream"), {
    timeoutMs: 10_000,
    message: "fine-stream to keep replicating",
  });
  await waitFor(
    () => logs.some((l) => l.startsWith("ERROR") && /broken-stream.*something else wrote/s.test(l)),
    { timeoutMs: 10_000, message: "an error naming broken-stream" },
  );
  await run.stop();
  assert.equal(run.settled, true);
  assert.equal(firstDifference(await target.xrangeAll("broken-stream"), foreign), undefined);
  // Refused at each start (its group never delivered up to the target's top): nothing read.
  assert.deepEqual(await nothingAcked(source, "broken-stream"), { read: 0, pending: 0 });
  await assertSameStream(source, target, "fine-stream");
  assert.equal(await pendingCount(source, "fine-stream"), 0);
});

/** The group's entries read and entries pending: equal when nothing was acknowledged. */
async function nothingAcked(
  client: TestClient,
  key: string,
): Promise<{ read: number; pending: number }> {
  const [info] = await client.send(["XINFO", "GROUPS", key]) as unknown[][];
  const field = (name: string) => Number(info[info.indexOf(name) + 1]);
  return { read: field("entries-read"), pending: field("pending") };
}

Deno.test("a foreign entry above copied ones stops the stream instead of losing entries", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  for (let i = 1; i <= 3; i++) await source.xadd("mixed-stream", `${i}-0`, ["i", String(i)]);
  const env = envConf(sourceServer, targetServer);
  assert.ok((await runOnce(env)).ok);
  const copied = await assertSameStream(source, target, "mixed-stream");
  // Entries 4..6 come on the source, but a foreign 50-0 lands on the target first.
  for (let i = 4; i <= 6; i++) await source.xadd("mixed-stream", `${i}-0`, ["i", String(i)]);
  await target.xadd("mixed-stream", "50-0", ["foreign", "writer"]);

  const result = await runOnce(env);
  assert.equal(result.ok, false);
  // Found at the start: the group delivered up to 3-0, below the target's 50-0, and the
  // source's last ID is below it too.
  assert.match(
    result.failures[0]?.reason ?? "",
    /mixed-stream cannot be copied in order: its last ID 6-0 is below the last ID 50-0/,
  );
  // Nothing more was read, so nothing was acked as copied.
  assert.deepEqual(await nothingAcked(source, "mixed-stream"), { read: 3, pending: 0 });
  // The target as it was: the three copies and the foreign entry, IDs and bytes.
  const expected: Entry[] = [...copied, ["50-0", [bytes("foreign"), bytes("writer")]]];
  assert.equal(firstDifference(await target.xrangeAll("mixed-stream"), expected), undefined);
});

Deno.test("entries delivered by a read whose reply was lost are copied before later ones", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  for (let i = 1; i <= 10; i++) await source.xadd("lost-reply", `${i}-0`, ["i", String(i)]);
  // A long BLOCK, so that the reader is surely blocked when its connection is killed.
  // Without leases: the stale read below is an unfenced XREADGROUP as the bare consumer name.
  await using run = new Running(
    envConf(sourceServer, targetServer, { STREAM_POLL_INTERVAL: "5", STREAM_LEASES: "false" }),
  );
  await waitFor(() => sameStream(source, target, "lost-reply"), { message: "entries 1..10" });
  let readers: Array<Record<string, string>> = [];
  await waitFor(async () => {
    readers = (await source.clientList()).filter((c) =>
      (c.name ?? "").startsWith("redis-stream-sync-reader")
    );
    return readers.length > 0 && readers.every((c) => c.cmd === "xreadgroup");
  }, { message: "the reader blocked in XREADGROUP" });

  // What a lost reply leaves behind: the server delivers entry 11 to the
  // replicator's consumer (it is pending for it) and the connection dies
  // before the reply arrives.
  await source.send(["MULTI"]);
  await source.send(["XADD", "lost-reply", "11-0", "i", "11"]);
  await source.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "redis-sync-consumer",
    "COUNT",
    "10",
    "STREAMS",
    "lost-reply",
    ">",
  ]);
  for (const reader of readers) await source.send(["CLIENT", "KILL", "ID", reader.id]);
  await source.send(["EXEC"]);
  await source.xadd("lost-reply", "12-0", ["i", "12"]);

  await waitFor(async () => (await target.xrangeAll("lost-reply")).at(-1)?.[0] === "12-0", {
    timeoutMs: 15_000,
    message: "entry 12 on the target",
  });
  await run.stop();
  const ids = (await target.xrangeAll("lost-reply")).map(([id]) => id);
  assert.deepEqual(ids, Array.from({ length: 12 }, (_, i) => `${i + 1}-0`));
  await assertSameStream(source, target, "lost-reply");
  assert.equal(await pendingCount(source, "lost-reply"), 0);
});

/**
 * Replicates entries 1..5 of `key`, kills the reader's connection (the
 * replicator reconnects), then plays a read it had sent on the dead
 * connection, held by the network and run by the server late: it delivers
 * 6..8 to the replicator's consumer and nobody receives them (`deleteSix`:
 * and 6-0 is deleted from the source since). Then adds 9-0 and returns the
 * target's IDs once 9-0 arrived, and how many re-reads were logged.
 */
async function staleReadScenario(key: string, deleteSix: boolean) {
  const logs = await captureLogs("WARNING");
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  for (let i = 1; i <= 5; i++) await source.xadd(key, `${i}-0`, ["i", String(i)]);
  // Without leases: the stale read below is an unfenced XREADGROUP as the bare consumer name.
  await using run = new Running(
    envConf(sourceServer, targetServer, { STREAM_POLL_INTERVAL: "5", STREAM_LEASES: "false" }),
  );
  await waitFor(() => sameStream(source, target, key), { message: "entries 1..5" });

  const readerIds = async () =>
    (await source.clientList()).filter((c) =>
      (c.name ?? "").startsWith("redis-stream-sync-reader") && c.cmd === "xreadgroup" &&
      (c.flags ?? "").includes("b") // blocked: back to reading new entries
    ).map((c) => c.id);
  let before: string[] = [];
  await waitFor(async () => (before = await readerIds()).length > 0, {
    message: "a blocked reader",
  });
  for (const id of before) await source.send(["CLIENT", "KILL", "ID", id]);
  await waitFor(async () => (await readerIds()).some((id) => !before.includes(id)), {
    message: "the reader reconnected and blocked again",
  });
  // Only the check before each write can notice. (MULTI: the blocked reader
  // is served only after EXEC.)
  await source.send(["MULTI"]);
  for (let i = 6; i <= 8; i++) await source.send(["XADD", key, `${i}-0`, "i", String(i)]);
  await source.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "redis-sync-consumer",
    "COUNT",
    "10",
    "STREAMS",
    key,
    ">",
  ]);
  if (deleteSix) await source.send(["XDEL", key, "6-0"]); // gone from the source, still pending
  await source.send(["EXEC"]);
  await source.xadd(key, "9-0", ["i", "9"]);

  await waitFor(async () => (await target.xrangeAll(key)).at(-1)?.[0] === "9-0", {
    timeoutMs: 15_000,
    message: "entry 9 on the target",
  });
  await run.stop();
  await assertSameStream(source, target, key);
  assert.equal(await pendingCount(source, key), 0);
  return {
    ids: (await target.xrangeAll(key)).map(([id]) => id),
    rereads: logs.filter((line) => /read whose reply was lost/.test(line)).length,
  };
}

Deno.test("entries delivered by a stale read that ran after a reconnect are copied before later ones", async () => {
  const { ids, rereads } = await staleReadScenario("stale-read", false);
  assert.deepEqual(ids, Array.from({ length: 9 }, (_, i) => `${i + 1}-0`));
  assert.ok(rereads >= 1, "a warning says why");
});

Deno.test("a stale read whose oldest entry was deleted since does not make the replicator spin", async () => {
  const { ids, rereads } = await staleReadScenario("stale-del", true);
  assert.deepEqual(ids, ["1-0", "2-0", "3-0", "4-0", "5-0", "7-0", "8-0", "9-0"]);
  assert.ok(rereads >= 1 && rereads <= 3, `re-read ${rereads} times`);
});

// ---------------------------------------------------------------------------
// Many streams over a bounded pool

Deno.test("300 streams are all replicated within pools of 10 connections", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const keys = Array.from({ length: 300 }, (_, i) => `many-${String(i).padStart(3, "0")}`);
  await Promise.all(keys.map(async (key, i) => {
    for (let n = 1; n <= 4; n++) await source.xadd(key, `${i + 1}-${n}`, ["n", String(n)]);
  }));

  const ours = async (client: TestClient) =>
    (await client.clientList()).filter((c) => (c.name ?? "").startsWith("redis-stream-sync"))
      .length;
  let maxSource = 0;
  let maxTarget = 0;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [s, t] = await Promise.all([ours(source), ours(target)]);
      maxSource = Math.max(maxSource, s);
      maxTarget = Math.max(maxTarget, t);
      samples++;
      await delay(25);
    }
  })();

  // The servers' own count of the connections they accepted, before and after:
  // the test opens none in between, and nothing here provokes a reconnect.
  const receivedBefore = [await source.connectionsReceived(), await target.connectionsReceived()];
  const lengthsMatch = async (expected: Map<string, number>) => {
    const lengths = await Promise.all(keys.map((key) => target.send(["XLEN", key])));
    return keys.every((key, i) => Number(lengths[i]) === expected.get(key));
  };
  try {
    await using run = new Running(envConf(sourceServer, targetServer, {
      SOURCE_REDIS_POOL_SIZE: "10",
      TARGET_REDIS_POOL_SIZE: "10",
      STREAM_DISCOVERY_PATTERNS: "many-*",
    }));
    const expected = new Map(keys.map((key) => [key, 4]));
    await waitFor(() => lengthsMatch(expected), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: "all 300 streams on the target",
    });
    // Entries written while running, to 50 random streams, keep flowing.
    const shuffled = [...keys].sort(() => Math.random() - 0.5).slice(0, 50);
    await Promise.all(shuffled.map(async (key) => {
      for (let n = 0; n < 3; n++) await source.xadd(key, "*", ["late", String(n)]);
      expected.set(key, 7);
    }));
    await waitFor(() => lengthsMatch(expected), {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: "the entries added to 50 streams while running",
    });
    await run.stop();
  } finally {
    sampling = false;
    await sampler;
  }
  for (const key of keys) await assertSameStream(source, target, key);
  const pending = await Promise.all(keys.map((key) => pendingCount(source, key)));
  assert.equal(pending.reduce((a, b) => a + b, 0), 0);
  assert.ok(samples >= 5, `only ${samples} CLIENT LIST samples`);
  assert.ok(maxSource >= 2, `sampling saw ${maxSource} source connections`);
  assert.ok(maxSource <= 11, `${maxSource} source connections (pool 10 + 1 control)`);
  assert.ok(maxTarget <= 10, `${maxTarget} target connections (pool 10)`);
  const [sourceOpened, targetOpened] = [
    await source.connectionsReceived() - receivedBefore[0],
    await target.connectionsReceived() - receivedBefore[1],
  ];
  assert.ok(sourceOpened >= 2, `the replicator opened ${sourceOpened} source connections`);
  assert.ok(sourceOpened <= 11, `${sourceOpened} source connections opened (pool 10 + 1 control)`);
  assert.ok(targetOpened >= 1 && targetOpened <= 10, `${targetOpened} target connections opened`);
});

// ---------------------------------------------------------------------------
// Process level: graceful shutdown, outages

Deno.test("SIGTERM with entries in flight exits 0 within the grace period; run --once then completes the copy", async () => {
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-data-" });
  try {
    const configPath = await writeConfig(
      dir,
      envConf(sourceServer, targetServer, { STREAM_BATCH_SIZE: "20", LOG_LEVEL: "INFO" }),
    );
    const producer = new Producer(sourceServer, "live-stream", 1);
    let stopped = false;
    try {
      await using cli = spawnCli(["run", "--config", configPath], { timeoutMs: 60_000 });
      await waitFor(async () => Number(await target.send(["XLEN", "live-stream"])) >= 200, {
        timeoutMs: 30_000,
        message: "the CLI to copy 200 entries",
      });
      const before = producer.added;
      await waitFor(() => producer.added >= before + 50, { message: "more entries produced" });
      const started = Date.now();
      cli.signal("SIGTERM");
      const result = await cli.wait();
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.code, 0, result.stderr);
      // The grace period (STREAM_POLL_INTERVAL 0.2 s + 4 s) + a poll + room for a slow machine.
      const bound = stopBoundSeconds(0.2);
      assert.ok(seconds <= bound, `exit took ${seconds.toFixed(1)} s (bound ${bound} s)`);
      assert.match(result.stderr, /Stopped/);
      await producer.stop();
      stopped = true;
    } finally {
      if (!stopped) await producer.stop();
    }

    // Whatever was copied is an exact prefix of the source: nothing corrupted or reordered.
    const src = await source.xrangeAll("live-stream");
    const tgt = await target.xrangeAll("live-stream");
    assert.ok(tgt.length >= 200 && tgt.length <= src.length, `${tgt.length} of ${src.length}`);
    assert.equal(firstDifference(src, tgt, tgt.length), undefined);

    const once = await runCli(["run", "--once", "--config", configPath], { timeoutMs: 30_000 });
    assert.equal(once.code, 0, once.stderr);
    const copied = await assertSameStream(source, target, "live-stream");
    assert.equal(copied.length, src.length);
    assert.equal(await pendingCount(source, "live-stream"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("source and target restarted while running: nothing lost, nothing duplicated", async () => {
  const logs = await captureLogs("INFO");
  await using sourceServer = await RedisServer.start({ appendOnly: true });
  await using targetServer = await RedisServer.start({ appendOnly: true });
  const env = envConf(sourceServer, targetServer, {
    STREAM_BATCH_SIZE: "25",
    SOURCE_REDIS_COMMAND_TIMEOUT: "2",
    TARGET_REDIS_COMMAND_TIMEOUT: "2",
  });
  await using run = new Running(env);
  const producer = new Producer(sourceServer, "outage-stream", 2);
  let produced: number;
  try {
    const targetLength = async () => {
      await using target = await connect(targetServer);
      return Number(await target.send(["XLEN", "outage-stream"]));
    };
    await waitFor(async () => (await targetLength()) >= 50, {
      timeoutMs: 15_000,
      message: "first entries on the target",
    });

    // Target killed (SIGKILL: a batch may be written without its reply) while the
    // producer goes on writing to the source.
    await targetServer.kill();
    const duringTargetOutage = producer.added;
    // The replicator notices the outage while the producer goes on writing.
    await waitFor(
      () =>
        run.orchestrator.status().target.outages >= 1 && producer.added > duringTargetOutage + 20,
      { timeoutMs: 15_000, message: "the target outage noticed while the producer writes" },
    );
    await targetServer.start();
    const afterTarget = producer.added;
    await waitFor(async () => (await targetLength()) >= afterTarget, {
      timeoutMs: 20_000,
      message: "the target to catch up after its restart",
    });

    // Source down (the producer fails and retries), then back.
    await sourceServer.stop();
    await waitFor(() => run.orchestrator.status().source.outages >= 1, {
      timeoutMs: 15_000,
      message: "the source outage noticed",
    });
    await sourceServer.start();
    const afterSource = producer.added;
    await waitFor(() => producer.added >= afterSource + 100, {
      timeoutMs: 15_000,
      message: "the producer to write again after the source restart",
    });
    assert.equal(run.settled, false, "the replicator must keep running through outages");
  } finally {
    produced = await producer.stop();
  }

  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  try {
    await waitFor(
      async () =>
        (await sameStream(source, target, "outage-stream")) &&
        (await pendingCount(source, "outage-stream")) === 0,
      { timeoutMs: 30_000, intervalMs: 100, message: "target == source with nothing pending" },
    );
  } catch (error) {
    const a = await source.xrangeAll("outage-stream");
    const b = await target.xrangeAll("outage-stream");
    const pending = await source.send(["XPENDING", "outage-stream", GROUP]);
    const groups = await source.send(["XINFO", "GROUPS", "outage-stream"]);
    throw new Error(
      `${(error as Error).message}\nsource ${a.length} (last ${
        a.at(-1)?.[0]
      }), target ${b.length} (last ${b.at(-1)?.[0]}), first difference: ${
        firstDifference(a, b)
      }\npending ${JSON.stringify(pending)}\ngroups ${JSON.stringify(groups)}\nstatus ${
        JSON.stringify(run.orchestrator.status(), null, 1)
      }\nlogs:\n${logs.join("")}`,
    );
  }
  assert.equal(run.settled, false, "the replicator must keep running through outages");
  const health = run.orchestrator.status();
  assert.ok(health.source.outages >= 1, "the replicator saw the source outage");
  assert.ok(health.target.outages >= 1, "the replicator saw the target outage");
  await run.stop();
  const copied = await assertSameStream(source, target, "outage-stream");
  // An XADD whose reply was lost in the outage may still have been applied.
  assert.ok(copied.length >= produced, `${copied.length} entries copied, ${produced} produced`);
  assert.equal(new Set(copied.map(([id]) => id)).size, copied.length);
  assert.equal(await pendingCount(source, "outage-stream"), 0);
});

// ---------------------------------------------------------------------------
// Found in review

Deno.test("pending entries far apart, with other copied entries between them, are recognised as copied", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  // Source: 1000-x, 2000-x (50 of them) and 5000-x; the target already holds all of them
  // (an earlier service copied them), but 1000-x and 5000-x were never acked: pending
  // for the original service's consumer, in one XAUTOCLAIM batch.
  const ids = [
    ...Array.from({ length: 10 }, (_, i) => `1000-${i}`),
    ...Array.from({ length: 50 }, (_, i) => `2000-${i}`),
    ...Array.from({ length: 10 }, (_, i) => `5000-${i}`),
  ];
  for (const id of ids) {
    await source.xadd("far-stream", id, ["id", id]);
    await target.xadd("far-stream", id, ["id", id]);
  }
  await source.send(["XGROUP", "CREATE", "far-stream", GROUP, "0"]);
  await source.send([
    "XREADGROUP",
    "GROUP",
    GROUP,
    "old-consumer-4242",
    "COUNT",
    "100",
    "STREAMS",
    "far-stream",
    ">",
  ]);
  await source.send(["XACK", "far-stream", GROUP, ...ids.filter((id) => id.startsWith("2000-"))]);
  assert.equal(await pendingCount(source, "far-stream"), 20);

  const result = await runOnce(envConf(sourceServer, targetServer));
  assert.equal(result.ok, true, JSON.stringify(result.failures));
  const status = result.streams.find((s) => s.key === "far-stream");
  assert.equal(status?.skipped, 20);
  assert.equal(status?.copied, 0);
  assert.equal(await pendingCount(source, "far-stream"), 0);
  await assertSameStream(source, target, "far-stream");
});

Deno.test("a stream deleted and created again is copied whole, even with STREAM_START_ID=$", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  await source.send(["XGROUP", "CREATE", "again-stream", GROUP, "$", "MKSTREAM"]);
  await source.xadd("again-stream", "1-0", ["n", "1", "b", new Uint8Array([0xff, 0])]);
  const original = await source.xrangeAll("again-stream");
  await using run = new Running(envConf(sourceServer, targetServer, { STREAM_START_ID: "$" }));
  await waitFor(async () => (await target.xrangeAll("again-stream")).length === 1, {
    message: "entry 1-0 copied",
  });
  await source.send(["DEL", "again-stream"]);
  // Written right away, before any discovery pass can see the new stream.
  for (let i = 10; i < 15; i++) await source.xadd("again-stream", `${i}-0`, ["n", String(i)]);
  await waitFor(async () => (await target.xrangeAll("again-stream")).length === 6, {
    timeoutMs: 15_000,
    message: "the recreated stream's entries copied",
  });
  await run.stop();
  const copied = await target.xrangeAll("again-stream");
  assert.deepEqual(copied.map(([id]) => id), ["1-0", "10-0", "11-0", "12-0", "13-0", "14-0"]);
  // IDs and bytes: the old entry as it was, then the recreated stream whole.
  const expected = [...original, ...await source.xrangeAll("again-stream")];
  assert.equal(firstDifference(copied, expected), undefined);
});

Deno.test("idle connections are checked with PING every *_HEALTH_CHECK_INTERVAL", async () => {
  await captureLogs();
  await using sourceServer = await RedisServer.start();
  await using targetServer = await RedisServer.start();
  await using source = await connect(sourceServer);
  await using target = await connect(targetServer);
  await source.xadd("ping-stream", "1-0", ["n", "1"]);
  await using run = new Running(envConf(sourceServer, targetServer, {
    TARGET_REDIS_HEALTH_CHECK_INTERVAL: "0.2",
    SOURCE_REDIS_HEALTH_CHECK_INTERVAL: "0.2",
  }));
  await waitFor(() => sameStream(source, target, "ping-stream"), { message: "copied" });
  // The target's writer connection is idle from now on: its last command becomes PING.
  await waitFor(
    async () =>
      (await target.clientList()).some((c) =>
        (c.name ?? "").startsWith("redis-stream-sync-target") && c.cmd === "ping"
      ),
    { timeoutMs: 10_000, message: "a PING on the idle target connection" },
  );
  await run.stop();
});
