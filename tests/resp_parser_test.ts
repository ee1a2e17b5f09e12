import assert from "node:assert/strict";
import { RedisReplyError } from "../lib/errors.ts";
import {
  entriesAt,
  flatEntriesAt,
  PARSE_BYTE_STRINGS,
  PARSE_SKIP_BULKS,
  PARSE_TEXT,
  PARSE_VALUES,
  type ParseMode,
  rawArraysAt,
} from "../lib/redis/parse_mode.ts";
import {
  ProtocolError,
  RawArray,
  RawEntry,
  RespParser,
  type RespValue,
} from "../lib/redis/resp_parser.ts";
import { RespWriter } from "../lib/redis/resp_writer.ts";
import { prng } from "../testing/producer.ts";

// Unit tests of the incremental RESP2 reply parser, on real bytes only. The
// expected bytes come from the small encoder below (independent of
// RespWriter); replies are compared deeply to the values that were encoded.

const UTF8 = new TextEncoder();
/** Bytes to text one character per byte (windows-1252: one-to-one, so fit for equality). */
const BYTES = new TextDecoder("latin1");
const READ_SIZE = 64 * 1024;
const MIN_WRITABLE = 4 * 1024;

// --- The test's own model of RESP2 values and its encoder -------------------

/** A value to encode; `expected()` says what the parser must give for it. */
type Gen =
  | { status: string }
  | { error: string; code: string }
  | { int: number }
  | { bulk: Uint8Array }
  | { nilBulk: true }
  | { array: Gen[] }
  | { nilArray: true };

/** Parser output in a form assert.deepEqual compares meaningfully. */
type Plain =
  | null
  | number
  | { status: string }
  | { error: string; code: string }
  | { bulk: string }
  | { raw: string; count: number; items: string[] }
  | { entry: string; raw: string; count: number; items: string[] }
  | Plain[];

const status = (s: string): Gen => ({ status: s });
const error = (message: string): Gen => ({ error: message, code: message.split(" ")[0] });
const int = (n: number): Gen => ({ int: n });
const bulk = (b: string | Uint8Array): Gen => ({
  bulk: typeof b === "string" ? UTF8.encode(b) : b,
});
const nilBulk: Gen = { nilBulk: true };
const array = (...items: Gen[]): Gen => ({ array: items });
const nilArray: Gen = { nilArray: true };

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function encodeInto(value: Gen, out: Uint8Array[]): void {
  if ("status" in value) out.push(UTF8.encode(`+${value.status}\r\n`));
  else if ("error" in value) out.push(UTF8.encode(`-${value.error}\r\n`));
  else if ("int" in value) out.push(latin1(`:${value.int}\r\n`));
  else if ("bulk" in value) {
    out.push(latin1(`$${value.bulk.length}\r\n`), value.bulk, latin1("\r\n"));
  } else if ("nilBulk" in value) out.push(latin1("$-1\r\n"));
  else if ("nilArray" in value) out.push(latin1("*-1\r\n"));
  else {
    out.push(latin1(`*${value.array.length}\r\n`));
    for (const item of value.array) encodeInto(item, out);
  }
}

/** The RESP2 bytes of values, one after the other. */
function encode(...values: Gen[]): Uint8Array {
  const out: Uint8Array[] = [];
  for (const value of values) encodeInto(value, out);
  return concat(out);
}

/** What the parser must give for `value` when arrays at `rawDepth` are kept raw. */
function expected(value: Gen, rawDepth = -1, depth = 0): Plain {
  if ("status" in value) return { status: value.status };
  if ("error" in value) return { error: value.error, code: value.code };
  if ("int" in value) return value.int;
  if ("bulk" in value) return { bulk: BYTES.decode(value.bulk) };
  if ("nilBulk" in value || "nilArray" in value) return null;
  if (depth === rawDepth) {
    const items = value.array.map((item) => {
      if (!("bulk" in item)) throw new Error("test bug: a raw array holds bulk strings only");
      return BYTES.decode(item.bulk);
    });
    return { raw: BYTES.decode(encode(...value.array)), count: value.array.length, items };
  }
  return value.array.map((item) => expected(item, rawDepth, depth + 1));
}

function plain(value: RespValue): Plain {
  if (value === null || typeof value === "number") return value;
  if (typeof value === "string") return { status: value };
  if (value instanceof RedisReplyError) return { error: value.message, code: value.code };
  if (value instanceof Uint8Array) return { bulk: BYTES.decode(value) };
  if (value instanceof RawArray) {
    return {
      raw: BYTES.decode(value.bytes),
      count: value.count,
      items: value.items().map((item) => BYTES.decode(item)),
    };
  }
  if (value instanceof RawEntry) {
    return {
      entry: value.idText(),
      raw: BYTES.decode(value.fields),
      count: value.count,
      items: value.items().map((item) => BYTES.decode(item)),
    };
  }
  return value.map(plain);
}

// --- Feeding bytes to a parser ----------------------------------------------

interface Fed {
  replies: RespValue[];
  /** Distinct buffers writable() handed out, and their total size. */
  buffers: number;
  allocated: number;
}

/**
 * Feeds `bytes` the way the socket does: read into writable(), commit(),
 * parse(). `chunk()` gives the size of each read (capped by writable()).
 */
function feed(
  bytes: Uint8Array,
  chunk: () => number,
  rawDepth: () => number = () => -1,
  parser = new RespParser(),
): Fed {
  const replies: RespValue[] = [];
  const seen = new Set<ArrayBufferLike>();
  let allocated = 0;
  let offset = 0;
  while (offset < bytes.length) {
    const room = parser.writable();
    assert.ok(room.length >= MIN_WRITABLE, `writable() gave only ${room.length} bytes`);
    if (!seen.has(room.buffer)) {
      seen.add(room.buffer);
      allocated += room.buffer.byteLength;
    }
    const n = Math.min(room.length, Math.max(1, chunk()), bytes.length - offset);
    room.set(bytes.subarray(offset, offset + n));
    offset += n;
    parser.commit(n);
    parser.parse(() => modeOf(rawDepth()), (value) => replies.push(value));
  }
  return { replies, buffers: seen.size, allocated };
}

const whole = (bytes: Uint8Array, rawDepth?: () => number) =>
  feed(bytes, () => bytes.length, rawDepth).replies;
