/**
 * Operability, end to end: the metrics and health listener of `run`,
 * `status`, `verify` (including a 1,000,000-entry stream in bounded memory),
 * TARGET_STREAM_MAXLEN, MIRROR_SOURCE_TRIM, and the permission flags of the
 * compiled binary. Every test runs the real CLI (main.ts in a subprocess,
 * testing/cli.ts) against real `redis-server` processes (testing/redis.ts).
 * No mocks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type CliResult, runCli, spawnCli, START_FLAGS, waitFor } from "../testing/cli.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";
import { replicationEnv, type Settings } from "./_replication.ts";

const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));
const MAIN_TS = fileURLToPath(new URL("../main.ts", import.meta.url));
const RUN_TIMEOUT_MS = 90_000;
const PREFIX = "redis_stream_sync_";

// ---------------------------------------------------------------------------
// Helpers

/** A fresh temporary directory (the CLI's working directory: no stray ./env.conf). */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-ops-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** The environment of a CLI run from `source` to `target` (fast timings) plus `settings`. */
function envFor(
  source: { port: number },
  target: { port: number },
  settings: Settings = {},
): Record<string, string> {
  return replicationEnv(source, target, settings);
}

/** Runs the CLI to completion in a fresh directory. */
async function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  await using dir = await tempDir();
  return await runCli(args, { cwd: dir.path, env, timeoutMs: RUN_TIMEOUT_MS });
}

/** `result` as text, for assertion messages. */
function show(result: CliResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** XADDs entries `1..count` to `key` (`n` = the number), with auto IDs; returns the IDs. */
async function addEntries(client: TestClient, key: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 1; start <= count; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(count + 1, start + 500); i++) {
      batch.push(client.xadd(key, "*", { n: String(i), payload: `entry ${i} of ${key}` }));
    }
    ids.push(...await Promise.all(batch));
  }
  return ids;
}

/** Status code and body of a GET. */
async function get(url: string): Promise<{ status: number; body: string }> {
  // A listener that accepts and never answers fails the request, not the whole run.
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** Parses the labels of one exposition line: `a="1",b="x"`. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
  return labels;
}

/** The value of the series `name` with exactly `labels` in a Prometheus text exposition. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = parseLabels(m[2] ?? "");
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(have).length) continue;
    if (keys.every((k) => have[k] === labels[k])) return Number(m[3]);
  }
  return undefined;
}

/** Every series line of `text` that carries `stream="<key>"`. */
function seriesOf(text: string, key: string): string[] {
  return text.split("\n").filter((line) =>
    !line.startsWith("#") && line.includes(`stream="${key}"`)
  );
}

/**
 * Scrapes `url` until `predicate` holds on the text; returns that text. On
 * timeout the error shows the last scrape.
 */
