/**
 * The stream commands' codec (lib/redis/stream_commands.ts): what each
 * encoder puts on the wire, read back as a RESP request, and each reply
 * decoded in its parse mode from bytes split at every point.
 */
import assert from "node:assert/strict";
import { RedisReplyError } from "../lib/errors.ts";
import { PARSE_VALUES, type ParseMode } from "../lib/redis/parse_mode.ts";
import { RespParser, type RespValue } from "../lib/redis/resp_parser.ts";
import { RespWriter } from "../lib/redis/resp_writer.ts";
import {
  CLAIM_REPLY,
  encodeFencedRead,
  encodeGroupRead,
  encodeStreamsTail,
  encodeStreamWrite,
  encodeWaitRead,
  leaseLostPositions,
  parseRawAutoClaim,
  parseRawMultiRead,
  RANGE_REPLY,
  type RawEntry,
  READ_REPLY,
  wokenKeys,
  writeReplies,
} from "../lib/redis/stream_commands.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");
/** Bytes a key may hold that matter to RESP, and bytes that are not UTF-8. */
const KEY = Uint8Array.of(0x6b, 13, 10, 0x24, 0x2a, 0, 0xff, 0xfe);
const FIELD = Uint8Array.of(13, 10, 0x2b, 0x2d, 0x3a, 0, 0x80);

/** Parses `bytes` fed in pieces cut at `cuts`, each reply in `mode`. */
function parseSplit(bytes: Uint8Array, cuts: number[], mode: ParseMode): RespValue[] {
  const parser = new RespParser();
  const out: RespValue[] = [];
  let offset = 0;
  for (const end of [...cuts, bytes.length]) {
    while (offset < end) {
      const room = parser.writable();
      const n = Math.min(room.length, end - offset);
      room.set(bytes.subarray(offset, offset + n));
      parser.commit(n);
      offset += n;
      parser.parse(() => mode, (v) => out.push(v));
    }
  }
  return out;
}

/** One encoded request read back: its arguments as latin1 text (bytes kept one to one). */
function request(encode: (w: RespWriter) => void): string[][] {
  const w = new RespWriter(64);
  encode(w);
  return parseSplit(w.take().slice(), [], PARSE_VALUES).map((r) =>
    (r as Uint8Array[]).map((b) => dec.decode(b))
  );
}

const text = (b: Uint8Array) => dec.decode(b);

Deno.test("XREADGROUP is encoded with its group, consumer, COUNT, BLOCK only when blocking, and keys as bytes", () => {
  const read = {
    group: "g",
    consumer: "c",
    count: 100,
    keys: [KEY, enc.encode("s2")],
    ids: [">", "5-1"],
  };
  assert.deepEqual(request((w) => encodeGroupRead(w, read, { blockMs: 0 })), [[
    "XREADGROUP",
    "GROUP",
    "g",
    "c",
    "COUNT",
    "100",
    "STREAMS",
    text(KEY),
    "s2",
    ">",
    "5-1",
  ]]);
  assert.deepEqual(request((w) => encodeGroupRead(w, read, { blockMs: 250 }))[0].slice(4, 8), [
    "COUNT",
    "100",
    "BLOCK",
    "250",
  ]);
  // A tail encoded once gives the same bytes as one encoded in place.
  const tail = encodeStreamsTail(read.keys, read.ids);
  assert.deepEqual(
    request((w) =>
      encodeGroupRead(w, { ...read, keys: [KEY, KEY], ids: ["x", "y"] }, { blockMs: 9, tail })
    ),
    request((w) => encodeGroupRead(w, read, { blockMs: 9 })),
  );
});

Deno.test("the fenced read is EVAL with the FENCED_READ argument layout: leases, keys, group, consumer, count, values, ids", () => {
  const script = enc.encode("return 1");
  const got = request((w) =>
    encodeFencedRead(w, script, {
      group: "g",
      consumer: "c",
      count: 7,
      keys: [KEY, enc.encode("b")],
      ids: [">", "3-0"],
      leaseKeys: [enc.encode("L1"), enc.encode("L2")],
      values: ["v1", ""],
    })
  );
  assert.deepEqual(got, [[
    "EVAL",
    "return 1",
    "4",
    "L1",
    "L2",
    text(KEY),
    "b",
    "g",
    "c",
    "7",
    "v1",
    "",
    ">",
    "3-0",
  ]]);
});

Deno.test("LEASELOST names the lost positions; out-of-range ones are ignored; none named means all; other replies none", () => {
  assert.deepEqual(leaseLostPositions(new RedisReplyError("LEASELOST 2,0,9"), 3), [2, 0]);
  assert.deepEqual(leaseLostPositions(new RedisReplyError("LEASELOST"), 3), [0, 1, 2]);
  assert.equal(leaseLostPositions(new RedisReplyError("NOGROUP no group"), 3), undefined);
  assert.equal(leaseLostPositions([], 3), undefined);
});