const byteByByte = (bytes: Uint8Array, rawDepth?: () => number) =>
  feed(bytes, () => 1, rawDepth).replies;

/** The mode that keeps the arrays at `depth` raw (-1: none), as the tests below name modes. */
function modeOf(depth: number): ParseMode {
  return depth < 0 ? PARSE_VALUES : rawArraysAt(depth);
}

/** Parses one complete reply from its bytes. */
function parseOne(bytes: Uint8Array | string, rawDepth = -1): RespValue {
  const replies = whole(typeof bytes === "string" ? latin1(bytes) : bytes, () => rawDepth);
  assert.equal(replies.length, 1, "one reply");
  return replies[0];
}

function randomBytes(random: () => number, n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = random() * 4294967296;
  const out = new Uint8Array(words.buffer, 0, n);
  // About 30% of the bytes are the ones that matter to RESP: CR, LF, $, *, :, +, -, NUL.
  const special = [13, 10, 36, 42, 58, 43, 45, 0, 255];
  for (let i = 0; i < n; i++) if (out[i] < 77) out[i] = special[out[i] % special.length];
  return out;
}

function bytesEqual(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: differ at byte ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

// --- Every type ---------------------------------------------------------------

Deno.test("status replies are strings: OK, QUEUED, PONG, empty, TYPE names, UTF-8", () => {
  for (
    const s of ["OK", "QUEUED", "PONG", "", "string", "stream", "none", "Background saving started"]
  ) {
    assert.equal(parseOne(`+${s}\r\n`), s);
  }
  assert.equal(parseOne(UTF8.encode("+héllo wörld €\r\n")), "héllo wörld €");
});

Deno.test("status replies are decoded as sent, even when they begin like QUEUED or PONG", () => {
  // Same length and first two letters as QUEUED (6) / PONG (4) / OK (2): the
  // shortcut for the common statuses must not answer for them.
  for (const s of ["QUOTED", "QUEUES", "QU____", "POOL", "POST", "PO..", "OKAY", "Ok", "OK!"]) {
    assert.equal(parseOne(`+${s}\r\n`), s, `+${s}`);
  }
});

Deno.test("error replies are RedisReplyError values with their code, not thrown", () => {
  const cases: [string, string][] = [
    ["ERR unknown command 'FOO', with args beginning with: ", "ERR"],
    ["WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE"],
    ["NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option", "NOGROUP"],
    ["BUSYGROUP Consumer Group name already exists", "BUSYGROUP"],
    ["LOADING Redis is loading the dataset in memory", "LOADING"],
    ["ERR", "ERR"],
    ["NOAUTH Authentication required.", "NOAUTH"],
  ];
  for (const [message, code] of cases) {
    const reply = parseOne(`-${message}\r\n`);
    assert.ok(reply instanceof RedisReplyError, message);
    assert.equal(reply.message, message);
    assert.equal(reply.code, code);
  }
  const utf8 = parseOne(UTF8.encode("-ERR clé inconnue\r\n"));
  assert.ok(utf8 instanceof RedisReplyError);
  assert.equal(utf8.message, "ERR clé inconnue");
});

Deno.test("integer replies are numbers, negative and up to the safe integer range", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["1", 1],
    ["-1", -1],
    ["1000", 1000],
    ["-42", -42],
    ["1700000000000", 1700000000000],
    ["9007199254740991", 9007199254740991],
    ["-9007199254740991", -9007199254740991],
  ];
  for (const [text, n] of cases) assert.equal(parseOne(`:${text}\r\n`), n, text);
});

Deno.test("bulk replies are Uint8Array: text, empty, binary with CR/LF/NUL, UTF-8; $-1 is null", () => {
  const hello = parseOne("$5\r\nhello\r\n");
  assert.ok(hello instanceof Uint8Array);
  assert.deepEqual(plain(hello), { bulk: "hello" });

  const empty = parseOne("$0\r\n\r\n");
  assert.ok(empty instanceof Uint8Array);
  assert.equal(empty.length, 0);

  assert.equal(parseOne("$-1\r\n"), null);

  const binary = Uint8Array.from([13, 10, 0, 255, 36, 13, 10, 42, 10, 13]);
  const got = parseOne(encode(bulk(binary)));
  assert.ok(got instanceof Uint8Array);
  bytesEqual(got, binary, "binary");

  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  bytesEqual(parseOne(encode(bulk(all))) as Uint8Array, all, "every byte value");

  const text = parseOne(UTF8.encode("$7\r\n€😀\r\n"));
  assert.equal(new TextDecoder().decode(text as Uint8Array), "€😀");
});

Deno.test("array replies: empty, *-1 as null, flat, mixed, nested, with nulls inside", () => {
  assert.deepEqual(parseOne("*0\r\n"), []);
  assert.equal(parseOne("*-1\r\n"), null);
  assert.deepEqual(parseOne("*3\r\n:1\r\n:2\r\n:3\r\n"), [1, 2, 3]);
  assert.deepEqual(
    plain(parseOne("*5\r\n+OK\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n")),
    [{ status: "OK" }, -7, { bulk: "abc" }, null, null],
  );
  assert.deepEqual(
    plain(parseOne("*3\r\n*2\r\n:1\r\n*1\r\n*0\r\n*0\r\n*2\r\n$1\r\nx\r\n*1\r\n:9\r\n")),
    [[1, [[]]], [], [{ bulk: "x" }, [9]]],
  );
  // Deep nesting.
  let deep: Gen = int(1);
  for (let i = 0; i < 50; i++) deep = array(deep, bulk(`${i}`));
  assert.deepEqual(plain(parseOne(encode(deep))), expected(deep));
});

Deno.test("errors inside arrays are values, as EXEC returns them; EXECABORT and a WATCH abort", () => {
  const exec = plain(parseOne(
    "*4\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" +
      ":2\r\n$-1\r\n",
  ));
  assert.deepEqual(exec, [
    { status: "OK" },
    {
      error: "WRONGTYPE Operation against a key holding the wrong kind of value",
      code: "WRONGTYPE",
    },
    2,
    null,
  ]);
  const reply = parseOne("*2\r\n-ERR one\r\n-NOGROUP two\r\n") as RespValue[];
  assert.ok(reply[0] instanceof RedisReplyError && reply[0].code === "ERR");
  assert.ok(reply[1] instanceof RedisReplyError && reply[1].code === "NOGROUP");
  // MULTI ... EXEC as a pipeline: OK, QUEUED per command, then the EXEC array.
  const pipeline = whole(latin1(
    "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n-ERR bad\r\n" +
      "-EXECABORT Transaction discarded because of previous errors.\r\n*-1\r\n",
  ));
  assert.deepEqual(pipeline.map(plain), [
    { status: "OK" },
    { status: "QUEUED" },
    { status: "QUEUED" },
    [1, { error: "ERR bad", code: "ERR" }],
    { error: "EXECABORT Transaction discarded because of previous errors.", code: "EXECABORT" },
    null,
  ]);
});