async function scrapeUntil(
  url: string,
  predicate: (text: string) => boolean,
  message: string,
  timeoutMs = 30_000,
): Promise<string> {
  let text = "";
  try {
    await waitFor(async () => {
      const { status, body } = await get(url);
      text = body;
      return status === 200 && predicate(body);
    }, { timeoutMs, intervalMs: 200, message });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- last /metrics ---\n${text}`);
  }
  return text;
}

/** Every entry of both streams is the same: IDs and bytes. */
async function assertSameStream(src: TestClient, dst: TestClient, key: string): Promise<void> {
  const [a, b] = await Promise.all([src.xrangeAll(key), dst.xrangeAll(key)]);
  assert.ok(a.length > 0, `source ${key} is empty`);
  assert.deepEqual(b, a, `target ${key} differs from the source`);
}

// ---------------------------------------------------------------------------
// Metrics and health

Deno.test("run serves /metrics: per-stream counters, states, caught-up gauges, server and process metrics; a deleted stream's series go away", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using dir = await tempDir();
  await addEntries(src, "orders-stream", 120);
  await addEntries(src, "payments-stream", 30);
  const port = freePort();
  await using run = spawnCli(["run"], {
    cwd: dir.path,
    env: envFor(source, target, { METRICS_PORT: port, STREAM_DISCOVERY_INTERVAL: "0.3" }),
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  const orders = { db: "0", stream: "orders-stream" };
  const payments = { db: "0", stream: "payments-stream" };

  // Caught up: counters at the entry counts, pending and lag gauges at 0
  // (stats are refreshed every discovery interval, so wait for a refresh).
  const text = await scrapeUntil(
    url,
    (t) =>
      sample(t, `${PREFIX}entries_replicated_total`, orders) === 120 &&
      sample(t, `${PREFIX}entries_replicated_total`, payments) === 30 &&
      [orders, payments].every((l) =>
        sample(t, `${PREFIX}pending_entries`, l) === 0 &&
        sample(t, `${PREFIX}lag_entries`, l) === 0 &&
        sample(t, `${PREFIX}lag_seconds`, l) === 0 &&
        sample(t, `${PREFIX}target_length_entries`, l) ===
          sample(t, `${PREFIX}source_length_entries`, l)
      ),
    "both streams copied and their gauges caught up",
  );
  await assertSameStream(src, dst, "orders-stream");
  await assertSameStream(src, dst, "payments-stream");

  assert.equal(sample(text, `${PREFIX}streams`, { state: "replicating" }), 2, text);
  assert.equal(sample(text, `${PREFIX}source_length_entries`, orders), 120, text);
  assert.equal(sample(text, `${PREFIX}target_length_entries`, payments), 30, text);
  assert.equal(sample(text, `${PREFIX}server_up`, { server: "target" }), 1, text);
  assert.equal(sample(text, `${PREFIX}server_up`, { server: "source" }), 1, text);
  // Nothing was found on the target before: no skipped entries, no errors.
  assert.equal(sample(text, `${PREFIX}entries_skipped_total`, orders), undefined, text);
  const rss = sample(text, "process_resident_memory_bytes");
  assert.ok(rss !== undefined && rss > 10_000_000, `process_resident_memory_bytes: ${rss}`);
  for (
    const [name, type] of [
      [`${PREFIX}entries_replicated_total`, "counter"],
      [`${PREFIX}entries_skipped_total`, "counter"],
      [`${PREFIX}write_errors_total`, "counter"],
      [`${PREFIX}batch_write_seconds`, "histogram"],
      [`${PREFIX}streams`, "gauge"],
      [`${PREFIX}pending_entries`, "gauge"],
      [`${PREFIX}lag_entries`, "gauge"],
      [`${PREFIX}lag_seconds`, "gauge"],
      [`${PREFIX}server_up`, "gauge"],
      ["process_resident_memory_bytes", "gauge"],
    ]
  ) {
    assert.ok(text.includes(`\n# TYPE ${name} ${type}\n`), `no "# TYPE ${name} ${type}":\n${text}`);
  }
  // The histogram counted the batches: 150 entries need at least 2 batches of 100.
  const batches = sample(text, `${PREFIX}batch_write_seconds_count`);
  assert.ok(batches !== undefined && batches >= 2, `batch_write_seconds_count: ${batches}`);

  // A deleted source stream leaves /metrics within a few discovery passes; the other stays.
  // Its loop must end on the failed read (NOGROUP), not only at the next group
  // maintenance (STREAM_PENDING_CHECK_INTERVAL, 60 s by default).
  await src.send(["DEL", "payments-stream"]);
  const after = await scrapeUntil(
    url,
    (t) => seriesOf(t, "payments-stream").length === 0,
    "the series of the deleted stream to disappear",
    15_000,
  );
  assert.equal(sample(after, `${PREFIX}entries_replicated_total`, orders), 120, after);
  assert.equal(sample(after, `${PREFIX}streams`, { state: "replicating" }), 1, after);
  assert.ok(seriesOf(after, "orders-stream").length >= 6, after);

  run.signal("SIGTERM");
  const result = await run.wait();
  assert.equal(result.code, 0, show(result));
});

