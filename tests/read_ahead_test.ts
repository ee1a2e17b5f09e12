/**
 * The read-ahead budget (lib/replication/read/read_ahead.ts): the share of
 * the memory a read may take follows the size of the entries read so far,
 * without one outlier holding every stream back. Pure: entries are parsed
 * from RESP bytes as a read would bring them.
 */
import assert from "node:assert/strict";
import { entriesAt } from "../lib/redis/parse_mode.ts";
import { type RawEntry, RespParser } from "../lib/redis/resp_parser.ts";
import { parseRawEntries } from "../lib/redis/stream_commands.ts";
import { ReadAhead } from "../lib/replication/read/read_ahead.ts";
import { ReplicatedStream } from "../lib/replication/stream/stream.ts";
import { makeStreamRef } from "../lib/replication/stream/stream_ref.ts";

/** One entry with this ID (one field of `size` bytes), as a read brings it. */
function entry(id: string, size: number): RawEntry {
  const enc = new TextEncoder();
  const head = enc.encode(`*1\r\n*2\r\n$${id.length}\r\n${id}\r\n*2\r\n$1\r\nf\r\n$${size}\r\n`);
  const bytes = new Uint8Array(head.length + size + 2);
  bytes.set(head);
  bytes.fill(118, head.length, head.length + size);
  bytes.set([13, 10], head.length + size);
  const parser = new RespParser();
  let reply: unknown;
  for (let at = 0; at < bytes.length;) {
    const room = parser.writable();
    const n = Math.min(room.length, bytes.length - at);
    room.set(bytes.subarray(at, at + n));
    parser.commit(n);
    at += n;
    parser.parse(() => entriesAt(1), (value) => (reply = value));
  }
  assert.ok(reply !== undefined, "the reply was not complete");
  return parseRawEntries(reply).entries[0];
}

/** Reads `sizes` into `stream` one entry at a time, each written (taken out) before the next. */
function readAndWrite(budget: ReadAhead, stream: ReplicatedStream, sizes: number[]): void {
  let ms = 1;
  for (const size of sizes) {
    const e = entry(`${ms++}-0`, size);
    budget.push(stream, [e], e.size);
    stream.take(10, Number.MAX_SAFE_INTEGER);
  }
}

Deno.test("one 20 MB entry among small ones does not make the next reads take one stream each: a read of 1,000 streams still gets many", () => {
  const budget = new ReadAhead(100);
  const stream = new ReplicatedStream(makeStreamRef(0, "s"), budget.memory);
  readAndWrite(budget, stream, [...Array(50).fill(300), 20 * 1024 * 1024, 300]);
  assert.equal(budget.memory.bytes, 0);
  const share = budget.take(1000, 1);
  assert.ok(share.streams >= 50, `${share.streams} streams in one read`);
});

Deno.test("entries that are all large are learned as large: a read of 1,000 streams of 1 MB entries takes one stream, the memory bound holds", () => {
  const budget = new ReadAhead(100);
  const stream = new ReplicatedStream(makeStreamRef(0, "s"), budget.memory);
  readAndWrite(budget, stream, Array(100).fill(1024 * 1024));
  assert.equal(budget.take(1000, 1).streams, 1);
});
