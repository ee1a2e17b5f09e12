/**
 * How streams are named (lib/replication/stream/stream_ref.ts): keys are
 * bytes, kept apart from the reply they came in. Pure: no server.
 */
import assert from "node:assert/strict";
import {
  makeStreamRef,
  packKeys,
  streamId,
  type StreamRef,
} from "../lib/replication/stream/stream_ref.ts";

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

Deno.test("the keys of streams that start are packed into shared blocks: the same bytes, ids and labels; the target key stays the key without a prefix; long keys and packed ones are left as they are", () => {
  const refs: StreamRef[] = [];
  for (let i = 0; i < 5_000; i++) {
    refs.push(makeStreamRef(0, new TextEncoder().encode(`device:${i}:stream\xff`)));
  }
  const prefixed = makeStreamRef(1, "orders", { prefix: "copy:" });
  const long = makeStreamRef(0, new Uint8Array(300).fill(0x41));
  const longKey = long.key;
  for (const ref of [...refs, prefixed, long]) packKeys(ref);
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i];
    const expected = new TextEncoder().encode(`device:${i}:stream\xff`);
    assert.deepEqual(ref.key, expected, `key ${i}`);
    assert.equal(ref.key.byteLength, expected.byteLength);
    assert.ok(ref.key.buffer.byteLength > ref.key.byteLength, "a view of a block");
    assert.equal(ref.targetKey, ref.key);
    assert.equal(ref.id, streamId(0, expected));
  }
  // Many keys share a block; a block is never written again.
  assert.equal(refs[0].key.buffer, refs[1].key.buffer);
  const before = refs[0].key;
  packKeys(refs[0]);
  assert.equal(refs[0].key, before, "packed once");
  for (let i = 0; i < 200; i++) packKeys(makeStreamRef(0, `more:${i}`));
  assert.deepEqual(refs[0].key, new TextEncoder().encode("device:0:stream\xff"));
  assert.deepEqual(new TextDecoder().decode(prefixed.key), "orders");
  assert.deepEqual(new TextDecoder().decode(prefixed.targetKey), "copy:orders");
  assert.equal(prefixed.targetId, streamId(0, new TextEncoder().encode("copy:orders")));
  assert.equal(long.key, longKey, "a long key keeps its own copy");
});

Deno.test("stream ids are unique for every byte sequence, short and long keys alike, and the same for the same DB and bytes", () => {
  const ids = new Map<string, string>();
  const add = (db: number, key: Uint8Array) => {
    const id = streamId(db, key);
    const what = `${db}:${[...key].join(",")}`;
    const before = ids.get(id);
    assert.ok(before === undefined || before === what, `${what} and ${before} share id ${id}`);
    ids.set(id, what);
    assert.equal(streamId(db, key.slice()), id);
  };
  for (let a = 0; a < 256; a++) {
    add(0, Uint8Array.of(a));
    add(1, Uint8Array.of(a));
    for (let b = 0; b < 256; b += 17) add(0, Uint8Array.of(a, b));
  }
  // Around the length where ids stop being made in JavaScript: every high byte, both sides.
  for (const length of [63, 64, 65, 66]) {
    for (let a = 0x7e; a < 0xa2; a++) add(0, new Uint8Array(length).fill(a));
  }
  add(0, new Uint8Array(0));
  assert.equal(streamId(3, new TextEncoder().encode("device:1:stream")), "3:device:1:stream");
});

Deno.test("a stream's slot is its key's cluster slot: the hash tag's where there is one, the whole key's else", () => {
  assert.equal(makeStreamRef(0, "foo").slot, 12182); // CLUSTER KEYSLOT foo
  assert.equal(makeStreamRef(3, "{user1000}.following").slot, 3443);
  assert.equal(makeStreamRef(0, "{user1000}.followers").slot, 3443);
  assert.equal(makeStreamRef(0, "foo{}{bar}").slot, 8363); // an empty tag: the whole key
  const bytes = new Uint8Array([0xff, 0x00, 0x7b, 0x61, 0x7d]); // \xff\x00{a}: tag "a"
  assert.equal(makeStreamRef(0, bytes).slot, makeStreamRef(0, "a").slot);
});