Deno.test("run counts entries already on the target as entries_skipped_total, not as replicated", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using dir = await tempDir();
  await addEntries(src, "audit-stream", 50);
  // The first 12 entries are already on the target, with the same IDs and bytes
  // (as after a crash between writing a batch and acknowledging it).
  const entries = await src.xrangeAll("audit-stream");
  for (const [id, fields] of entries.slice(0, 12)) await dst.xadd("audit-stream", id, fields);
  const port = freePort();
  await using run = spawnCli(["run"], {
    cwd: dir.path,
    env: envFor(source, target, { METRICS_PORT: port }),
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const labels = { db: "0", stream: "audit-stream" };
  const text = await scrapeUntil(
    `http://127.0.0.1:${port}/metrics`,
    (t) =>
      sample(t, `${PREFIX}entries_replicated_total`, labels) === 38 &&
      sample(t, `${PREFIX}pending_entries`, labels) === 0,
    "38 entries replicated",
  );
  assert.equal(sample(text, `${PREFIX}entries_skipped_total`, labels), 12, text);
  await assertSameStream(src, dst, "audit-stream");
  run.signal("SIGTERM");
  const result = await run.wait();
  assert.equal(result.code, 0, show(result));
});

Deno.test("/healthz is 200 at once, /readyz 503 with a reason until the target is up, then 200; unknown paths 404; SIGTERM exits 0", async () => {
  await using source = await RedisServer.start();
  await using src = await connect(source);
  await using dir = await tempDir();
  await addEntries(src, "late-stream", 5);
  const targetPort = freePort(); // nothing listens there yet
  const port = freePort();
  await using run = spawnCli(["run"], {
    cwd: dir.path,
    env: envFor(source, { port: targetPort }, {
      METRICS_PORT: port,
      TARGET_REDIS_MAX_RETRIES: 50,
      TARGET_REDIS_BACKOFF_BASE: "0.05",
      TARGET_REDIS_BACKOFF_MAX: "0.3",
    }),
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await get(`${base}/healthz`)).status === 200, {
    timeoutMs: 20_000,
    intervalMs: 100,
    message: "/healthz to answer 200",
  });
  const notReady = await get(`${base}/readyz`);
  assert.equal(notReady.status, 503, notReady.body);
  assert.match(notReady.body, /^not ready: \S.*target/);
  const missing = await get(`${base}/no-such-page`);
  assert.equal(missing.status, 404, missing.body);
  assert.equal(run.exited, false, "run must keep waiting for the target");

  await using target = await RedisServer.start({ port: targetPort });
  await waitFor(async () => (await get(`${base}/readyz`)).status === 200, {
    timeoutMs: 30_000,
    intervalMs: 100,
    message: "/readyz to answer 200 once the target is up",
  });
  assert.equal((await get(`${base}/readyz`)).body, "ready\n");
  assert.equal((await get(`${base}/healthz`)).status, 200);
  await using dst = await connect(target);
  await waitFor(async () => (await dst.xrangeAll("late-stream")).length === 5, {
    timeoutMs: 20_000,
    message: "late-stream copied",
  });
  await assertSameStream(src, dst, "late-stream");

  run.signal("SIGTERM");
  const result = await run.wait();
  assert.equal(result.code, 0, show(result));
});

// ---------------------------------------------------------------------------
// status

/** The fields of a `status --json` row, exactly. */
const STATUS_FIELDS = [
  "db",
  "key",
  "keyHex",
  "target",
  "targetDb",
  "sourceLength",
  "targetLength",
  "lastSourceId",
  "lastCopiedId",
  "lag",
  "lagSeconds",
  "pending",
  "trimmedBeforeCopy",
  "state",
  "error",
  "lastDeliveredId",
  "owner",
  "sourceNode",
  "targetNode",
].sort();

Deno.test("status --json and the table: in-sync, behind (lag, and lagSeconds the age of the oldest uncopied entry) and never replicated, with no replicator running", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  const env = envFor(source, target);
  const doneIds = await addEntries(src, "done-stream", 7);
  await src.xadd("behind-stream", "1000-0", { n: "1" });
  const copy = await cli(["run", "--once"], env);
  assert.equal(copy.code, 0, show(copy));
  // After the copy: one entry 60 s (by its ID) newer than the copied one, and
  // a stream that no replicator has seen.
  await src.xadd("behind-stream", "61000-0", { n: "2" });
  for (const id of ["5000-0", "7000-0", "9000-0"]) await src.xadd("new-stream", id, { n: id });

  const before = Date.now();
  const json = await cli(["status", "--json"], env);
  const after = Date.now();
  assert.equal(json.code, 0, show(json));
  const rows = JSON.parse(json.stdout).streams as Array<Record<string, unknown>>;
  assert.deepEqual(rows.map((r) => r.key).sort(), ["behind-stream", "done-stream", "new-stream"]);
  for (const row of rows) assert.deepEqual(Object.keys(row).sort(), STATUS_FIELDS);
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const pick = (key: string) => {
    const { keyHex: _k, lastDeliveredId: _l, lagSeconds: _s, ...rest } = byKey.get(key)!;
    return rest;
  };
  // The age of the oldest uncopied entry (the source's clock is this machine's).
  const ageOf = (key: string, ms: number) => {
    const value = byKey.get(key)!.lagSeconds as number;
    assert.ok(
      value >= (before - ms) / 1000 - 1 && value <= (after - ms) / 1000 + 1,
      `${key}: lagSeconds ${value}`,
    );
  };
  const last = doneIds[doneIds.length - 1];
  assert.deepEqual(pick("done-stream"), {
    db: 0,
    key: "done-stream",
    target: "done-stream",
    targetDb: 0,
    sourceLength: 7,
    targetLength: 7,
    lastSourceId: last,
    lastCopiedId: last,
    lag: 0,
    pending: 0,
    trimmedBeforeCopy: 0,
    state: "in-sync",
    error: "",
    owner: "", // no replicator runs: no lease
    sourceNode: "", // one server, no cluster
    targetNode: "",
  });
  assert.deepEqual(pick("behind-stream"), {
    db: 0,
    key: "behind-stream",
    target: "behind-stream",
    targetDb: 0,
    sourceLength: 2,
    targetLength: 1,
    lastSourceId: "61000-0",
    lastCopiedId: "1000-0",
    lag: 1,
    pending: 0,
    trimmedBeforeCopy: 0,
    state: "behind",
    error: "",
    owner: "",
    sourceNode: "",
    targetNode: "",
  });
  const fresh = pick("new-stream");
  assert.equal(fresh.state, "no-group");
  assert.equal(fresh.sourceLength, 3);
  assert.equal(fresh.targetLength, 0);
  assert.equal(fresh.lastSourceId, "9000-0");
  assert.equal(fresh.lastCopiedId, "");
  assert.equal(fresh.pending, 0);
  assert.equal(byKey.get("done-stream")!.lagSeconds, 0);
  ageOf("behind-stream", 61000); // its uncopied entry 61000-0
  ageOf("new-stream", 5000); // no-group: its oldest entry 5000-0
  assert.equal(byKey.get("done-stream")!.keyHex, "646f6e652d73747265616d");

  const table = await cli(["status"], env);
  assert.equal(table.code, 0, show(table));
  const lines = table.stdout.split("\n");
  assert.match(
    lines[0],
    /^SOURCE\s+TARGET\s+SRC LEN\s+TGT LEN\s+LAST SOURCE ID\s+LAST COPIED ID\s+LAG\s+LAG S\s+PENDING\s+TRIMMED\s+STATE\s+OWNER$/,
  );
  const body = lines.filter((l) => /^db\d+:/.test(l));
  assert.equal(body.length, 3, table.stdout);
  const rowOf = (key: string) => body.find((l) => l.startsWith(`db0:${key} `))?.split(/\s+/);
  assert.deepEqual(rowOf("done-stream")?.slice(0, 2), ["db0:done-stream", "db0:done-stream"]);
  assert.equal(rowOf("done-stream")?.at(-2), "in-sync");
  assert.equal(rowOf("done-stream")?.at(-1), "-");
  const behind = rowOf("behind-stream");
  assert.deepEqual(behind?.slice(2, 7), ["2", "1", "61000-0", "1000-0", "1"]);
  assert.deepEqual(behind?.slice(8), ["0", "0", "behind", "-"]);
  // LAG S: the age of 61000-0, with one decimal.
  assert.ok(Math.abs(Number(behind?.[7]) - (Date.now() - 61000) / 1000) < 120, behind?.[7]);
  assert.equal(rowOf("new-stream")?.at(-2), "no-group");
  assert.match(table.stdout, /3 streams, 1 in sync, 2 not in sync\./);
});

