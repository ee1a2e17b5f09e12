/**
 * Many quiet streams (issues 18 and 24): every stream an instance owns is
 * covered by a wait at every moment, so a single new entry in any of
 * thousands of quiet streams is copied at once, with leases (fenced reads,
 * an XREAD wait) and without (a blocking XREADGROUP); and the commands the
 * tool sends while nothing happens do not grow with the number of streams.
 *
 * Why 2,000 streams are enough: with STREAM_BATCH_SIZE=5000 a read may
 * take only about 5 streams' worth of the read-ahead memory (16 MiB, a
 * batch of 300-byte entries per stream), so the streams are read in turns
 * over hundreds of reads, and each reader serves more streams than a sweep
 * reads (200): the same shape as 100,000 streams at the default batch of
 * 100, where the first reads of the streams came round so slowly, and kept
 * the readers so busy, that no single entry was copied within 5 s.
 */
import assert from "node:assert/strict";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer, type TestClient } from "../testing/redis.ts";
import {
  assertSameEntries,
  delay,
  fillStream,
  quietLogs,
  replicationConfig,
  runOnce,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

/** Adds one entry to each of `keys` (pipelined). */
async function fill(client: TestClient, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    await Promise.all(
      keys.slice(i, i + 1000).map((key) => client.send(["XADD", key, "*", "n", "0"])),
    );
  }
}

/**
 * Appends `count` entries to `key` with the fields of {@linkcode fillStream} (`n`, `payload`),
 * built by a Lua script 20,000 at a time: 300,000 entries in about a second rather than five
 * (each script holds the source for some 60 ms).
 */
async function fillServerSide(client: TestClient, key: string, count: number): Promise<void> {
  const script = `for i = tonumber(ARGV[1]), tonumber(ARGV[2]) - 1 do
    redis.call('XADD', KEYS[1], '*', 'n', tostring(i), 'payload', string.rep('entry ' .. i .. ' ', 4))
  end`;
  for (let from = 0; from < count; from += 20_000) {
    const to = Math.min(count, from + 20_000);
    await client.send(["EVAL", script, "1", key, String(from), String(to)]);
  }
  assert.equal(Number(await client.send(["XLEN", key])), count);
}

/** How many of `keys` the target holds at least `count` entries of. */
async function copied(client: TestClient, keys: string[], count = 1): Promise<number> {
  const lengths = await Promise.all(keys.map((key) => client.send(["XLEN", key])));
  return lengths.filter((n) => Number(n) >= count).length;
}

for (const leases of [true, false]) {
  Deno.test(`a single entry into any of 2,000 quiet streams is copied within 3 s, 20 times in a row (STREAM_LEASES=${leases})`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    const keys = Array.from(
      { length: Number(Deno.env.get("QN") ?? 2000) },
      (_, i) => `device:${i}:stream`,
    );
    await fill(src, keys);
    await using _live = startReplicator(
      replicationConfig(source, target, {
        STREAM_LEASES: leases,
        STREAM_BATCH_SIZE: 5000,
        STREAM_DISCOVERY_INTERVAL: 1,
      }),
    );
    await waitFor(async () => (await copied(dst, keys)) === keys.length, {
      timeoutMs: 60_000,
      message: "every stream's first entry on the target",
    });
    // Quiet for longer than a fenced reader's sweep period (5 s) and the poll interval.
    await delay(6000);
    const late: string[] = [];
    for (let i = 0; i < 20; i++) {
      const key = keys[Math.floor(Math.random() * keys.length)];
      const id = String(await src.send(["XADD", key, "*", "n", String(i + 1)]));
      const added = performance.now();
      const arrived = await waitFor(async () => {
        const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
        return top[0]?.[0] === id;
      }, { timeoutMs: 3000, intervalMs: 10 }).then(() => true, () => false);
      if (!arrived) {
        late.push(`${key} ${id} (not there ${Math.round(performance.now() - added)} ms after)`);
      } else assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
      await delay(100);
    }
    assert.deepEqual(late, [], "entries not copied within 3 s");
  });
}

