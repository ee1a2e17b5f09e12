/**
 * Discovery walks the keyspace with SCAN; the run's passes are paced (a
 * bounded number of SCAN calls a second, however large the keyspace) and
 * each says how long it took, at INFO when longer than the interval.
 */
import assert from "node:assert/strict";
import { RedisConnection } from "../lib/redis/mod.ts";
import { findStreams } from "../lib/replication/mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { captureLogs } from "./_replication.ts";

const SETTINGS = {
  manual: [],
  auto: true,
  dbs: [0],
  patterns: ["dev:*"],
  targetDb: 0 as const,
  prefix: "",
  everyMs: 1,
};

Deno.test("a paced discovery pass finds every stream of a keyspace of several SCAN pages, and says at INFO that it took longer than the interval", async () => {
  const logs = await captureLogs("DEBUG");
  await using server = await RedisServer.start();
  await using client = await connect(server);
  const keys = Array.from({ length: 2500 }, (_, i) => `dev:${i}:stream`);
  await Promise.all(keys.map((k) => client.send(["XADD", k, "*", "f", "v"])));
  await Promise.all(
    Array.from({ length: 2500 }, (_, i) => client.send(["SET", `dev:${i}:other`, "x"])),
  );
  const conn = new RedisConnection({ role: "source", host: server.host, port: server.port });
  try {
    const paced = await findStreams(conn, SETTINGS, { paceMs: 20 });
    assert.deepEqual(
      paced.streams.map((r) => r.label).sort(),
      keys.map((k) => `db0:${k}`).sort(),
    );
    const said = logs.atLeast("INFO", /A discovery pass took .* \((\d+) SCAN calls/);
    assert.equal(said.length, 1, logs.toString());
    // 5,000 keys at COUNT 1000: several calls, each after a pause.
    const calls = Number(/\((\d+) SCAN calls/.exec(said[0].message)![1]);
    assert.ok(calls >= 5, said[0].message);
    // Not paced (status, verify): nothing said, the same streams.
    const plain = await findStreams(conn, { ...SETTINGS, everyMs: 3_600_000 });
    assert.equal(plain.streams.length, keys.length);
    assert.equal(logs.atLeast("INFO", /discovery pass/i).length, 1);
  } finally {
    conn.close();
  }
});
