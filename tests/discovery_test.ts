/**
 * Discovery walks the keyspace with SCAN; the run's passes are paced (a
 * bounded number of SCAN calls a second, however large the keyspace) and
 * each says how long it took, at INFO when longer than the interval.
 */
import assert from "node:assert/strict";
import { RedisConnection } from "../lib/redis/mod.ts";
import { findStreams, makeStreamRef } from "../lib/replication/mod.ts";
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

Deno.test("several patterns find every stream that matches any of them as Redis matches (bytes, classes, escapes), each once, and nothing else", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  const streams = [
    "a:1",
    "a:2",
    "b-x",
    "c[1]",
    "caf\xe9:1", // é: two bytes in UTF-8
    "d?",
  ];
  const others = ["b-xy", "c1", "zz:1", "A:1", "d?!"];
  for (const key of [...streams, ...others]) await client.send(["XADD", key, "*", "f", "v"]);
  await client.send(["SET", "a:3", "not a stream"]);
  await Promise.all(
    Array.from({ length: 3000 }, (_, i) => client.send(["SET", `filler:${i}`, "x"])),
  );
  const binary = new Uint8Array([0x61, 0x3a, 0xff]); // "a:" and a byte that is no UTF-8
  await client.send(["XADD", binary, "*", "f", "v"]);
  const patterns = ["a:*", "b-?", "c\\[[0-9]\\]", "caf\xe9:*", "d\\?"];
  const conn = new RedisConnection({ role: "source", host: server.host, port: server.port });
  try {
    const found = await findStreams(conn, { ...SETTINGS, patterns }, { paceMs: 1 });
    assert.deepEqual(
      found.streams.map((r) => r.label).sort(),
      // Labels escape bytes outside printable ASCII.
      [...streams.map((k) => `db0:${k}`.replace("\xe9", "\\xc3\\xa9")), "db0:a:\\xff"].sort(),
    );
    // What Redis itself matches, pattern by pattern, is the same set.
    const byRedis = new Set<string>();
    for (const p of patterns) {
      const [, keys] = await client.send([
        "SCAN",
        "0",
        "MATCH",
        p,
        "COUNT",
        "100000",
        "TYPE",
        "stream",
      ]) as [
        string,
        string[],
      ];
      for (const k of keys) byRedis.add(k);
    }
    assert.equal(byRedis.size, found.streams.length);
  } finally {
    conn.close();
  }
});

Deno.test("streams with any bytes in their keys (0x80-0xff, NUL, 200 bytes) are found with the ids and bytes of their refs, and a pass that skips them finds nothing more", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  const keys = [
    new Uint8Array([0x64, 0x65, 0x76, 0x3a, 0x80, 0x81, 0x9f]), // windows-1252 would remap these
    new Uint8Array([0x64, 0x65, 0x76, 0x3a, 0x00, 0xff, 0x0d, 0x0a]),
    new Uint8Array(200).map((_, i) =>
      i === 3 ? 0x3a : i < 3 ? [0x64, 0x65, 0x76][i] : 128 + i % 128
    ),
    new Uint8Array(64).map((_, i) => i === 3 ? 0x3a : i < 3 ? [0x64, 0x65, 0x76][i] : 0xe9),
    new Uint8Array(65).map((_, i) => i === 3 ? 0x3a : i < 3 ? [0x64, 0x65, 0x76][i] : 0x9d),
  ];
  for (const key of keys) await client.send(["XADD", key, "*", "f", "v"]);
  const conn = new RedisConnection({ role: "source", host: server.host, port: server.port });
  try {
    const found = await findStreams(conn, SETTINGS);
    const byHex = (k: Uint8Array) => [...k].map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.deepEqual(found.streams.map((r) => byHex(r.key)).sort(), keys.map(byHex).sort());
    for (const ref of found.streams) {
      assert.equal(ref.id, makeStreamRef(0, new Uint8Array(ref.key)).id, ref.label);
    }
    const ids = new Set(found.streams.map((r) => r.id));
    const again = await findStreams(conn, SETTINGS, { skipDiscovered: (id) => ids.has(id) });
    assert.deepEqual(again.streams, []);
  } finally {
    conn.close();
  }
});
