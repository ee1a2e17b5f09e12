/**
 * A subscriber's connection (the source's keyspace notifications) takes a
 * pub/sub message that arrives while one of its own commands (the keepalive
 * PING every 2 s) is awaited as a message, not as that command's reply:
 * replies asked for as text are parsed as text (PARSE_TEXT), and a message
 * parsed so is no longer recognised (its kind must be bytes).
 */
import assert from "node:assert/strict";
import { RedisConnection } from "../lib/redis/connection.ts";
import type { RespValue } from "../lib/redis/resp_parser.ts";
import { keyEventOf } from "../lib/redis/mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { delay } from "./_replication.ts";

/** Publishes on `channel`, then keeps the server busy `ms` (no socket read meanwhile). */
const PUBLISH_THEN_BUSY = `
redis.call('PUBLISH', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local start = t[1] * 1000 + math.floor(t[2] / 1000)
while true do
  local n = redis.call('TIME')
  if n[1] * 1000 + math.floor(n[2] / 1000) - start >= tonumber(ARGV[2]) then break end
end
return 1`;

Deno.test("a pub/sub message that arrives while the subscriber's PING is awaited is handed to onPush, and PING gets its own reply", async () => {
  await using server = await RedisServer.start();
  await using publisher = await connect(server);
  const pushed: RespValue[][] = [];
  const sub = new RedisConnection(
    { role: "source", host: server.host, port: server.port },
    { onPush: (message) => pushed.push(message) },
  );
  try {
    await sub.send(undefined, ["SUBSCRIBE", "__keyevent@0__:xadd"]);
    const generation = sub.generation;
    // The server publishes, then is busy 300 ms: the PING sent meanwhile is answered after
    // the message was written to the subscriber, so the message arrives while PING is awaited.
    const busy = publisher.send([
      "EVAL",
      PUBLISH_THEN_BUSY,
      "1",
      "__keyevent@0__:xadd",
      "orders",
      "300",
    ]);
    await delay(100);
    const pong = await sub.send(undefined, ["PING"]);
    await busy;
    await delay(100);
    assert.deepEqual(pong, ["pong", ""], "PING's own reply");
    assert.equal(pushed.length, 1, "the message was handed to onPush");
    const event = keyEventOf(pushed[0]);
    assert.equal(event === undefined ? undefined : new TextDecoder().decode(event.key), "orders");
    assert.equal(sub.generation, generation, "the subscriber's socket was not lost");
    assert.deepEqual(await sub.send(undefined, ["PING"]), ["pong", ""]);
  } finally {
    sub.close();
  }
});