// ---------------------------------------------------------------------------
// verify

Deno.test("verify: identical streams exit 0 with an ok line each", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  const env = envFor(source, target);
  await addEntries(src, "left-stream", 250);
  await addEntries(src, "right-stream", 3);
  const copy = await cli(["run", "--once"], env);
  assert.equal(copy.code, 0, show(copy));

  const result = await cli(["verify"], env);
  assert.equal(result.code, 0, show(result));
  assert.match(result.stdout, /^ok +db0:left-stream -> db0:left-stream: 250 entries identical$/m);
  assert.match(result.stdout, /^ok +db0:right-stream -> db0:right-stream: 3 entries identical$/m);
  assert.doesNotMatch(result.stdout, /DIFF|ERROR/);
  assert.match(
    result.stdout,
    /^verify: 2 streams, 2 identical, 0 different; 253 entries compared in \d+\.\d s \(\d+ entries\/s\)$/m,
  );
});

Deno.test("verify names each missing, extra and changed ID (exit 1), and --json has the same facts", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const env = envFor(source, target);
  // Source 1-1..1-10; target without 1-3, with another value at 1-5, and an extra 1-11.
  for (let i = 1; i <= 10; i++) {
    await src.xadd("diff-stream", `1-${i}`, { n: String(i) });
    if (i === 3) continue;
    await dst.xadd("diff-stream", `1-${i}`, { n: i === 5 ? "five" : String(i) });
  }
  await dst.xadd("diff-stream", "1-11", { n: "11" });

  const text = await cli(["verify"], env);
  assert.equal(text.code, 1, show(text));
  const line = text.stdout.split("\n").find((l) => l.startsWith("DIFF"));
  assert.ok(line, show(text));
  assert.match(line, /db0:diff-stream -> db0:diff-stream/);
  assert.match(line, /1 missing on target \(1-3\)/);
  assert.match(line, /1 extra on target \(1-11\)/);
  assert.match(line, /1 changed \(1-5\)/);
  assert.match(line, /source 10 entries, target 10/);
  assert.match(text.stdout, /^verify: 1 stream, 0 identical, 1 different;/m);

  const json = await cli(["verify", "--json"], env);
  assert.equal(json.code, 1, show(json));
  const report = JSON.parse(json.stdout);
  assert.equal(report.streams.length, 1);
  const s = report.streams[0];
  assert.equal(s.key, "diff-stream");
  assert.equal(s.identical, false);
  assert.equal(s.missing, 1);
  assert.equal(s.extra, 1);
  assert.equal(s.changed, 1);
  assert.deepEqual(s.missingIds, ["1-3"]);
  assert.deepEqual(s.extraIds, ["1-11"]);
  assert.deepEqual(s.changedIds, ["1-5"]);
  assert.equal(s.sourceEntries, 10);
  assert.equal(s.targetEntries, 10);
  assert.equal(report.summary.streams, 1);
  assert.equal(report.summary.different, 1);
  assert.equal(report.summary.entries, 10);
  assert.equal(typeof report.summary.entriesPerSecond, "number");
  assert.ok(report.summary.entriesPerSecond > 0, json.stdout);
});

