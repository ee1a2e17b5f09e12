/**
 * After a wake-up among many quiet streams, the woken stream's write goes
 * before the wait over every stream is sent again (issue 24), for 50 ms at
 * most: the source serves one command at a time, and a wait over 11,000
 * keys sent right after the read held the write's continuity check up (the
 * first entry after a quiet period took 60-80 ms at 100,000 streams, the
 * others 15-20). Seen in the order and times the servers served the
 * commands (MONITOR on both).
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import { monitor, served } from "./_monitor.ts";
import { quietLogs, replicationConfig, startReplicator, waitFor } from "./_replication.ts";

Deno.test("after a wake-up among 1,200 quiet streams, the wait over every stream is sent again after the woken stream's write, or 50 ms after its read when the write takes longer (the target held it 300 ms)", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const n = 1200; // a wait over at least WRITES_FIRST_KEYS streams
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, j) => src.send(["XADD", `device:${i + j}:stream`, "*", "n", "0"]),
      ),
    );
  }
  // One reader (the pool's other connection is the control one): one wait over every stream.
  await using _live = startReplicator(replicationConfig(source, target, {
    SOURCE_REDIS_POOL_SIZE: 2,
  }));
  await waitFor(async () => Number(await dst.send(["DBSIZE"])) === n, { timeoutMs: 60_000 });
  await waitFor(async () =>
    (await src.clientList()).some((c) => c.cmd === "xread" && c.flags.includes("b"))
  );
  const key = "device:7:stream";
  const quoted = `"${key}"`;
  const isWait = (line: string) => line.includes('"XREAD"') && line.includes('"BLOCK"');
  const added = (line: string) => line.includes('"XADD"') && line.includes(quoted);
  const onSource = await monitor(source.port, (seen) => {
    const at = seen.findIndex(added);
    return at >= 0 && seen.slice(at).some((l) => isWait(l) && l.includes(quoted));
  });
  const onTarget = await monitor(target.port, (seen) => seen.some(added));
  await Promise.all([onSource.ready, onTarget.ready]);
  // The target holds every write for 300 ms: longer than the wait lets the writes go first.
  await dst.send(["CLIENT", "PAUSE", "300", "WRITE"]);
  const id = String(await src.send(["XADD", key, "*", "n", "1"]));
  const [sourceLines, targetLines] = await Promise.all([onSource.lines, onTarget.lines]);
  await waitFor(async () => ((await dst.send(["XRANGE", key, id, id])) as unknown[]).length === 1);
  const after = sourceLines.slice(sourceLines.findIndex(added));
  const read = after.find((l) => l.includes('"EVAL"'));
  const wait = after.find((l) => isWait(l) && l.includes(quoted));
  const write = targetLines.find(added);
  const show = `source:\n${after.map((l) => l.slice(0, 110)).join("\n")}\ntarget: ${write}`;
  assert.ok(read !== undefined && wait !== undefined && write !== undefined, show);
  // Not at once (it was sent within 1-4 ms before), and not held by the write for long.
  const ms = (served(wait) - served(read)) * 1000;
  assert.ok(ms >= 45, `the wait was sent again ${ms.toFixed(1)} ms after the read:\n${show}`);
  assert.ok(ms < 250, `the wait waited for the write ${ms.toFixed(1)} ms:\n${show}`);
  assert.ok(served(write) > served(wait), `the write was not held by the pause:\n${show}`);
});