Deno.test("the wait is XREAD COUNT 1 BLOCK from the given IDs, and its reply names the keys with entries", () => {
  assert.deepEqual(
    request((w) => encodeWaitRead(w, [KEY, enc.encode("b")], { ids: ["1-1", "$"], blockMs: 500 })),
    [["XREAD", "COUNT", "1", "BLOCK", "500", "STREAMS", text(KEY), "b", "1-1", "$"]],
  );
  const reply = array(array(bulk(KEY), array(array(bulk("2-0"), array(bulk("f"), bulk("v"))))));
  const [value] = parseSplit(reply, [], PARSE_VALUES);
  assert.deepEqual(wokenKeys(value).map(text), [text(KEY)]);
  assert.deepEqual(wokenKeys(null), []);
  // Without a block time: a look that does not wait.
  assert.deepEqual(
    request((w) => encodeWaitRead(w, [KEY], { ids: ["1-1"] })),
    [["XREAD", "COUNT", "1", "STREAMS", text(KEY), "1-1"]],
  );
});

/** An XREADGROUP reply of two streams; a deleted pending entry has a nil field list. */
const READ = array(
  array(
    bulk(KEY),
    array(
      array(bulk("1-1"), array(bulk(FIELD), bulk("v"), bulk("f2"), bulk(new Uint8Array(0)))),
      array(bulk("1-2"), nil()),
    ),
  ),
  array(bulk("other"), array(array(bulk("9-0"), array(bulk("a"), bulk("b"))))),
);

Deno.test("an XREADGROUP reply split at every byte decodes to the same keys, IDs, deleted IDs and field bytes", () => {
  for (let cut = 0; cut <= READ.length; cut++) {
    const [value] = parseSplit(READ, cut === 0 ? [] : [cut], READ_REPLY);
    const got = parseRawMultiRead(value).map((s) => ({
      key: text(s.key),
      ids: s.entries.map((e) => e.idText()),
      deleted: s.deleted,
      fields: s.entries.map((e) => e.items().map(text)),
    }));
    assert.deepEqual(got, [
      { key: text(KEY), ids: ["1-1"], deleted: ["1-2"], fields: [[text(FIELD), "v", "f2", ""]] },
      { key: "other", ids: ["9-0"], deleted: [], fields: [["a", "b"]] },
    ], `split at ${cut}`);
  }
});

Deno.test("an XAUTOCLAIM reply split at every byte gives its cursor, entries and deleted IDs", () => {
  const reply = array(
    bulk("5-0"),
    array(array(bulk("3-0"), array(bulk("f"), bulk(FIELD)))),
    array(bulk("4-0")),
  );
  for (let cut = 0; cut <= reply.length; cut++) {
    const [value] = parseSplit(reply, cut === 0 ? [] : [cut], CLAIM_REPLY);
    const got = parseRawAutoClaim(value);
    assert.equal(got.cursor, "5-0");
    assert.deepEqual(got.entries.map((e) => [e.idText(), e.items().map(text)]), [["3-0", [
      "f",
      text(FIELD),
    ]]]);
    assert.deepEqual(got.deleted, ["4-0"]);
  }
});

Deno.test("a write is MULTI, one XADD per entry with its own ID and field bytes unchanged, EXEC; writeReplies counts its replies", () => {
  const range = array(
    array(bulk("1-1"), array(bulk(FIELD), bulk("v"))),
    array(bulk("1-2"), array(bulk("a"), bulk(new Uint8Array(0)), bulk("c"), bulk(KEY))),
  );
  const [value] = parseSplit(range, [7], RANGE_REPLY);
  const entries = value as RawEntry[];
  const got = request((w) =>
    encodeStreamWrite(w, entries, { key: KEY, maxlen: ["MAXLEN", "~", "10"] })
  );
  assert.deepEqual(got, [
    ["MULTI"],
    ["XADD", text(KEY), "MAXLEN", "~", "10", "1-1", text(FIELD), "v"],
    ["XADD", text(KEY), "MAXLEN", "~", "10", "1-2", "a", "", "c", text(KEY)],
    ["EXEC"],
  ]);
  assert.equal(writeReplies(entries.length), got.length);
  assert.equal(
    request((w) => encodeStreamWrite(w, entries, { key: "t", maxlen: [] }))[1].length,
    5,
  );
});

// --- RESP builders ------------------------------------------------------------

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
function bulk(value: string | Uint8Array): Uint8Array {
  const bytes = typeof value === "string" ? enc.encode(value) : value;
  return concat([enc.encode(`$${bytes.length}\r\n`), bytes, enc.encode("\r\n")]);
}
function array(...items: Uint8Array[]): Uint8Array {
  return concat([enc.encode(`*${items.length}\r\n`), ...items]);
}
function nil(): Uint8Array {
  return enc.encode("*-1\r\n");
}