Deno.test("streams are taken once and started once while lease ticks and discovery passes overlap: a slow source, new streams all along (STREAM_LEASE_TTL=1)", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  // 30 ms more each way to the source: a take of leases spans several lease ticks (333 ms).
  await using slow = await TcpProxy.start(source);
  slow.delay(30);
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 1500 }, (_, i) => `device:${i}:stream`);
  await fill(src, keys.slice(0, 500));
  let acquired = 0;
  const ended: string[] = [];
  await using _live = startReplicator(
    replicationConfig(slow, target, {
      STREAM_LEASE_TTL: 1,
      STREAM_DISCOVERY_INTERVAL: 1,
      // One SCAN a pass (not 3 patterns in 16 DBs, each a round trip of the slow source).
      STREAM_DISCOVERY_PATTERNS: "device:*:stream",
      REDIS_DB_SEARCH_RANGE: "0",
    }),
    {
      hooks: {
        onLeases: (change) => (acquired += change.acquired + change.takenOver),
        onStreamEnd: (ref, outcome) => ended.push(`${ref.label}: ${outcome}`),
      },
    },
  );
  // New streams found by every pass for 6 s: every pass takes leases while ticks run. A stream
  // a tick still counted as waiting was taken (counted) twice, once by each.
  for (let i = 500; i < keys.length; i += 50) {
    await fill(src, keys.slice(i, i + 50));
    await delay(300);
  }
  await waitFor(async () => (await copied(dst, keys)) === keys.length, {
    timeoutMs: 60_000,
    message: "every stream's first entry on the target",
  });
  await delay(2000); // several lease ticks and discovery passes
  assert.deepEqual(ended, []);
  assert.equal(acquired, keys.length, "leases taken");
});

/** Calls of each command the server ran since its last CONFIG RESETSTAT, without INFO and CONFIG. */
async function commandCalls(client: TestClient): Promise<Map<string, number>> {
  const info = String(await client.send(["INFO", "commandstats"]));
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== "info" && !m[1].startsWith("config")) calls.set(m[1], Number(m[2]));
  }
  return calls;
}

/**
 * Two servers with `streams` quiet streams, and a replicator that has copied the first entry of
 * each (leases on, the defaults otherwise).
 */
async function quietScene(streams: number) {
  const stack = new AsyncDisposableStack();
  try {
    const source = stack.use(await RedisServer.start());
    const target = stack.use(await RedisServer.start());
    const src = stack.use(await connect(source));
    const dst = stack.use(await connect(target));
    const keys = Array.from({ length: streams }, (_, i) => `device:${i}:stream`);
    await fill(src, keys);
    stack.use(startReplicator(
      replicationConfig(source, target, {
        // Each discovery pass (and the stats of up to 1,000 streams it reads) falls in the window
        // about as often at both sizes; the defaults otherwise (leases on).
        STREAM_DISCOVERY_INTERVAL: 2,
        STREAM_POLL_INTERVAL: 1,
      }),
    ));
    await waitFor(async () => (await copied(dst, keys)) === keys.length, {
      timeoutMs: 60_000,
      message: "every stream's first entry on the target",
    });
    const moved = stack.move();
    return { src, dst, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (error) {
    await stack.disposeAsync();
    throw error;
  }
}

/** The commands sent to each server of `scenes` over the same 6 s of nothing to copy. */
async function idleCalls(
  scenes: { src: TestClient; dst: TestClient }[],
): Promise<{ source: number; target: number; top: string }[]> {
  await delay(2000);
  for (const { src, dst } of scenes) {
    await src.send(["CONFIG", "RESETSTAT"]);
    await dst.send(["CONFIG", "RESETSTAT"]);
  }
  await delay(6000);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const counts = [];
  for (const { src, dst } of scenes) {
    const [atSource, atTarget] = [await commandCalls(src), await commandCalls(dst)];
    const top = [...atSource].sort((a, b) => b[1] - a[1]).slice(0, 5)
      .map(([name, n]) => `${name} ${n}`).join(", ");
    counts.push({ source: sum(atSource), target: sum(atTarget), top });
  }
  return counts;
}

Deno.test("the commands sent while nothing is to be copied do not grow tenfold with tenfold streams: 1,000 and 10,000 quiet streams, within 1.5x", async () => {
  await quietLogs();
  // Both sizes side by side (servers of their own, one replicator each), counted over the same
  // window: the same conditions for both, and one window instead of two.
  await using smallScene = await quietScene(1000);
  await using largeScene = await quietScene(10_000);
  const [small, large] = await idleCalls([smallScene, largeScene]);
  const said =
    `1,000 streams: ${small.source} to the source (${small.top}), ${small.target} to the target; ` +
    `10,000 streams: ${large.source} (${large.top}), ${large.target}`;
  assert.ok(small.source > 0, said); // the count is taken at all
  assert.ok(large.source <= 1.5 * small.source, said);
  assert.ok(large.target <= 1.5 * Math.max(small.target, 20), said);
});

for (const leases of [true, false]) {
  Deno.test(`streams whose first read (a few entries) comes back full, or not, are copied whole: lengths around the first read's count and far above it, run --once then live (STREAM_LEASES=${leases})`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using dst = await connect(target);
    // FIRST_READ_COUNT is 10: shorter, exactly as long, one longer, two reads' worth, many batches.
    const lengths = [1, 9, 10, 11, 20, 21, 250, 1234];
    const keys = lengths.map((n) => `len-${n}-stream`);
    for (let i = 0; i < keys.length; i++) await fillStream(src, keys[i], lengths[i]);
    // And 1,500 one-entry streams: first reads of many streams share each round trip.
    const small = Array.from({ length: 1500 }, (_, i) => `device:${i}:stream`);
    await fill(src, small);
    const config = replicationConfig(source, target, {
      STREAM_LEASES: leases,
      STREAM_BATCH_SIZE: 100,
    });
    await runOnce(config, { timeoutMs: 60_000 });
    for (const key of [...keys, ...small.slice(0, 50)]) {
      assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), key);
    }
    assert.equal(await copied(dst, small), small.length);
    // Live: new streams of the same lengths, made while it runs.
    await using _live = startReplicator(config);
    const later = lengths.map((n) => `later-${n}-stream`);
    for (let i = 0; i < later.length; i++) await fillStream(src, later[i], lengths[i]);
    for (const key of later) await waitForCopy(src, key, dst, key, { timeoutMs: 30_000 });
  });
}

