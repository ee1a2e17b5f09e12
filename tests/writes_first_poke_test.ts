/**
 * A fenced reader that lets a woken stream's write go first (it sleeps up
 * to 50 ms before it sends its wait over 1,000 streams or more again) must
 * not lose a poke that comes meanwhile: the wait was listed before the
 * sleep, so a stream that starts (or resumes) during it is not in it, and
 * only the poke, which unblocks a wait that does not cover a stream that
 * wants entries, gets it read. Lost, the stream's entries wait for the end
 * of the wait (5 ms a stream: 6 s here, up to 30 s).
 *
 * How the poke is made to come during the sleep: the target is paused
 * (ALL) while a new stream's start waits on it (it reads the target's last
 * ID first); a CLIENT PAUSE WRITE queued behind that read keeps the woken
 * stream's write held when the first pause ends, so the new stream's start
 * ends (and pokes) within the 50 ms the reader sleeps for that write.
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import { delay, quietLogs, replicationConfig, startReplicator, waitFor } from "./_replication.ts";

Deno.test("a stream that starts while a fenced reader lets a woken stream's write go first is read at once, not after the wait over 1,200 other streams ends", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  // A pause ends within 2 ms of its time (checked by the server cron, 10 times a second by default).
  await using target = await RedisServer.start({ args: ["--hz", "500"] });
  await using src = await connect(source);
  await using dst = await connect(target);
  await using dst2 = await connect(target);
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
  await delay(500);
  const fresh = "device:fresh:stream";
  const woken = "device:7:stream";
  const t0 = Date.now();
  await dst.send(["CLIENT", "PAUSE", "1000", "ALL"]);
  const firstId = String(await src.send(["XADD", fresh, "*", "n", "1"]));
  // The new stream is found (discovery every 0.3 s) and its start waits on the target.
  await delay(940 - (Date.now() - t0));
  // Served right after that start's read when the pause ends: the woken stream's write stays held.
  const writePause = dst2.send(["CLIENT", "PAUSE", "150", "WRITE"]);
  await delay(975 - (Date.now() - t0));
  await src.send(["XADD", woken, "*", "n", "1"]); // wakes the wait; its write is held
  await writePause;
  const started = Date.now();
  await waitFor(
    async () => ((await dst.send(["XRANGE", fresh, firstId, firstId])) as unknown[]).length === 1,
    { timeoutMs: 20_000 },
  );
  const firstMs = Date.now() - started;
  await delay(200);
  const nextId = String(await src.send(["XADD", fresh, "*", "n", "2"]));
  const added = Date.now();
  await waitFor(
    async () => ((await dst.send(["XRANGE", fresh, nextId, nextId])) as unknown[]).length === 1,
    { timeoutMs: 20_000 },
  );
  const nextMs = Date.now() - added;
  assert.ok(
    firstMs < 1500 && nextMs < 1500,
    `the new stream's first entry was copied ${firstMs} ms after the pauses ended, its next ${nextMs} ms after it was added`,
  );
});
