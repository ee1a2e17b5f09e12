/**
 * `run --once` ends: whatever the number of quiet streams, run after run
 * (a cron job that drains with --once must never hang in a quiet period).
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import { assertSameEntries, quietLogs, replicationConfig, runOnce } from "./_replication.ts";

Deno.test("run --once with more quiet streams than the readers' share of the read-ahead memory covers at once ends, run after run, each stream caught up", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  // 40 streams over the default 10 readers: the first reads of the others (pipelined,
  // 16 deep on a fresh stream) hold the read-ahead memory while the last reader asks for
  // its share; nothing is written (the streams are quiet), so only the memory given back
  // can wake it.
  const keys = Array.from({ length: 40 }, (_, i) => `quiet-${i}-stream`);
  for (const key of keys) await src.xadd(key, "*", { n: "1" });
  const config = replicationConfig(source, target);
  for (let run = 1; run <= 3; run++) {
    const result = await runOnce(config, { timeoutMs: 15_000 }).catch((error) => {
      throw new Error(`run ${run}: ${error.message}`, { cause: error });
    });
    assert.ok(result.ok, `run ${run}: ${JSON.stringify(result.failures)}`);
    assert.deepEqual(
      result.streams.filter((s) => s.state !== "caught-up").map((s) => `${s.key}: ${s.state}`),
      [],
      `run ${run}`,
    );
    assert.equal(result.streams.length, keys.length);
    if (run === 2) await src.xadd(keys[7], "*", { n: "2" }); // something new for run 3
  }
  for (const key of keys) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
  }
});