Deno.test("with leases, while a stream's backlog is read, the quiet streams beside it are looked at with an XREAD that takes nothing: a new entry in one of them is copied before the backlog is", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const quiet = Array.from({ length: 500 }, (_, i) => `quiet-${i}-stream`);
  await fill(src, quiet);
  // One reader for all: the backlog and the quiet streams share it.
  await using _live = startReplicator(
    replicationConfig(source, target, { STREAM_LEASES: true, SOURCE_REDIS_POOL_SIZE: 2 }),
  );
  await waitFor(async () => (await copied(dst, quiet)) === quiet.length, {
    timeoutMs: 30_000,
    message: "every quiet stream's first entry on the target",
  });
  // Filled under a name discovery does not match, then found whole: a backlog at once.
  await fillServerSide(src, "staging", 300_000);
  await src.send(["RENAME", "staging", "backlog-stream"]);
  await waitFor(async () => Number(await dst.send(["XLEN", "backlog-stream"])) > 0, {
    timeoutMs: 30_000,
    message: "the backlog's copy begun",
  });
  await src.send(["CONFIG", "RESETSTAT"]);
  const key = quiet[321];
  const id = String(await src.send(["XADD", key, "*", "n", "new"]));
  await waitFor(async () => (await dst.send(["XRANGE", key, id, id]) as unknown[]).length === 1, {
    timeoutMs: 10_000,
    message: "the quiet stream's new entry on the target",
  });
  const backlog = Number(await dst.send(["XLEN", "backlog-stream"]));
  const calls = await commandCalls(src);
  assert.ok(backlog < 300_000, `the backlog was copied first (${backlog})`);
  // Looks every 10 ms while the backlog is read; the one reader never waits meanwhile (the
  // backlog is not done), so before the looks there was no XREAD at all in this window.
  assert.ok((calls.get("xread") ?? 0) >= 1, `no XREAD looks during the backlog: ${[...calls]}`);
});

Deno.test("with leases, a quiet stream that its wait saw an entry of is read through the fence once, not several times over in one round trip: 50 single entries into 50 of 300 quiet streams cost about one fenced read each", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const keys = Array.from({ length: 300 }, (_, i) => `device:${i}:stream`);
  await fill(src, keys);
  await using _live = startReplicator(replicationConfig(source, target, { STREAM_LEASES: true }));
  await waitFor(async () => (await copied(dst, keys)) === keys.length, {
    timeoutMs: 60_000,
    message: "every stream's first entry on the target",
  });
  await delay(1500);
  // The scripts run while nothing is copied (lease renewals, sweeps), per millisecond.
  const evals = async () => {
    const calls = await commandCalls(src);
    return (calls.get("eval") ?? 0) + (calls.get("evalsha") ?? 0);
  };
  await src.send(["CONFIG", "RESETSTAT"]);
  let started = performance.now();
  await delay(3000);
  const idlePerMs = await evals() / (performance.now() - started);
  await src.send(["CONFIG", "RESETSTAT"]);
  started = performance.now();
  const woken = keys.filter((_, i) => i % 6 === 0); // 50 streams, each written once
  for (const [i, key] of woken.entries()) {
    const id = String(await src.send(["XADD", key, "*", "n", String(i)]));
    await waitFor(async () => {
      const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
      return top[0]?.[0] === id;
    }, { timeoutMs: 5000, intervalMs: 5, message: `${key}'s entry ${id} on the target` });
  }
  const spent = await evals() - idlePerMs * (performance.now() - started);
  // One fenced read per entry, and some slack for a sweep or a look that finds it first. Sent
  // 16 times over in one round trip (a backlog's reads), it was about 16 per entry.
  assert.ok(
    spent <= woken.length * 3,
    `${Math.round(spent)} scripts for ${woken.length} entries (idle: ${
      (idlePerMs * 1000).toFixed(1)
    }/s)`,
  );
  for (const key of woken) {
    assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), `${key}'s entries`);
  }
});