const MILLION = 1_000_000;
const VALUE_BYTES = 200;

/** One XADD in the Redis protocol. */
function respXadd(key: string, id: string, value: string): string {
  const arg = (s: string) => `$${s.length}\r\n${s}\r\n`; // ASCII only: length = bytes
  return `*5\r\n${arg("XADD")}${arg(key)}${arg(id)}${arg("v")}${arg(value)}`;
}

/** The value of entry `i`: ~200 bytes, different for every entry. */
function bigValue(i: number): string {
  const head = `${i}:`;
  return head + "x".repeat(VALUE_BYTES - head.length);
}

/** Whether `redis-cli` is on PATH. */
async function hasRedisCli(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("redis-cli", {
      args: ["--version"],
      signal: AbortSignal.timeout(30_000),
    }).output();
    return success;
  } catch {
    return false;
  }
}

/**
 * Fills `key` on `server` with entries 1-1..1-<count> of {@linkcode bigValue}:
 * through `redis-cli --pipe` (the protocol generated here, written to its
 * stdin in chunks), or pipelined XADDs of 5,000 without redis-cli.
 */
async function fill(server: RedisServer, key: string, count: number): Promise<void> {
  if (!await hasRedisCli()) {
    await using client = await connect(server);
    for (let start = 1; start <= count; start += 5000) {
      const batch = [];
      for (let i = start; i < Math.min(count + 1, start + 5000); i++) {
        batch.push(client.send(["XADD", key, `1-${i}`, "v", bigValue(i)]));
      }
      await Promise.all(batch);
    }
    return;
  }
  const child = new Deno.Command("redis-cli", {
    args: ["-h", server.host, "-p", String(server.port), "--pipe"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000), // killed (and failing) rather than hanging the run
  }).spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  for (let start = 1; start <= count; start += 10_000) {
    let chunk = "";
    for (let i = start; i < Math.min(count + 1, start + 10_000); i++) {
      chunk += respXadd(key, `1-${i}`, bigValue(i));
    }
    await writer.write(encoder.encode(chunk));
  }
  await writer.close();
  const { code, stdout, stderr } = await output;
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, `redis-cli --pipe: ${text}`);
  assert.match(text, new RegExp(`errors: 0, replies: ${count}`), text);
}

