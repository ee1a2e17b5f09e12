/**
 * One rule decides whether an entry of a target stream is foreign (written
 * by something else) or a copy of one the source removed since: the
 * warning of a run's start and `status` apply the same one, also where the
 * source stream is empty now.
 */
import assert from "node:assert/strict";
import { collectStatus } from "../lib/ops/mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { captureLogs, replicationConfig, runOnce } from "./_replication.ts";

Deno.test("a target stream whose source was trimmed empty since it was copied starts without error and is not called foreign, by a run or by status", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  for (let i = 1; i <= 3; i++) await src.send(["XADD", "emptied-stream", `7-${i}`, "n", String(i)]);
  // A stream something else wrote into, beside it, to show the rule still finds foreign heads.
  await src.send(["XADD", "foreign-stream", "9-1", "n", "1"]);
  await dst.send(["XADD", "foreign-stream", "3-1", "written", "elsewhere"]);
  const config = replicationConfig(source, target);
  await runOnce(config);
  assert.deepEqual((await dst.xrangeAll("emptied-stream")).map(([id]) => id), [
    "7-1",
    "7-2",
    "7-3",
  ]);
  // Every source entry trimmed away: XINFO STREAM's first-entry is nil now.
  await src.send(["XTRIM", "emptied-stream", "MAXLEN", "0"]);
  logs.lines.length = 0;

  const again = await runOnce(config);
  const emptied = again.streams.find((s) => s.key === "emptied-stream");
  assert.ok(emptied, JSON.stringify(again.streams));
  assert.notEqual(emptied.state, "error", JSON.stringify(emptied));
  const said = logs.atLeast("WARNING", /begins with entry/).map((l) => l.message);
  assert.equal(said.length, 1, said.join("\n"));
  assert.match(said[0], /db0:foreign-stream begins with entry 3-1, which source/);
  assert.deepEqual((await dst.xrangeAll("emptied-stream")).map(([id]) => id), [
    "7-1",
    "7-2",
    "7-3",
  ]);

  // status looks at the target's last entry: emptied-stream's 7-3 is a copy the source trimmed;
  // an entry written above foreign-stream's copy is foreign.
  await dst.send(["XADD", "foreign-stream", "99-1", "written", "elsewhere"]);
  const report = await collectStatus(config);
  const rows = new Map(report.streams.map((r) => [r.key, r]));
  const emptiedRow = rows.get("emptied-stream");
  assert.ok(emptiedRow, JSON.stringify(report));
  assert.equal(emptiedRow.error, "", JSON.stringify(emptiedRow));
  assert.notEqual(emptiedRow.state, "error");
  assert.equal(
    rows.get("foreign-stream")?.state,
    "error",
    JSON.stringify(rows.get("foreign-stream")),
  );
  assert.match(
    String(rows.get("foreign-stream")?.error),
    /holds entries the source does not: "99-1"/,
  );
});