// --- Chunking -----------------------------------------------------------------

const MIXED: Gen[] = [
  status("OK"),
  status("QUEUED"),
  status("PONG"),
  status("a status with spaces"),
  error("ERR something went wrong"),
  int(0),
  int(-123456789),
  int(9007199254740991),
  bulk(""),
  bulk("hello"),
  bulk(Uint8Array.from([13, 10, 13, 10, 0, 36, 42])),
  bulk("é".repeat(3000)),
  nilBulk,
  array(),
  nilArray,
  array(int(1), bulk("two"), status("three"), error("NOGROUP four"), nilBulk, nilArray, array()),
  array(array(bulk("s"), array(array(bulk("1-0"), array(bulk("f"), bulk("v")))))),
  array(status("OK"), error("WRONGTYPE x"), int(3)),
];

Deno.test("many replies in one chunk are all given, in order, by one parse()", () => {
  const small = MIXED.filter((v) => !("bulk" in v && v.bulk.length > 100));
  const values: Gen[] = [];
  for (let i = 0; i < 1000; i++) values.push(small[i % small.length]);
  const bytes = encode(...values);
  const parser = new RespParser();
  const room = parser.writable();
  assert.ok(room.length >= bytes.length, "fits in the first buffer");
  room.set(bytes);
  parser.commit(bytes.length);
  const replies: RespValue[] = [];
  parser.parse(() => PARSE_VALUES, (value) => replies.push(value));
  assert.equal(parser.buffered, 0);
  assert.deepEqual(replies.map(plain), values.map((v) => expected(v)));
});

Deno.test("an incomplete reply gives nothing until its last byte; buffered counts the waiting bytes", () => {
  const parser = new RespParser();
  const replies: RespValue[] = [];
  const push = (bytes: string) => {
    const room = parser.writable();
    room.set(latin1(bytes));
    parser.commit(bytes.length);
    parser.parse(() => PARSE_VALUES, (value) => replies.push(value));
  };
  assert.equal(parser.buffered, 0);
  parser.parse(() => PARSE_VALUES, (value) => replies.push(value)); // nothing at all: nothing happens
  push("*2\r\n$5\r\nhel");
  assert.equal(replies.length, 0);
  assert.ok(parser.buffered > 0);
  push("lo\r\n:4");
  assert.equal(replies.length, 0);
  push("2\r");
  assert.equal(replies.length, 0);
  push("\n+OK\r\n+PO");
  assert.deepEqual(replies.map(plain), [[{ bulk: "hello" }, 42], { status: "OK" }]);
  assert.equal(parser.buffered, 3);
  push("NG\r\n");
  assert.deepEqual(plain(replies[2]), { status: "PONG" });
  assert.equal(parser.buffered, 0);
  parser.commit(0);
  parser.parse(() => PARSE_VALUES, (value) => replies.push(value));
  assert.equal(replies.length, 3);
});

Deno.test("a stream fed one byte at a time gives the same replies as fed at once", () => {
  const bytes = encode(...MIXED);
  const atOnce = whole(bytes).map(plain);
  assert.deepEqual(atOnce, MIXED.map((v) => expected(v)));
  assert.deepEqual(byteByByte(bytes).map(plain), atOnce);
});

/** A random value, nested up to `depth` more levels. */
function randomValue(random: () => number, depth: number): Gen {
  const r = random();
  if (depth > 0 && r < 0.25) {
    if (random() < 0.08) return nilArray;
    const n = random() < 0.1 ? 0 : 1 + Math.floor(random() * 6);
    return array(...Array.from({ length: n }, () => randomValue(random, depth - 1)));
  }
  if (r < 0.35) {
    const words = ["OK", "QUEUED", "PONG", "string", "stream", "héllo", "a b c", ""];
    if (random() < 0.5) return status(words[Math.floor(random() * words.length)]);
    let s = "";
    const n = Math.floor(random() * 30);
    for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(random() * 26));
    return status(s);
  }
  if (r < 0.42) {
    const codes = ["ERR", "WRONGTYPE", "NOGROUP", "BUSYGROUP", "LOADING", "MOVED"];
    const code = codes[Math.floor(random() * codes.length)];
    return random() < 0.2
      ? error(code)
      : error(`${code} some message ${Math.floor(random() * 1000)}`);
  }
  if (r < 0.55) {
    const kind = random();
    const n = kind < 0.3
      ? Math.floor(random() * 10)
      : kind < 0.6
      ? Math.floor(random() * 2 ** 32)
      : Math.floor(random() * Number.MAX_SAFE_INTEGER);
    return int(random() < 0.3 && n !== 0 ? -n : n);
  }
  if (r < 0.6) return nilBulk;
  const size = random();
  const n = size < 0.15 ? 0 : size < 0.8 ? Math.floor(random() * 40) : Math.floor(random() * 3000);
  return bulk(randomBytes(random, n));
}

Deno.test("random split points over 300 random corpora of nested values give the values encoded", () => {
  const random = prng(20240601);
  for (let iteration = 0; iteration < 300; iteration++) {
    const values = Array.from(
      { length: 1 + Math.floor(random() * 30) },
      () => randomValue(random, 4),
    );
    const bytes = encode(...values);
    const want = values.map((v) => expected(v));
    // Split points: one byte, a few bytes, up to a few hundred, up to a few KiB.
    const mode = iteration % 4;
    const max = [1, 7, 300, 5000][mode];
    const chunk = () => 1 + Math.floor(random() * max);
    const got = feed(bytes, chunk).replies.map(plain);
    assert.deepEqual(got, want, `iteration ${iteration} (chunks up to ${max} bytes)`);
  }
});