/**
 * The VmRSS and VmHWM (peak) of a live process, in kB; undefined once it is
 * gone. Deno reads /proc/<pid>/ only with --allow-all: under the test task's
 * flags it is read through `cat` (--allow-run).
 */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  const path = `/proc/${pid}/status`;
  let status: string;
  try {
    status = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) return undefined;
    const out = await new Deno.Command("cat", {
      args: [path],
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output();
    if (!out.success) return undefined;
    status = new TextDecoder().decode(out.stdout);
  }
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  const rss = kb("VmRSS");
  return Number.isFinite(rss) ? { rss, hwm: kb("VmHWM") || rss } : undefined;
}

// Measured on this project's 2-core machine (Redis 7.0.15, Deno 2.9.6): filling
// both servers took 4-6 s with redis-cli --pipe to each (now the source, then a
// MIGRATE ... COPY of the stream to the target); each holds 1M x 200-byte values,
// used_memory 208 MiB. `verify` compares them in ~3 s at a peak RSS of 151-154
// MiB (XRANGE windows of 1,000 entries per side). Reading just one side
// into memory (1M entries as Uint8Arrays, node-redis xrangeAll) peaks at
// 1,261 MiB RSS. A 400 MiB bound is ~2.6x the measured peak, room for a
// slower machine or allocator noise, and a third of what loading one stream
// costs, so it still fails if verify stops streaming.
const VERIFY_RSS_BOUND_KB = 400 * 1024;

