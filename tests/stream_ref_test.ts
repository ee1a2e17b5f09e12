/**
 * How streams are named (lib/replication/stream/stream_ref.ts): keys are
 * bytes, kept apart from the reply they came in. Pure: no server.
 */
import assert from "node:assert/strict";
import { makeStreamRef, streamId } from "../lib/replication/stream/stream_ref.ts";

Deno.test("a stream's key bytes are its own: 20,000 keys made from one reused buffer each keep their bytes", () => {
  const reply = new Uint8Array(64);
  const refs = [];
  for (let i = 0; i < 20_000; i++) {
    const key = new TextEncoder().encode(`device:${i}:stream\xff`);
    reply.fill(0);
    reply.set(key);
    refs.push(makeStreamRef(i % 3, reply.subarray(0, key.length)));
  }
  reply.fill(7); // the reply's buffer is used again
  for (let i = 0; i < refs.length; i++) {
    const expected = new TextEncoder().encode(`device:${i}:stream\xff`);
    assert.deepEqual(refs[i].key, expected, `key ${i}`);
    assert.equal(refs[i].id, streamId(i % 3, expected));
    assert.equal(refs[i].keyLabel, `device:${i}:stream\\xc3\\xbf`);
  }
  const big = new Uint8Array(5000).fill(65);
  const ref = makeStreamRef(0, big);
  big.fill(66);
  assert.equal(ref.key.length, 5000);
  assert.ok(ref.key.every((b) => b === 65));
});

Deno.test("with a prefix or another target DB the target's key, id and labels differ from the source's; without, they are the same", () => {
  const same = makeStreamRef(2, "orders", { targetDb: "same" });
  assert.equal(same.targetKey, same.key);
  assert.equal(same.targetId, same.id);
  assert.equal(same.targetLabel, "db2:orders");
  const prefixed = makeStreamRef(2, "orders", { targetDb: 5, prefix: "dr:" });
  assert.deepEqual(prefixed.key, new TextEncoder().encode("orders"));
  assert.deepEqual(prefixed.targetKey, new TextEncoder().encode("dr:orders"));
  assert.equal(prefixed.label, "db2:orders");
  assert.equal(prefixed.targetLabel, "db5:dr:orders");
  assert.equal(prefixed.targetKeyLabel, "dr:orders");
  assert.equal(prefixed.targetId, streamId(5, new TextEncoder().encode("dr:orders")));
  const otherDb = makeStreamRef(2, "orders", { targetDb: 0 });
  assert.equal(otherDb.targetLabel, "db0:orders");
  assert.notEqual(otherDb.targetId, otherDb.id);
});