Deno.test("the same corpus split at every single point gives the same replies", () => {
  const values = MIXED.slice(0, 17).filter((v) => !("bulk" in v && v.bulk.length > 100));
  const bytes = encode(...values);
  const want = values.map((v) => expected(v));
  for (let cut = 1; cut < bytes.length; cut++) {
    let first = true;
    const got = feed(bytes, () => {
      const n = first ? cut : bytes.length;
      first = false;
      return n;
    }).replies.map(plain);
    assert.deepEqual(got, want, `split at ${cut}`);
  }
});

// --- Big replies and buffers --------------------------------------------------

Deno.test("a 5 MB bulk string fed in 64 KiB chunks is parsed whole, into one buffer sized for it", () => {
  const big = randomBytes(prng(7), 5 * 1024 * 1024);
  const bytes = encode(status("before"), bulk(big), int(42), bulk("after"));
  const fed = feed(bytes, () => READ_SIZE);
  assert.equal(fed.replies.length, 4);
  assert.equal(fed.replies[0], "before");
  const got = fed.replies[1];
  assert.ok(got instanceof Uint8Array);
  bytesEqual(got, big, "5 MB bulk");
  assert.equal(fed.replies[2], 42);
  assert.deepEqual(plain(fed.replies[3]), { bulk: "after" });
  // Linear, not quadratic: the bytes are not re-copied into ever bigger buffers.
  assert.ok(fed.buffers <= 3, `${fed.buffers} buffers`);
  assert.ok(
    fed.allocated < 2 * bytes.length,
    `${fed.allocated} bytes allocated for ${bytes.length}`,
  );
});

Deno.test("a 5 MB bulk string fed in uneven chunks (1 byte to 100 KiB) is parsed whole", () => {
  const random = prng(8);
  const big = randomBytes(random, 5 * 1024 * 1024);
  const bytes = encode(array(bulk("k"), bulk(big), bulk("")), bulk(big.subarray(0, 70_000)));
  const chunks = [1, 2, 3, 9, 100, 4095, 4096, 4097, 65535, 65536, 100_000];
  const fed = feed(bytes, () => chunks[Math.floor(random() * chunks.length)]);
  assert.equal(fed.replies.length, 2);
  const [first, second] = fed.replies as [RespValue[], Uint8Array];
  assert.deepEqual(plain(first[0]), { bulk: "k" });
  bytesEqual(first[1] as Uint8Array, big, "5 MB bulk in an array");
  assert.equal((first[2] as Uint8Array).length, 0);
  bytesEqual(second, big.subarray(0, 70_000), "70 KB bulk");
  assert.ok(
    fed.allocated < 3 * bytes.length,
    `${fed.allocated} bytes allocated for ${bytes.length}`,
  );
});