Deno.test("verify compares a 1,000,000-entry stream in bounded memory and reports entries/s", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  const filled = performance.now();
  await fill(source, "big-stream", MILLION);
  await using src = await connect(source);
  await using dst = await connect(target);
  // The same stream on the target, copied whole from server to server (a DUMP and a RESTORE).
  assert.equal(
    await src.send([
      "MIGRATE",
      target.host,
      String(target.port),
      "big-stream",
      "0",
      "60000",
      "COPY",
    ]),
    "OK",
  );
  const fillSeconds = (performance.now() - filled) / 1000;
  assert.equal(await src.send(["XLEN", "big-stream"]), MILLION);
  assert.equal(await dst.send(["XLEN", "big-stream"]), MILLION);
  const usedMemory = (info: unknown) => Number(/used_memory:(\d+)/.exec(String(info))?.[1]);
  const sourceBytes = usedMemory(await src.send(["INFO", "memory"]));
  // ~200 MB of values per side: verify's peak stays well below what it compares.
  assert.ok(sourceBytes > 180 * 1048576, `source used_memory ${sourceBytes}`);

  const started = performance.now();
  await using run = spawnCli(["verify"], {
    cwd: dir.path,
    env: envFor(source, target),
    timeoutMs: 100_000,
  });
  const pid = run.process.pid;
  let peakKb = 0;
  let samples = 0;
  while (!run.exited) {
    const mem = await memoryOf(pid);
    if (mem) {
      samples++;
      peakKb = Math.max(peakKb, mem.rss, mem.hwm);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const result = await run.wait();
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `1M verify: fill ${fillSeconds.toFixed(1)} s (source used_memory ${
      Math.round(sourceBytes / 1048576)
    } MiB), verify ${seconds.toFixed(1)} s, peak RSS ${
      Math.round(peakKb / 1024)
    } MiB over ${samples} samples`,
  );
  assert.equal(result.code, 0, show(result));
  assert.ok(samples >= 5, `only ${samples} memory samples`);
  assert.ok(
    peakKb < VERIFY_RSS_BOUND_KB,
    `verify peaked at ${Math.round(peakKb / 1024)} MiB RSS (bound ${
      VERIFY_RSS_BOUND_KB / 1024
    } MiB)`,
  );
  assert.match(result.stdout, /^ok +db0:big-stream -> db0:big-stream: 1000000 entries identical$/m);
  assert.match(
    result.stdout,
    /^verify: 1 stream, 1 identical, 0 different; 1000000 entries compared in \d+\.\d s \([1-9]\d* entries\/s\)$/m,
  );
});

// ---------------------------------------------------------------------------
// Trimming

Deno.test("TARGET_STREAM_MAXLEN=100 keeps about the newest 100 entries on the target; verify reports the head as trimmed", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const env = envFor(source, target, { TARGET_STREAM_MAXLEN: 100 });
  await addEntries(src, "capped-stream", 1000);
  const copy = await cli(["run", "--once"], env);
  assert.equal(copy.code, 0, show(copy));

  const length = Number(await dst.send(["XLEN", "capped-stream"]));
  // `MAXLEN ~ 100` trims whole stream nodes (100 entries each by default): at
  // least 100 are kept, and well under the 1,000 of the source.
  assert.ok(length >= 100 && length <= 300, `target length ${length}`);
  const [a, b] = await Promise.all([
    src.xrangeAll("capped-stream"),
    dst.xrangeAll("capped-stream"),
  ]);
  assert.deepEqual(b, a.slice(a.length - length), "the target holds the source's newest entries");

  const result = await cli(["verify"], env);
  assert.equal(result.code, 0, show(result));
  assert.match(
    result.stdout,
    new RegExp(
      `^ok +db0:capped-stream .*: 1000 entries identical \\(${
        1000 - length
      } trimmed on the target\\)$`,
      "m",
    ),
  );
});

