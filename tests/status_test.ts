/**
 * `status` as an operator reads it (issue 21): `LAG S` is the age of the
 * oldest uncopied entry by the source's clock, a target stream that holds
 * entries the source does not is an `error` (not copied entries), and with
 * one server down the other side is still shown, with which side is down
 * and why. The real CLI (main.ts in a subprocess) against real
 * `redis-server` processes; no mocks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "../testing/cli.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import { replicationEnv, type Settings } from "./_replication.ts";

const TIMEOUT_MS = 90_000;

/** Runs the CLI against `source` and `target`, in a fresh directory (no stray ./env.conf). */
async function cli(
  args: string[],
  servers: { source: { port: number }; target: { port: number } },
  settings: Settings = {},
): Promise<CliResult> {
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-status-" });
  try {
    return await runCli(args, {
      cwd: dir,
      env: replicationEnv(servers.source, servers.target, settings),
      timeoutMs: TIMEOUT_MS,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `result` as text, for assertion messages. */
function show(result: CliResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** The server's clock (TIME), in milliseconds. */
async function serverNowMs(client: TestClient): Promise<number> {
  const [seconds, micros] = await client.send(["TIME"]) as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

type Row = Record<string, unknown>;

/** The rows of `status --json`, by source key. */
function rowsByKey(result: CliResult): Map<string, Row> {
  const rows = JSON.parse(result.stdout).streams as Row[];
  return new Map(rows.map((r) => [String(r.key), r]));
}

/** The cells of the table row of source stream `key` in DB `db` (0). */
function tableRow(result: CliResult, key: string, db = "0"): string[] | undefined {
  return result.stdout.split("\n").find((l) => l.startsWith(`db${db}:${key} `))?.split(/\s+/);
}

Deno.test("status LAG S is the age of the oldest uncopied entry by the source's clock, not the span from the last copied one", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  const servers = { source, target };
  const now = await serverNowMs(src);
  // Copied: one entry 200 s old. Then two more, 90 s and 30 s old: the oldest uncopied
  // one is 90 s old (the span from the last copied one to the newest would be 170 s).
  await src.xadd("aged-stream", `${now - 200_000}-0`, { n: "1" });
  await src.xadd("synced-stream", `${now - 500_000}-0`, { n: "1" });
  // The operator's example: explicit IDs 1-1 (copied) and 5000000-1 (not): the age of
  // 5000000-1, not 5000 s.
  await src.xadd("early-stream", "1-1", { n: "1" });
  const copy = await cli(["run", "--once"], servers);
  assert.equal(copy.code, 0, show(copy));
  await src.xadd("aged-stream", `${now - 90_000}-0`, { n: "2" });
  await src.xadd("aged-stream", `${now - 30_000}-0`, { n: "3" });
  await src.xadd("early-stream", "5000000-1", { n: "2" });
  // Never copied (no group, STREAM_START_ID=0): its oldest entry is 40 s old.
  await src.xadd("fresh-stream", `${now - 40_000}-0`, { n: "1" });
  await src.xadd("fresh-stream", `${now - 10_000}-0`, { n: "2" });

  const before = await serverNowMs(src);
  const json = await cli(["status", "--json"], servers);
  const after = await serverNowMs(src);
  assert.equal(json.code, 0, show(json));
  const rows = rowsByKey(json);
  const age = (id: string) => ({
    low: (before - Number(id.split("-")[0])) / 1000 - 0.001,
    high: (after - Number(id.split("-")[0])) / 1000 + 0.001,
  });
  const within = (key: string, id: string) => {
    const value = rows.get(key)!.lagSeconds as number;
    const { low, high } = age(id);
    assert.ok(
      value >= low && value <= high,
      `${key}: lagSeconds ${value}, expected ${low}..${high}`,
    );
  };
  within("aged-stream", `${now - 90_000}-0`);
  within("early-stream", "5000000-1");
  within("fresh-stream", `${now - 40_000}-0`);
  assert.equal(rows.get("synced-stream")!.lagSeconds, 0, "nothing uncopied: 0");
  assert.equal(rows.get("aged-stream")!.state, "behind");

  const table = await cli(["status"], servers);
  assert.equal(table.code, 0, show(table));
  // LAG S is the 8th column; the table shows it with one decimal.
  const lagS = Number(tableRow(table, "aged-stream")?.[7]);
  assert.ok(lagS >= 89.9 && lagS < 150, `LAG S ${lagS}\n${table.stdout}`);
  assert.equal(tableRow(table, "synced-stream")?.[7], "0.0", table.stdout);
});

Deno.test("status shows a target stream that holds entries the source does not as an error, not as copied", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const servers = { source, target };
  for (const key of ["foreign-stream", "changed-stream", "deleted-stream"]) {
    for (const id of ["1-1", "1-2", "1-3"]) await src.xadd(key, id, { n: id });
  }
  const copy = await cli(["run", "--once"], servers);
  assert.equal(copy.code, 0, show(copy));
  // Another client writes into two target streams: an entry with a higher ID that the source
  // never held, and the ID of a source entry not copied yet with other values.
  await dst.xadd("foreign-stream", "9-0", { by: "someone else" });
  await src.xadd("changed-stream", "2-0", { n: "2-0" });
  await dst.xadd("changed-stream", "2-0", { n: "not the source's" });
  // Not foreign: the source deleted its last entry after it was copied.
  await src.send(["XDEL", "deleted-stream", "1-3"]);

  const json = await cli(["status", "--json"], servers);
  assert.equal(json.code, 0, show(json));
  const rows = rowsByKey(json);
  const foreign = rows.get("foreign-stream")!;
  assert.equal(foreign.state, "error", JSON.stringify(foreign));
  assert.match(String(foreign.error), /holds entries the source does not: "9-0"/);
  assert.equal(foreign.lastCopiedId, "1-3", "the foreign ID is not shown as copied");
  const changed = rows.get("changed-stream")!;
  assert.equal(changed.state, "error", JSON.stringify(changed));
  assert.match(String(changed.error), /"2-0".*other fields or values/);
  assert.equal(changed.lastCopiedId, "1-3");
  const deleted = rows.get("deleted-stream")!;
  assert.notEqual(deleted.state, "error", JSON.stringify(deleted));
  assert.equal(deleted.error, "");

  const table = await cli(["status"], servers);
  assert.equal(table.code, 0, show(table));
  const row = tableRow(table, "foreign-stream");
  assert.equal(row?.[5], "1-3", table.stdout);
  assert.equal(row?.at(-2), "error", table.stdout);
  assert.doesNotMatch(table.stdout.split("\n").find((l) => l.startsWith("db0:foreign"))!, /9-0/);
  assert.match(
    table.stdout,
    /^db0:foreign-stream: Target stream "db0:foreign-stream" holds entries the source does not: "9-0"/m,
  );
  assert.match(table.stdout, /3 streams, 1 in sync, 2 not in sync \(2 in error\)\./);
});

Deno.test("status with the target down shows the source side, says the target is down and why, and exits 69; with the source down, the target side", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", "source-secret-pw"] });
  // Kept on disk: the target's copy is still there after its restart.
  await using target = await RedisServer.start({
    args: ["--requirepass", "target-secret-pw"],
    appendOnly: true,
  });
  const settings = {
    SOURCE_REDIS_PASSWORD: "source-secret-pw",
    TARGET_REDIS_PASSWORD: "target-secret-pw",
  };
  await using src = await connect(source, { password: "source-secret-pw" });
  const servers = { source, target };
  for (const id of ["1-1", "1-2", "1-3"]) await src.xadd("orders-stream", id, { n: id });
  const copy = await cli(["run", "--once"], servers, settings);
  assert.equal(copy.code, 0, show(copy));
  await src.xadd("orders-stream", "2-1", { n: "2-1" });
  await src.xadd("orders-stream", "2-2", { n: "2-2" });
  const secrets = /source-secret-pw|target-secret-pw/;

  await target.stop();
  const json = await cli(["status", "--json"], servers, settings);
  assert.equal(json.code, 69, show(json));
  assert.doesNotMatch(json.stdout + json.stderr, secrets);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.servers.source.up, true);
  assert.equal(doc.servers.target.up, false);
  assert.equal(doc.servers.target.address, `127.0.0.1:${target.port}`);
  assert.match(doc.servers.target.error, /refused/i);
  const row = (doc.streams as Row[]).find((r) => r.key === "orders-stream")!;
  assert.equal(row.state, "target-down");
  assert.equal(row.sourceLength, 5);
  assert.equal(row.lastSourceId, "2-2");
  assert.equal(row.lag, 2);
  assert.equal(row.pending, 0);
  assert.equal(row.targetLength, null);
  assert.equal(row.lastCopiedId, null);
  const table = await cli(["status"], servers, settings);
  assert.equal(table.code, 69, show(table));
  assert.doesNotMatch(table.stdout + table.stderr, secrets);
  assert.deepEqual(tableRow(table, "orders-stream")?.slice(2, 9), [
    "5",
    "?",
    "2-2",
    "?",
    "2",
    "?",
    "0",
  ]);
  assert.match(
    table.stdout,
    new RegExp(`Target "127\\.0\\.0\\.1:${target.port}" is down: .*refused`, "i"),
  );

  await target.start();
  await source.stop();
  const targetSide = await cli(["status", "--json"], servers, settings);
  assert.equal(targetSide.code, 69, show(targetSide));
  assert.doesNotMatch(targetSide.stdout + targetSide.stderr, secrets);
  const tdoc = JSON.parse(targetSide.stdout);
  assert.equal(tdoc.servers.source.up, false);
  assert.equal(tdoc.servers.target.up, true);
  assert.equal(tdoc.servers.source.address, `127.0.0.1:${source.port}`);
  assert.match(tdoc.servers.source.error, /refused/i);
  const trow = (tdoc.streams as Row[]).find((r) => r.key === "orders-stream")!;
  assert.equal(trow.state, "source-down");
  assert.equal(trow.targetLength, 3);
  assert.equal(trow.lastCopiedId, "1-3");
  assert.equal(trow.sourceLength, null);
  assert.equal(trow.lag, null);
  // Any of the DBs 0-15 (REDIS_DB_SEARCH_RANGE) copies into target DB 0: the source DB is not told.
  assert.equal(trow.db, null);
  const ttable = await cli(["status"], servers, settings);
  assert.equal(ttable.code, 69, show(ttable));
  assert.deepEqual(tableRow(ttable, "orders-stream", "?")?.slice(1, 6), [
    "db0:orders-stream",
    "?",
    "3",
    "?",
    "1-3",
  ]);
  assert.match(
    ttable.stdout,
    new RegExp(`Source "127\\.0\\.0\\.1:${source.port}" is down: .*refused`, "i"),
  );
});