Deno.test("views handed out stay intact after many more replies were parsed (buffers never reused)", () => {
  const random = prng(9);
  const parser = new RespParser();
  const kept: { view: Uint8Array; copy: Uint8Array }[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for (let round = 0; round < 40; round++) {
    const values: Gen[] = [];
    for (let i = 0; i < 50; i++) {
      const n = random() < 0.1 ? Math.floor(random() * 20_000) : Math.floor(random() * 200);
      values.push(
        random() < 0.5 ? bulk(randomBytes(random, n)) : array(bulk(randomBytes(random, n)), int(i)),
      );
    }
    const fed = feed(encode(...values), () => 1 + Math.floor(random() * 9000), () => -1, parser);
    assert.equal(fed.replies.length, values.length);
    for (const reply of fed.replies) {
      const view = reply instanceof Uint8Array ? reply : (reply as RespValue[])[0] as Uint8Array;
      kept.push({ view, copy: view.slice() });
      buffers.add(view.buffer);
    }
  }
  assert.ok(buffers.size >= 5, `replies spread over ${buffers.size} buffers`);
  kept.forEach(({ view, copy }, i) => bytesEqual(view, copy, `view ${i}`));
});

Deno.test("writable() always gives at least 4 KiB past the bytes received, never over them", () => {
  const parser = new RespParser();
  const random = prng(10);
  const handedOut: { view: Uint8Array; copy: Uint8Array }[] = [];
  for (let i = 0; i < 2000; i++) {
    const value = bulk(randomBytes(random, Math.floor(random() * 3000)));
    const bytes = encode(value);
    let offset = 0;
    while (offset < bytes.length) {
      const room = parser.writable();
      assert.ok(room.length >= MIN_WRITABLE);
      const n = Math.min(room.length, bytes.length - offset, 1 + Math.floor(random() * 5000));
      room.set(bytes.subarray(offset, offset + n));
      offset += n;
      parser.commit(n);
      parser.parse(
        () => PARSE_VALUES,
        (reply) =>
          handedOut.push({ view: reply as Uint8Array, copy: (reply as Uint8Array).slice() }),
      );
    }
  }
  assert.equal(handedOut.length, 2000);
  handedOut.forEach(({ view, copy }, i) => bytesEqual(view, copy, `reply ${i}`));
});

// --- rawDepth: stream entries kept as RESP bytes -------------------------------

type Entry = [id: string, fields: Uint8Array[] | null];

/** An XREADGROUP reply: `[[key, [[id, [f, v, ...]], ...]], ...]`. */
function xreadgroup(streams: [key: string, entries: Entry[]][]): Gen {
  return array(
    ...streams.map(([key, entries]) =>
      array(
        bulk(key),
        array(
          ...entries.map(([id, fields]) =>
            array(bulk(id), fields === null ? nilArray : array(...fields.map((f) => bulk(f))))
          ),
        ),
      )
    ),
  );
}

const fieldsOf = (...texts: string[]) => texts.map((t) => UTF8.encode(t));

Deno.test("rawDepth 4 on an XREADGROUP reply gives a RawArray per field list: its RESP bytes and items()", () => {
  const reply = xreadgroup([
    ["stream-a", [
      ["1-0", fieldsOf("f1", "v1", "f2", "v2")],
      ["2-0", fieldsOf("name", "é€😀", "empty", "")],
      ["3-5", [Uint8Array.from([13, 10, 0]), Uint8Array.from([36, 42, 13])]],
    ]],
    ["stream-b", [["5-1", fieldsOf("x", "y")]]],
  ]);
  const bytes = encode(reply);
  for (const replies of [whole(bytes, () => 4), byteByByte(bytes, () => 4)]) {
    assert.equal(replies.length, 1);
    const streams = replies[0] as RespValue[];
    assert.equal(streams.length, 2);
    const [key, entries] = streams[0] as [Uint8Array, RespValue[]];
    assert.deepEqual(plain(key), { bulk: "stream-a" });
    assert.equal(entries.length, 3);
    const [id, fields] = entries[0] as [Uint8Array, RawArray];
    assert.deepEqual(plain(id), { bulk: "1-0" });
    assert.ok(fields instanceof RawArray);
    assert.equal(fields.count, 4);
    bytesEqual(
      fields.bytes,
      latin1("$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"),
      "raw bytes",
    );
    assert.deepEqual(fields.items().map((b) => BYTES.decode(b)), ["f1", "v1", "f2", "v2"]);
    const utf8 = (entries[1] as RespValue[])[1] as RawArray;
    assert.equal(utf8.count, 4);
    assert.equal(new TextDecoder().decode(utf8.items()[1]), "é€😀");
    assert.equal(utf8.items()[3].length, 0);
    const binary = (entries[2] as RespValue[])[1] as RawArray;
    bytesEqual(binary.items()[0], Uint8Array.from([13, 10, 0]), "binary field");
    bytesEqual(binary.items()[1], Uint8Array.from([36, 42, 13]), "binary value");
    bytesEqual(binary.bytes, latin1("$3\r\n\r\n\0\r\n$3\r\n$*\r\r\n"), "binary raw bytes");
    assert.deepEqual(replies.map(plain), [expected(reply, 4)]);
  }
});

Deno.test("rawDepth 4: a deleted entry's nil field list ([id, nil]) is null; an empty one is an empty RawArray", () => {
  const reply = xreadgroup([["s", [["1-0", null], ["2-0", []], ["3-0", fieldsOf("f", "v")], [
    "4-0",
    null,
  ]]]]);
  const bytes = encode(reply);
  for (const replies of [whole(bytes, () => 4), byteByByte(bytes, () => 4)]) {
    const entries = ((replies[0] as RespValue[])[0] as RespValue[])[1] as RespValue[][];
    assert.equal(entries[0][1], null);
    const empty = entries[1][1];
    assert.ok(empty instanceof RawArray);
    assert.equal(empty.count, 0);
    assert.equal(empty.bytes.length, 0);
    assert.deepEqual(empty.items(), []);
    assert.deepEqual((entries[2][1] as RawArray).items().map((b) => BYTES.decode(b)), ["f", "v"]);
    assert.equal(entries[3][1], null);
  }
});

Deno.test("rawDepth 4: other shapes of the reply are left alone (nil on BLOCK timeout, an error, no entries)", () => {
  assert.equal(parseOne("*-1\r\n", 4), null);
  const refused = parseOne("-NOGROUP No such key 's' or consumer group 'g'\r\n", 4);
  assert.ok(refused instanceof RedisReplyError && refused.code === "NOGROUP");
  assert.deepEqual(plain(parseOne(encode(xreadgroup([["s", []]])), 4)), [[{ bulk: "s" }, []]]);
  assert.deepEqual(parseOne(":3\r\n", 4), 3);
});

Deno.test("a RawArray's bytes written back with RespWriter.raw() make the same XADD as its fields one by one", () => {
  const fields = fieldsOf("temperature", "21.5", "unit", "°C", "", "\r\n");
  const reply = parseOne(encode(xreadgroup([["s", [["7-3", fields]]]])), 4) as RespValue[];
  const raw = (((reply[0] as RespValue[])[1] as RespValue[])[0] as RespValue[])[1] as RawArray;
  const writer = new RespWriter();
  writer.arrayHeader(3 + raw.count);
  writer.bulk("XADD");
  writer.bulk("target");
  writer.bulk("7-3");
  writer.raw(raw.bytes);
  const viaRaw = writer.take().slice();
  writer.command(["XADD", "target", "7-3", ...raw.items()]);
  bytesEqual(viaRaw, writer.take(), "XADD");
  bytesEqual(
    viaRaw,
    encode(array(...["XADD", "target", "7-3"].map((s) => bulk(s)), ...fields.map((f) => bulk(f)))),
    "XADD by hand",
  );
});

Deno.test("raw arrays straddling buffer growth, fed in tiny chunks, stay contiguous and exact", () => {
  const random = prng(11);
  const entries: Entry[] = [];
  for (let i = 0; i < 120; i++) {
    const fields: Uint8Array[] = [];
    const pairs = 1 + Math.floor(random() * 6);
    for (let p = 0; p < pairs; p++) {
      fields.push(UTF8.encode(`field-${p}`));
      const r = random();
      const n = r < 0.6
        ? Math.floor(random() * 100)
        : r < 0.95
        ? Math.floor(random() * 9000)
        : 70_000 + Math.floor(random() * 60_000);
      fields.push(randomBytes(random, n));
    }
    entries.push([`${1000 + i}-0`, random() < 0.05 ? null : fields]);
  }
  // One entry with 3000 small fields: a raw array much bigger than one read buffer.
  entries.push([
    "9999-0",
    Array.from({ length: 3000 }, (_, i) => UTF8.encode(`f${i}:${"v".repeat(i % 97)}`)),
  ]);
  const reply = xreadgroup([["big-stream", entries]]);
  const bytes = encode(reply);
  const chunks = [1, 1, 2, 3, 5, 8, 13, 64, 200, 4096];
  const fed = feed(bytes, () => chunks[Math.floor(random() * chunks.length)], () => 4);
  assert.equal(fed.replies.length, 1);
  assert.ok(fed.buffers >= 10, `only ${fed.buffers} buffers: growth not exercised`);
  const got = ((fed.replies[0] as RespValue[])[0] as RespValue[])[1] as RespValue[][];
  assert.equal(got.length, entries.length);
  entries.forEach(([id, fields], i) => {
    assert.deepEqual(plain(got[i][0]), { bulk: id });
    if (fields === null) {
      assert.equal(got[i][1], null, `entry ${i}`);
      return;
    }
    const raw = got[i][1];
    assert.ok(raw instanceof RawArray, `entry ${i}`);
    assert.equal(raw.count, fields.length);
    bytesEqual(raw.bytes, encode(...fields.map((f) => bulk(f))), `entry ${i} raw bytes`);
    const items = raw.items();
    assert.equal(items.length, fields.length);
    items.forEach((item, j) => bytesEqual(item, fields[j], `entry ${i} field ${j}`));
  });
});

Deno.test("a raw array much bigger than the read buffer is not re-copied on every read", () => {
  // One entry of 4000 fields of 256 bytes (about 1 MB of RESP), read 64 KiB at a time.
  const fields = Array.from({ length: 4000 }, (_, i) => latin1(String(i).padStart(256, "x")));
  const bytes = encode(xreadgroup([["s", [["1-0", fields]]]]));
  const fed = feed(bytes, () => READ_SIZE, () => 4);
  const raw =
    ((((fed.replies[0] as RespValue[])[0] as RespValue[])[1] as RespValue[])[0] as RespValue[])[1];
  assert.ok(raw instanceof RawArray);
  bytesEqual(raw.bytes, encode(...fields.map((f) => bulk(f))), "raw bytes");
  // Doubling (or sizing for the whole) keeps the total linear; a buffer of
  // "what is carried + a few KiB" at every read makes it quadratic.
  assert.ok(
    fed.allocated < 4 * bytes.length,
    `${fed.buffers} buffers, ${fed.allocated} bytes allocated for a ${bytes.length}-byte reply`,
  );
});

Deno.test("random XREADGROUP replies with rawDepth 4, split at random points, give the entries encoded", () => {
  const random = prng(12);
  for (let iteration = 0; iteration < 150; iteration++) {
    const streams: [string, Entry[]][] = [];
    const nStreams = 1 + Math.floor(random() * 3);
    for (let s = 0; s < nStreams; s++) {
      const entries: Entry[] = [];
      const nEntries = Math.floor(random() * 12);
      for (let e = 0; e < nEntries; e++) {
        const nFields = 2 * Math.floor(random() * 5);
        const fields = Array.from({ length: nFields }, () => {
          const n = random() < 0.95 ? Math.floor(random() * 30) : Math.floor(random() * 3000);
          return randomBytes(random, n);
        });
        entries.push([`${iteration}-${e}`, random() < 0.1 ? null : fields]);
      }
      streams.push([`stream:${s}`, entries]);
    }
    const reply = xreadgroup(streams);
    // A few other replies around it, parsed without raw arrays.
    const before = array(bulk("not"), array(bulk("raw")));
    const after = array(array(array(array(array(bulk("deep"))))));
    const bytes = encode(before, reply, after);
    const depths = [-1, 4, -1];
    let asked = 0;
    const max = [1, 5, 100, 3000][iteration % 4];
    const fed = feed(bytes, () => 1 + Math.floor(random() * max), () => depths[asked++]);
    assert.equal(asked, 3, "rawDepth asked once per reply");
    assert.deepEqual(
      fed.replies.map(plain),
      [expected(before), expected(reply, 4), expected(after)],
      `iteration ${iteration}`,
    );
  }
});

Deno.test("rawDepth is asked at the start of each reply, once, and applies to that reply only", () => {
  const entries = xreadgroup([["s", [["1-0", fieldsOf("a", "b")]]]]);
  const xrange = array(
    array(bulk("1-0"), array(bulk("a"), bulk("b"))),
    array(bulk("2-0"), array()),
  );
  const flat = array(bulk("a"), bulk("b"));
  const values = [entries, entries, xrange, flat, flat, status("OK"), entries];
  const depths = [4, -1, 2, 0, 1, -1, 5];
  const bytes = encode(...values);
  for (const chunk of [bytes.length, 1, 3]) {
    let asked = 0;
    const askedAt: number[] = [];
    const replies: RespValue[] = [];
    const parser = new RespParser();
    let offset = 0;
    while (offset < bytes.length) {
      const room = parser.writable();
      const n = Math.min(chunk, bytes.length - offset);
      room.set(bytes.subarray(offset, offset + n));
      offset += n;
      parser.commit(n);
      parser.parse(() => {
        askedAt.push(replies.length);
        return modeOf(depths[asked++]);
      }, (value) => replies.push(value));
    }
    // Asked once per reply, each time before that reply is given.
    assert.deepEqual(askedAt, [0, 1, 2, 3, 4, 5, 6], `chunks of ${chunk}`);
    assert.deepEqual(
      replies.map(plain),
      values.map((v, i) => expected(v, depths[i])),
      `chunks of ${chunk}`,
    );
    assert.ok(replies[3] instanceof RawArray, "rawDepth 0: the reply itself is raw");
    assert.equal((replies[3] as RawArray).count, 2);
  }
});

// --- Protocol errors ----------------------------------------------------------

function parseAll(text: string, rawDepth = -1): RespValue[] {
  const replies: RespValue[] = [];
  const parser = new RespParser();
  const bytes = latin1(text);
  parser.writable().set(bytes);
  parser.commit(bytes.length);
  parser.parse(() => modeOf(rawDepth), (value) => replies.push(value));
  return replies;
}

Deno.test("a non-bulk element inside a raw array throws ProtocolError", () => {
  const cases = [
    "*2\r\n$1\r\na\r\n:1\r\n", // integer
    "*2\r\n+OK\r\n$1\r\na\r\n", // status
    "*1\r\n-ERR x\r\n", // error
    "*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", // nested array
    "*1\r\n*-1\r\n", // nil array
    "*2\r\n$1\r\na\r\n$-1\r\n", // nil bulk
  ];
  for (const text of cases) {
    assert.throws(() => parseAll(text, 0), ProtocolError, JSON.stringify(text));
  }
  // In an XREADGROUP shape too: a field list holding an integer.
  const entries = "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n:5\r\n";
  assert.throws(() => parseAll(entries, 4), ProtocolError);
  assert.deepEqual(plain(parseAll(entries)[0]), [[{ bulk: "s" }, [[{ bulk: "1-0" }, [
    { bulk: "f" },
    5,
  ]]]]]);
});

Deno.test("a bad type byte or a bad number throws ProtocolError, after the good replies before it", () => {
  for (
    const text of ["!oops\r\n", "HTTP/1.1 400 Bad Request\r\n", "hello\r\n", "_\r\n", "%1\r\n"]
  ) {
    assert.throws(() => parseAll(text), ProtocolError, JSON.stringify(text));
  }
  for (const text of [":12a\r\n", ":1.5\r\n", "$abc\r\n", "*x\r\n", "$ 3\r\nabc\r\n"]) {
    assert.throws(() => parseAll(text), ProtocolError, JSON.stringify(text));
  }
  const replies: RespValue[] = [];
  const parser = new RespParser();
  const bytes = latin1("+OK\r\n:1\r\n?what\r\n+NEVER\r\n");
  parser.writable().set(bytes);
  parser.commit(bytes.length);
  assert.throws(
    () => parser.parse(() => PARSE_VALUES, (value) => replies.push(value)),
    (e: unknown) =>
      e instanceof ProtocolError && e.name === "ProtocolError" && /63/.test(e.message),
  );
  assert.deepEqual(replies, ["OK", 1]);
});

Deno.test("a bad type byte inside an array throws ProtocolError too", () => {
  assert.throws(() => parseAll("*2\r\n:1\r\n!x\r\n"), ProtocolError);
  assert.throws(() => byteByByte(latin1("*1\r\n*1\r\n&\r\n")), ProtocolError);
});

Deno.test("parse modes are named: rawArraysAt, entriesAt and flatEntriesAt take a whole depth from 0 to 999, and the modes differ", () => {
  for (const bad of [-1, 1.5, 1000, Number.NaN]) {
    assert.throws(() => rawArraysAt(bad), RangeError, String(bad));
    assert.throws(() => entriesAt(bad), RangeError, String(bad));
    assert.throws(() => flatEntriesAt(bad), RangeError, String(bad));
  }
  const modes = [
    PARSE_VALUES,
    PARSE_SKIP_BULKS,
    PARSE_BYTE_STRINGS,
    PARSE_TEXT,
    rawArraysAt(0),
    rawArraysAt(3),
    entriesAt(0),
    entriesAt(3),
    entriesAt(999),
    flatEntriesAt(0),
    flatEntriesAt(3),
    flatEntriesAt(999),
  ];
  assert.equal(new Set(modes).size, modes.length);
});

// --- Flat lists of stream entries (flatEntriesAt) -----------------------------

/**
 * A fenced read's reply as the FENCED_READ script returns it with its
 * entries flat: `[[[key, [id, n, f, v, ..., id, n, ...]], ...], before]`;
 * with `nested`, the same entries as XREADGROUP nests them.
 */
function fencedReply(streams: [key: string, entries: Entry[]][], nested: boolean): Gen {
  const flat = (entries: Entry[]) =>
    array(
      ...entries.flatMap(([id, fields]) => [
        bulk(id),
        int(fields === null ? -1 : fields.length),
        ...(fields ?? []).map((f) => bulk(f)),
      ]),
    );
  const read = nested
    ? xreadgroup(streams)
    : array(...streams.map(([key, entries]) => array(bulk(key), flat(entries))));
  return array(read, array(...streams.map((_, i) => i % 2 ? nilBulk : bulk(`${i}-0`))));
}

/** Feeds `bytes` in chunks of `chunk()` bytes; the replies, each parsed in the next of `modes`. */
function feedModes(bytes: Uint8Array, chunk: () => number, modes: ParseMode[]): Plain[] {
  let asked = 0;
  const replies: RespValue[] = [];
  const parser = new RespParser();
  let offset = 0;
  while (offset < bytes.length) {
    const room = parser.writable();
    const n = Math.min(room.length, Math.max(1, chunk()), bytes.length - offset);
    room.set(bytes.subarray(offset, offset + n));
    offset += n;
    parser.commit(n);
    parser.parse(() => modes[asked++], (value) => replies.push(value));
  }
  assert.equal(asked, modes.length, "a mode asked once per reply");
  return replies.map(plain);
}

function randomEntries(random: () => number, n: number, big: number): Entry[] {
  return Array.from({ length: n }, (_, e) => {
    const r = random();
    if (r < 0.08) return [`${e}-1`, null];
    if (r < 0.12) return [`${e}-1`, []];
    const nFields = 2 * (1 + Math.floor(random() * 5));
    return [
      `${e}-1`,
      Array.from({ length: nFields }, () => {
        const size = random() < 0.97 ? Math.floor(random() * 40) : Math.floor(random() * big);
        return randomBytes(random, size);
      }),
    ];
  });
}

Deno.test("flat entries at depth 3 give the same RawEntry values as the same entries nested at depth 4, split at random points", () => {
  const random = prng(2026_12_05);
  for (let iteration = 0; iteration < 200; iteration++) {
    const streams: [string, Entry[]][] = Array.from(
      { length: 1 + Math.floor(random() * 3) },
      (_, s) => [`stream:${s}`, randomEntries(random, Math.floor(random() * 15), 9000)],
    );
    const around = array(bulk("x"), int(7), array(bulk("y")));
    const flat = encode(around, fencedReply(streams, false), around);
    const nested = encode(around, fencedReply(streams, true), around);
    const max = [1, 5, 100, 3000, 70_000][iteration % 5];
    const chunk = () => 1 + Math.floor(random() * max);
    const want = feedModes(nested, chunk, [PARSE_VALUES, entriesAt(4), PARSE_VALUES]);
    const got = feedModes(flat, chunk, [PARSE_VALUES, flatEntriesAt(3), PARSE_VALUES]);
    assert.deepEqual(got, want, `iteration ${iteration} (chunks up to ${max} bytes)`);
    // And what the test's model says: IDs, the field bytes, -1 for a deleted entry.
    const entries = (got[1] as Plain[][][])[0].map((s) => s[1] as Plain[]);
    streams.forEach(([, list], s) =>
      assert.deepEqual(
        entries[s],
        list.map(([id, fields]) => ({
          entry: id,
          raw: fields === null ? "" : BYTES.decode(encode(...fields.map((f) => bulk(f)))),
          count: fields === null ? -1 : fields.length,
          items: (fields ?? []).map((f) => BYTES.decode(f)),
        })),
      )
    );
  }
});

Deno.test("flat entries split at every single point, and across buffer growth, stay exact", () => {
  const random = prng(18);
  const small = encode(fencedReply([["k", randomEntries(random, 6, 40)], ["l", []]], false));
  const want = feedModes(small, () => small.length, [flatEntriesAt(3)]);
  for (let cut = 1; cut < small.length; cut++) {
    let first = true;
    const got = feedModes(small, () => {
      const n = first ? cut : small.length;
      first = false;
      return n;
    }, [flatEntriesAt(3)]);
    assert.deepEqual(got, want, `split at ${cut}`);
  }
  // Entries of up to 200 KB in tiny reads: IDs and fields carried into new buffers whole.
  const streams: [string, Entry[]][] = [["big", randomEntries(random, 60, 200_000)]];
  const flat = encode(fencedReply(streams, false));
  const nested = encode(fencedReply(streams, true));
  const chunks = [1, 2, 3, 13, 200, 4096, 65536];
  const chunk = () => chunks[Math.floor(random() * chunks.length)];
  assert.deepEqual(
    feedModes(flat, chunk, [flatEntriesAt(3)]),
    feedModes(nested, chunk, [entriesAt(4)]),
  );
});

Deno.test("flat entries: an empty list is [], nil is null, and other depths are left alone", () => {
  const reply = "*2\r\n*2\r\n*2\r\n$1\r\na\r\n*0\r\n*2\r\n$1\r\nb\r\n*-1\r\n*1\r\n:3\r\n";
  const got = feedModes(latin1(reply), () => 1, [flatEntriesAt(3)]);
  assert.deepEqual(got, [[[[{ bulk: "a" }, []], [{ bulk: "b" }, null]], [3]]]);
  assert.deepEqual(
    feedModes(latin1("*-1\r\n-ERR x\r\n"), () => 3, [flatEntriesAt(3), flatEntriesAt(3)]),
    [
      null,
      { error: "ERR x", code: "ERR" },
    ],
  );
});

Deno.test("a flat list of entries that is not [id, count, fields...] throws ProtocolError", () => {
  const at3 = (list: string) => `*1\r\n*1\r\n*2\r\n$1\r\nk\r\n${list}`;
  const cases = [
    "*1\r\n$3\r\n1-0\r\n", // an ID without its count
    "*2\r\n:2\r\n$3\r\n1-0\r\n", // a count where the ID goes
    "*2\r\n$3\r\n1-0\r\n$1\r\n2\r\n", // a bulk where the count goes
    "*4\r\n$3\r\n1-0\r\n:3\r\n$1\r\nf\r\n$1\r\nv\r\n", // more fields than the list holds
    "*2\r\n$3\r\n1-0\r\n:-2\r\n", // a count below -1
    "*4\r\n$3\r\n1-0\r\n:2\r\n$1\r\nf\r\n:1\r\n", // a field that is not a bulk string
    "*4\r\n$3\r\n1-0\r\n:2\r\n$1\r\nf\r\n$-1\r\n", // a nil field
    "*2\r\n$-1\r\n:0\r\n", // a nil ID
    "*1\r\n*2\r\n$3\r\n1-0\r\n*0\r\n", // an entry nested in it
    "*2\r\n+OK\r\n:0\r\n", // a status where the ID goes
  ];
  for (const list of cases) {
    for (const chunk of [1, 1000]) {
      assert.throws(
        () => feedModes(latin1(at3(list)), () => chunk, [flatEntriesAt(3)]),
        ProtocolError,
        JSON.stringify(list),
      );
    }
  }
});

Deno.test("PARSE_BYTE_STRINGS gives every bulk string as one character per byte, any bytes and lengths, however the reply is split", () => {
  const random = prng(7);
  // A SCAN reply: a cursor, then keys of 0 to 300 bytes holding every byte value.
  const keys = Array.from({ length: 300 }, (_, n) => {
    const key = randomBytes(random, n);
    if (n > 0) key[0] = n % 256;
    return key;
  });
  const bytes = encode(array(bulk("17"), array(...keys.map((k) => bulk(k)))));
  for (const chunk of [() => bytes.length, () => 1, () => 1 + Math.floor(random() * 100)]) {
    const replies: RespValue[] = [];
    const parser = new RespParser();
    let offset = 0;
    while (offset < bytes.length) {
      const room = parser.writable();
      const n = Math.min(room.length, Math.max(1, chunk()), bytes.length - offset);
      room.set(bytes.subarray(offset, offset + n));
      offset += n;
      parser.commit(n);
      parser.parse(() => PARSE_BYTE_STRINGS, (value) => replies.push(value));
    }
    assert.equal(replies.length, 1);
    const [cursor, got] = replies[0] as [string, string[]];
    assert.equal(cursor, "17");
    assert.equal(got.length, keys.length);
    got.forEach((s, i) => {
      assert.equal(typeof s, "string");
      assert.deepEqual(latin1(s), keys[i], `key ${i} of ${keys[i].length} bytes`);
    });
  }
});

Deno.test("PARSE_TEXT gives every bulk string as TextDecoder's UTF-8 text of its bytes (ASCII, multi-byte, malformed, long), nested, however the reply is split", () => {
  const random = prng(11);
  const samples: Uint8Array[] = [
    UTF8.encode(""),
    UTF8.encode("last-delivered-id"),
    UTF8.encode("1796500642485-1"),
    UTF8.encode("größe ✓ 数据"),
    new Uint8Array([0x61, 0xff, 0x62, 0xc3]), // malformed: replaced as TextDecoder does
    new Uint8Array([0x7f, 0x80, 0x00]),
    UTF8.encode("x".repeat(64)),
    UTF8.encode("y".repeat(65)),
    UTF8.encode("é".repeat(40)),
    ...Array.from({ length: 60 }, (_, n) => randomBytes(random, n * 3)),
  ];
  const bytes = encode(array(bulk("0"), array(...samples.map((s) => array(bulk(s), int(1))))));
  const decoder = new TextDecoder();
  for (const chunk of [() => bytes.length, () => 1, () => 1 + Math.floor(random() * 100)]) {
    const replies: RespValue[] = [];
    const parser = new RespParser();
    let offset = 0;
    while (offset < bytes.length) {
      const room = parser.writable();
      const n = Math.min(room.length, Math.max(1, chunk()), bytes.length - offset);
      room.set(bytes.subarray(offset, offset + n));
      offset += n;
      parser.commit(n);
      parser.parse(() => PARSE_TEXT, (value) => replies.push(value));
    }
    assert.equal(replies.length, 1);
    const [cursor, got] = replies[0] as [string, Array<[string, number]>];
    assert.equal(cursor, "0");
    assert.equal(got.length, samples.length);
    got.forEach(([s, one], i) => {
      assert.equal(s, decoder.decode(samples[i]), `sample ${i} of ${samples[i].length} bytes`);
      assert.equal(one, 1);
    });
  }
});