Deno.test("MIRROR_SOURCE_TRIM=true trims the target like the source (XTRIM, XDEL at the head); verify exits 0", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using dir = await tempDir();
  const env = envFor(source, target, {
    MIRROR_SOURCE_TRIM: true,
    STREAM_DISCOVERY_INTERVAL: "0.3",
  });
  await addEntries(src, "mirror-stream", 100);
  await using run = spawnCli(["run"], { cwd: dir.path, env, timeoutMs: RUN_TIMEOUT_MS });
  await waitFor(async () => Number(await dst.send(["XLEN", "mirror-stream"])) === 100, {
    timeoutMs: 30_000,
    message: "100 entries on the target",
  });

  assert.equal(await src.send(["XTRIM", "mirror-stream", "MAXLEN", "40"]), 60);
  const [[firstLeft]] = await src.xrangeAll("mirror-stream");
  assert.equal(await src.send(["XDEL", "mirror-stream", firstLeft]), 1);
  const [[sourceFirst]] = await src.xrangeAll("mirror-stream");
  await waitFor(async () => (await dst.xrangeAll("mirror-stream"))[0]?.[0] === sourceFirst, {
    timeoutMs: 15_000,
    message: `the target's first ID to become ${sourceFirst}`,
  });
  await assertSameStream(src, dst, "mirror-stream");
  const result = await cli(["verify"], env);
  assert.equal(result.code, 0, show(result));
  assert.match(result.stdout, /^ok +db0:mirror-stream .*: 39 entries identical$/m);

  run.signal("SIGTERM");
  const stopped = await run.wait();
  assert.equal(stopped.code, 0, show(stopped));
});

Deno.test("without MIRROR_SOURCE_TRIM the target keeps entries trimmed on the source; verify exits 0 and mentions them", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const env = envFor(source, target);
  await addEntries(src, "keep-stream", 100);
  const copy = await cli(["run", "--once"], env);
  assert.equal(copy.code, 0, show(copy));
  const all = await src.xrangeAll("keep-stream");

  await src.send(["XTRIM", "keep-stream", "MAXLEN", "40"]);
  await src.send(["XDEL", "keep-stream", all[60][0]]);
  const again = await cli(["run", "--once"], env);
  assert.equal(again.code, 0, show(again));
  assert.deepEqual(await dst.xrangeAll("keep-stream"), all, "the target keeps all 100 entries");

  const result = await cli(["verify"], env);
  assert.equal(result.code, 0, show(result));
  assert.match(
    result.stdout,
    /^ok +db0:keep-stream .*: 39 entries identical \(61 older entries kept on the target\)$/m,
  );
});

// ---------------------------------------------------------------------------
// Permissions of the compiled binary

/** The `--allow-*`, `--deny-*` and `--v8-flags=` flags of a deno.json task. */
function taskStartFlags(task: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(DENO_JSON)) as { tasks: Record<string, string> };
  const command = config.tasks[task];
  assert.equal(typeof command, "string", `deno.json has no "${task}" task`);
  // The compile task runs scripts/compile_failed.ts after `||`: only the first command counts.
  return command.split("||")[0].split(/\s+/).filter((w) => /^--(allow-|deny-|v8-flags=)/.test(w));
}

Deno.test("the compile task has the start task's permission and V8 flags, and they are enough to replicate", async () => {
  const flags = taskStartFlags("compile");
  assert.ok(flags.length > 0, "the compile task has no permission flags");
  assert.deepEqual(flags, START_FLAGS);
  assert.ok(!flags.includes("--allow-all") && !flags.includes("-A"), flags.join(" "));

  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await using dir = await tempDir();
  await addEntries(src, "perm-stream", 300);
  await addEntries(src, "device:7:stream", 20);
  const env: Record<string, string> = {
    DENO_NO_UPDATE_CHECK: "1",
    ...envFor(source, target),
  };
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", DENO_JSON, ...flags, MAIN_TS, "run", "--once"],
    cwd: dir.path,
    clearEnv: true,
    env,
    stdin: "null",
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.doesNotMatch(stderr, /NotCapable|PermissionDenied|Requires \w+ access/);
  await assertSameStream(src, dst, "perm-stream");
  await assertSameStream(src, dst, "device:7:stream");
});
