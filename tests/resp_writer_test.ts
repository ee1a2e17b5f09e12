import assert from "node:assert/strict";
import { type RedisArg, RespWriter } from "../lib/redis/resp_writer.ts";
import { prng } from "../testing/producer.ts";

// Unit tests of the RESP2 command encoder. The expected bytes are written by
// hand (or by the small independent encoder below), never by RespWriter.

const UTF8 = new TextEncoder();

/** Bytes of a string whose characters are all below 256 (one byte each). */
function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw new Error(`not a one-byte character at ${i}`);
    out[i] = code;
  }
  return out;
}

/** Concatenation of byte parts; strings are taken as one byte per character. */
function concat(...parts: (string | Uint8Array | number[])[]): Uint8Array {
  const chunks = parts.map((part) =>
    typeof part === "string"
      ? latin1(part)
      : part instanceof Uint8Array
      ? part
      : Uint8Array.from(part)
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** The RESP2 encoding of a command, independent of RespWriter. */
function expectedCommand(args: readonly RedisArg[]): Uint8Array {
  const parts: Uint8Array[] = [latin1(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? UTF8.encode(arg) : arg;
    parts.push(latin1(`$${bytes.length}\r\n`), bytes, latin1("\r\n"));
  }
  return concat(...parts);
}

/** Equal bytes; on a difference, says where and shows the bytes around it. */
function assertBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  if (i === n && actual.length === expected.length) return;
  const show = (b: Uint8Array) => JSON.stringify(String.fromCharCode(...b.subarray(i, i + 24)));
  assert.fail(
    `${what}: differ at byte ${i} (lengths ${actual.length} vs ${expected.length}): ` +
      `got ${show(actual)}, expected ${show(expected)}`,
  );
}

function randomBytes(random: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function encodeOne(args: readonly RedisArg[]): Uint8Array {
  const writer = new RespWriter();
  writer.command(args);
  return writer.take();
}

Deno.test("command() encodes ASCII string arguments as a RESP array of bulk strings", () => {
  assertBytes(
    encodeOne(["SET", "key", "value"]),
    latin1("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
  );
  assertBytes(encodeOne(["PING"]), latin1("*1\r\n$4\r\nPING\r\n"));
  assertBytes(
    encodeOne(["XREADGROUP", "GROUP", "g", "c-1", "COUNT", "100", "STREAMS", "s", ">"]),
    latin1(
      "*9\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$1\r\ng\r\n$3\r\nc-1\r\n$5\r\nCOUNT\r\n" +
        "$3\r\n100\r\n$7\r\nSTREAMS\r\n$1\r\ns\r\n$1\r\n>\r\n",
    ),
  );
  const long = "x".repeat(12345);
  assertBytes(encodeOne(["GET", long]), latin1(`*2\r\n$3\r\nGET\r\n$12345\r\n${long}\r\n`));
});

Deno.test("command() with no arguments is *0, and an empty string argument is $0 with its CRLF", () => {
  assertBytes(encodeOne([]), latin1("*0\r\n"));
  assertBytes(encodeOne(["SET", "k", ""]), latin1("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"));
  assertBytes(encodeOne(["", ""]), latin1("*2\r\n$0\r\n\r\n$0\r\n\r\n"));
});

Deno.test("command() encodes non-ASCII strings as UTF-8, with the byte length in the header", () => {
  // "clé": c l C3 A9 (4 bytes); "€": E2 82 AC; "😀": F0 9F 98 80 (a surrogate pair in JS).
  assertBytes(
    encodeOne(["SET", "clé", "€😀"]),
    concat(
      "*3\r\n$3\r\nSET\r\n",
      "$4\r\n",
      [0x63, 0x6c, 0xc3, 0xa9],
      "\r\n$7\r\n",
      [0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80],
      "\r\n",
    ),
  );
  // The ASCII boundary: U+007F is one byte, U+0080 and U+00FF are two.
  assertBytes(encodeOne(["\x7f"]), concat("*1\r\n$1\r\n", [0x7f], "\r\n"));
  assertBytes(encodeOne(["\x80"]), concat("*1\r\n$2\r\n", [0xc2, 0x80], "\r\n"));
  assertBytes(encodeOne(["a\xffb"]), concat("*1\r\n$4\r\n", [0x61, 0xc3, 0xbf, 0x62], "\r\n"));
  // Mixed in one command: ASCII, then non-ASCII, then ASCII again.
  assertBytes(
    encodeOne(["a", "日本", "b"]),
    concat(
      "*3\r\n$1\r\na\r\n$6\r\n",
      [0xe6, 0x97, 0xa5, 0xe6, 0x9c, 0xac],
      "\r\n$1\r\nb\r\n",
    ),
  );
  const big = "é".repeat(20_000); // 40 000 bytes: past the initial buffer
  assertBytes(encodeOne([big]), expectedCommand([big]));
});

Deno.test("command() keeps CR, LF and NUL inside string arguments: lengths, not delimiters", () => {
  assertBytes(encodeOne(["a\r\nb\0"]), concat("*1\r\n$5\r\n", [0x61, 13, 10, 0x62, 0], "\r\n"));
  assertBytes(encodeOne(["\r\n"]), latin1("*1\r\n$2\r\n\r\n\r\n"));
  assertBytes(encodeOne(["$3\r\n*1"]), latin1("*1\r\n$6\r\n$3\r\n*1\r\n"));
});

Deno.test("command() copies Uint8Array arguments byte for byte: empty, binary with CR/LF/NUL, a view", () => {
  assertBytes(encodeOne([new Uint8Array(0)]), latin1("*1\r\n$0\r\n\r\n"));
  const binary = Uint8Array.from([0, 13, 10, 255, 0x24, 0x2a, 13, 13, 10, 10, 0, 0x80]);
  assertBytes(
    encodeOne(["SET", "k", binary]),
    concat("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\n", binary, "\r\n"),
  );
  // A view into a larger buffer: only the view's bytes, not its whole buffer.
  const backing = latin1("0123456789");
  assertBytes(encodeOne([backing.subarray(3, 6)]), latin1("*1\r\n$3\r\n345\r\n"));
  assertBytes(encodeOne([backing.subarray(5, 5)]), latin1("*1\r\n$0\r\n\r\n"));
  // Strings and bytes mixed.
  assertBytes(
    encodeOne(["HSET", Uint8Array.from([0xff, 0xfe]), "é"]),
    concat("*3\r\n$4\r\nHSET\r\n$2\r\n", [0xff, 0xfe], "\r\n$2\r\n", [0xc3, 0xa9], "\r\n"),
  );
  // Every byte value once.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assertBytes(encodeOne([all]), concat("*1\r\n$256\r\n", all, "\r\n"));
});

Deno.test("command() with a 1 MB Uint8Array argument writes it whole after a $1048576 header", () => {
  const value = randomBytes(prng(1), 1024 * 1024);
  const out = encodeOne(["SET", "big", value]);
  const head = latin1("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n");
  assert.equal(out.length, head.length + value.length + 2);
  assertBytes(out.subarray(0, head.length), head, "header");
  assertBytes(out.subarray(head.length, head.length + value.length), value, "value");
  assertBytes(out.subarray(out.length - 2), latin1("\r\n"), "trailer");
  // The argument itself is not modified.
  assertBytes(value, randomBytes(prng(1), 1024 * 1024), "argument");
});

Deno.test("bulkInteger() writes 0, negatives, 1e15 and powers of ten as decimal bulk strings", () => {
  const cases: [number, string][] = [
    [0, "$1\r\n0\r\n"],
    [7, "$1\r\n7\r\n"],
    [10, "$2\r\n10\r\n"],
    [100, "$3\r\n100\r\n"],
    [1000000, "$7\r\n1000000\r\n"],
    [1e15, "$16\r\n1000000000000000\r\n"],
    [-1, "$2\r\n-1\r\n"],
    [-9, "$2\r\n-9\r\n"],
    [-10, "$3\r\n-10\r\n"],
    [-123, "$4\r\n-123\r\n"],
    [-1000000, "$8\r\n-1000000\r\n"],
    [9007199254740991, "$16\r\n9007199254740991\r\n"],
  ];
  for (const [n, resp] of cases) {
    const writer = new RespWriter();
    writer.bulkInteger(n);
    assertBytes(writer.take(), latin1(resp), String(n));
  }
});

Deno.test("bulkInteger() is exact at every power of ten and its neighbours, positive and negative", () => {
  const numbers: number[] = [];
  for (let k = 0, p = 1; k <= 15; k++, p *= 10) numbers.push(p - 1, p, p + 1);
  for (const n of [...numbers]) if (n !== 0) numbers.push(-n);
  numbers.push(1e15 - 1, 1e15 + 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1));
  const writer = new RespWriter();
  for (const n of numbers) {
    writer.bulkInteger(n);
    const text = String(n);
    assertBytes(writer.take(), latin1(`$${text.length}\r\n${text}\r\n`), text);
  }
});

Deno.test("bulkInteger() inside a command gives the same bytes as the number as a string", () => {
  const writer = new RespWriter();
  writer.arrayHeader(4);
  writer.bulk("XAUTOCLAIM");
  writer.bulkInteger(60000);
  writer.bulkInteger(-5);
  writer.bulkInteger(0);
  assertBytes(writer.take(), expectedCommand(["XAUTOCLAIM", "60000", "-5", "0"]));
});

Deno.test("raw() copies RESP bytes unchanged, e.g. an entry's fields after an XADD header", () => {
  const fields = latin1("$5\r\nfield\r\n$5\r\nvalue\r\n$0\r\n\r\n$2\r\n\r\n\r\n");
  const writer = new RespWriter();
  writer.arrayHeader(3 + 4);
  writer.bulk("XADD");
  writer.bulk("target");
  writer.bulk("1-1");
  writer.raw(fields);
  const out = writer.take();
  assertBytes(
    out,
    latin1(
      "*7\r\n$4\r\nXADD\r\n$6\r\ntarget\r\n$3\r\n1-1\r\n" +
        "$5\r\nfield\r\n$5\r\nvalue\r\n$0\r\n\r\n$2\r\n\r\n\r\n",
    ),
  );
  assertBytes(out, expectedCommand(["XADD", "target", "1-1", "field", "value", "", "\r\n"]));
  // Empty raw bytes write nothing; raw bytes are not validated or reframed.
  writer.raw(new Uint8Array(0));
  assert.equal(writer.length, 0);
  writer.raw(Uint8Array.from([0, 1, 2, 255]));
  assertBytes(writer.take(), Uint8Array.from([0, 1, 2, 255]));
  // Big raw bytes (past the initial buffer) after some already encoded.
  const big = randomBytes(prng(2), 200_000);
  writer.command(["PING"]);
  writer.raw(big);
  assertBytes(writer.take(), concat("*1\r\n$4\r\nPING\r\n", big));
});

Deno.test("arrayHeader() writes *n for 0, 1 and multi-digit counts", () => {
  const writer = new RespWriter();
  for (const n of [0, 1, 9, 10, 99, 100, 12345, 1000000]) {
    writer.arrayHeader(n);
    assertBytes(writer.take(), latin1(`*${n}\r\n`), String(n));
  }
  writer.arrayHeader(2);
  writer.bulk("GET");
  writer.bulk(Uint8Array.from([0x6b]));
  assertBytes(writer.take(), latin1("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
});

Deno.test("length counts the bytes encoded and not taken; take() hands them out and empties the writer", () => {
  const writer = new RespWriter();
  assert.equal(writer.length, 0);
  writer.command(["PING"]);
  assert.equal(writer.length, 14);
  writer.command(["GET", "k"]);
  assert.equal(writer.length, 14 + 20);
  const out = writer.take();
  assert.equal(out.length, 34);
  assert.equal(writer.length, 0);
  assertBytes(out, latin1("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
  assert.equal(writer.take().length, 0, "take() on an empty writer gives an empty view");
  assert.equal(writer.take().length, 0);
});

Deno.test("a pipeline of 1000 commands leaves in one take() as their concatenation, in order", () => {
  const writer = new RespWriter();
  const expected: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    const args: RedisArg[] = ["XADD", `stream:${i}`, `${i}-0`, "f", i % 3 === 0 ? "é" : `v${i}`];
    writer.command(args);
    expected.push(expectedCommand(args));
  }
  assertBytes(writer.take(), concat(...expected));
});

Deno.test("a view from take() is left intact while the next batch is encoded, up to the next take()", () => {
  const writer = new RespWriter();
  writer.command(["SET", "a", "1"]);
  const first = writer.take();
  const firstCopy = first.slice();
  writer.command(["SET", "b", "2"]);
  writer.command(["GET", "c".repeat(5000)]);
  assertBytes(first, firstCopy, "first view while the second batch is encoded");
  const second = writer.take();
  assertBytes(first, firstCopy, "first view right after the second take()");
  assertBytes(
    second,
    concat(expectedCommand(["SET", "b", "2"]), expectedCommand(["GET", "c".repeat(5000)])),
  );
  // The two views do not share bytes.
  assert.ok(first.buffer !== second.buffer || first.byteOffset + first.length <= second.byteOffset);
});

Deno.test("the buffer grows past the initial 16 KiB: a 100 KiB pipeline is encoded whole and in order", () => {
  const writer = new RespWriter();
  const random = prng(3);
  const expected: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; size < 100 * 1024; i++) {
    const args: RedisArg[] = ["XADD", "s", "*", "n", String(i), "v", randomBytes(random, 700 + i)];
    writer.command(args);
    const one = expectedCommand(args);
    expected.push(one);
    size += one.length;
    assert.equal(writer.length, size);
  }
  assertBytes(writer.take(), concat(...expected));
  // And again after the take: the next batch is right too.
  writer.command(["PING"]);
  assertBytes(writer.take(), latin1("*1\r\n$4\r\nPING\r\n"));
});

Deno.test("a writer made with a tiny initial size grows at every step and still encodes exactly", () => {
  for (const initial of [1, 2, 7, 24, 25, 100]) {
    const writer = new RespWriter(initial);
    const args: RedisArg[] = ["SET", "κλειδί", Uint8Array.from([13, 10, 0]), "x".repeat(300)];
    writer.command(args);
    writer.bulkInteger(-1234567890);
    writer.arrayHeader(1000);
    writer.raw(latin1("$1\r\nz\r\n"));
    assertBytes(
      writer.take(),
      concat(expectedCommand(args), "$11\r\n-1234567890\r\n*1000\r\n$1\r\nz\r\n"),
      `initial size ${initial}`,
    );
  }
});

Deno.test("arguments ending at or around the end of the buffer keep their CRLF", () => {
  // Every argument length that puts the end of a bulk string near the end of
  // the buffer, for small buffers and for the default 16 KiB one.
  const cases: [initial: number | undefined, from: number, to: number][] = [
    [16, 0, 60],
    [64, 0, 120],
    [undefined, 16_340, 16_400],
  ];
  for (const [initial, from, to] of cases) {
    for (let n = from; n <= to; n++) {
      const bytes = new Uint8Array(n).fill(0x62);
      const text = "t".repeat(n);
      const utf8 = "é".repeat(n >> 1);
      for (const args of [[bytes], ["SET", bytes, "x"], [text], [utf8], [bytes, bytes]]) {
        const writer = initial === undefined ? new RespWriter() : new RespWriter(initial);
        writer.command(args);
        writer.bulkInteger(n);
        assertBytes(
          writer.take(),
          concat(expectedCommand(args), `$${String(n).length}\r\n${n}\r\n`),
          `initial ${initial ?? "default"}, length ${n}`,
        );
      }
    }
  }
});

Deno.test("after a take() of more than 1 MiB the writer goes on encoding exactly", () => {
  const writer = new RespWriter();
  const big = randomBytes(prng(4), 1_500_000);
  writer.command(["SET", "big", big]);
  const first = writer.take();
  assertBytes(first, expectedCommand(["SET", "big", big]));
  for (let round = 0; round < 4; round++) {
    const args: RedisArg[] = ["SET", `k${round}`, "v".repeat(round * 20_000)];
    writer.command(args);
    assertBytes(writer.take(), expectedCommand(args), `round ${round}`);
  }
  writer.command(["SET", "big", big]);
  writer.command(["PING"]);
  assertBytes(
    writer.take(),
    concat(expectedCommand(["SET", "big", big]), expectedCommand(["PING"])),
  );
});

Deno.test("200 take() cycles of random batches each hand out exactly their own batch", () => {
  const writer = new RespWriter();
  const random = prng(5);
  let previous: Uint8Array | undefined;
  let previousCopy: Uint8Array | undefined;
  for (let cycle = 0; cycle < 200; cycle++) {
    const expected: Uint8Array[] = [];
    const commands = 1 + Math.floor(random() * 20);
    for (let c = 0; c < commands; c++) {
      const args: RedisArg[] = [];
      const n = 1 + Math.floor(random() * 6);
      for (let a = 0; a < n; a++) {
        const kind = random();
        const len = random() < 0.01 ? Math.floor(random() * 100_000) : Math.floor(random() * 40);
        if (kind < 0.4) args.push("a".repeat(len));
        else if (kind < 0.6) args.push("ü€".repeat(len >> 2));
        else args.push(randomBytes(random, len));
      }
      writer.command(args);
      expected.push(expectedCommand(args));
    }
    const want = concat(...expected);
    assert.equal(writer.length, want.length);
    if (previous !== undefined) {
      assertBytes(previous, previousCopy!, `cycle ${cycle - 1} before take`);
    }
    const out = writer.take();
    assertBytes(out, want, `cycle ${cycle}`);
    if (previous !== undefined) {
      assertBytes(previous, previousCopy!, `cycle ${cycle - 1} after take`);
    }
    previous = out;
    previousCopy = out.slice();
  }
});

Deno.test("reset(length) drops what was encoded after length; reset() drops everything not taken", () => {
  const writer = new RespWriter();
  writer.command(["SET", "a", "1"]);
  const mark = writer.length;
  writer.command(["SET", "b", "2"]);
  writer.command(["SET", "c", "x".repeat(50_000)]); // grows the buffer after the mark
  writer.reset(mark);
  assert.equal(writer.length, mark);
  writer.command(["GET", "d"]);
  assertBytes(
    writer.take(),
    concat(expectedCommand(["SET", "a", "1"]), expectedCommand(["GET", "d"])),
  );

  writer.command(["SET", "e", "5"]);
  writer.reset();
  assert.equal(writer.length, 0);
  assert.equal(writer.take().length, 0);

  writer.command(["PING"]);
  writer.reset(1_000_000); // beyond what was encoded: nothing changes
  assert.equal(writer.length, 14);
  assertBytes(writer.take(), latin1("*1\r\n$4\r\nPING\r\n"));
});

Deno.test("reset() after a take() only drops what was encoded since, not the view handed out", () => {
  const writer = new RespWriter();
  writer.command(["SET", "a", "1"]);
  const taken = writer.take();
  const copy = taken.slice();
  writer.command(["SET", "b", "2"]);
  writer.reset();
  assertBytes(taken, copy);
  writer.command(["GET", "z"]);
  assertBytes(writer.take(), expectedCommand(["GET", "z"]));
  assertBytes(taken, copy);
});

Deno.test("a writer lets go of a buffer grown for a big pipeline once it is taken, and the bytes it handed out stay right until the next take", () => {
  const w = new RespWriter();
  const small = w.keptBytes;
  const big = new Uint8Array(2 * 1024 * 1024).fill(7);
  w.command(["SET", "k", big]);
  const out = w.take();
  assert.equal(out.length > big.length, true);
  assert.ok(w.keptBytes <= 2 * small, `kept ${w.keptBytes} bytes after the big take`);
  w.command(["PING"]);
  assert.equal(out[out.length - 3], 7, "the big view still holds its bytes");
  assert.deepEqual(w.take(), latin1("*1\r\n$4\r\nPING\r\n"));
  for (let i = 0; i < 4; i++) {
    w.command(["SET", "k", new Uint8Array(40 * 1024)]);
    w.take();
  }
  assert.ok(w.keptBytes <= 128 * 1024, `kept ${w.keptBytes} bytes after pipelines of 40 kB`);
});
