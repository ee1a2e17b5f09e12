/**
 * A stream's buffer of entries read and not written yet
 * (lib/replication/stream/stream.ts): ID order kept through takes, a failed
 * write's batch put back in front, the memory it counts, and the highest ID
 * taken in, which the engine keeps the buffer strictly increasing by. Pure:
 * entries are parsed from RESP bytes as a read would bring them.
 */
import assert from "node:assert/strict";
import { entriesAt } from "../lib/redis/parse_mode.ts";
import { type RawEntry, RespParser } from "../lib/redis/resp_parser.ts";
import { parseRawEntries } from "../lib/redis/stream_commands.ts";
import { ReplicatedStream } from "../lib/replication/stream/stream.ts";
import { makeStreamRef } from "../lib/replication/stream/stream_ref.ts";

/** Entries with these IDs (one field each, `v` repeated `size` times), as an XRANGE reply brings them. */
function entries(ids: string[], size = 10): RawEntry[] {
  const enc = new TextEncoder();
  const bulk = (s: string) => `$${enc.encode(s).length}\r\n${s}\r\n`;
  const text = `*${ids.length}\r\n` +
    ids.map((id) => `*2\r\n${bulk(id)}*2\r\n${bulk("f")}${bulk("v".repeat(size))}`).join("");
  const parser = new RespParser();
  const bytes = enc.encode(text);
  parser.writable().set(bytes);
  parser.commit(bytes.length);
  let reply: unknown;
  parser.parse(() => entriesAt(1), (value) => (reply = value));
  assert.ok(reply !== undefined, "the reply was not complete");
  return parseRawEntries(reply).entries;
}

const bytesOf = (list: RawEntry[]) => list.reduce((n, e) => n + e.size, 0);
const idsOf = (list: RawEntry[]) => list.map((e) => e.idText());

Deno.test("takes come out in ID order, bounded by entries and bytes but at least one, and the memory counted goes back to zero", () => {
  const memory = { bytes: 0 };
  const s = new ReplicatedStream(makeStreamRef(0, "s"), memory);
  const a = entries(["1-1", "1-2", "1-3"]);
  const b = entries(["2-1", "2-2"], 1000);
  s.push(a, bytesOf(a));
  s.push(b, bytesOf(b));
  assert.equal(s.buffered, 5);
  assert.equal(s.queuedTop, "2-2");
  assert.ok(memory.bytes > bytesOf(a) + bytesOf(b), "the overhead of each entry is counted");
  assert.deepEqual(idsOf(s.take(2, Number.MAX_SAFE_INTEGER)), ["1-1", "1-2"]);
  // Bytes bound: the 1,000-byte entries do not fit beside 1-3, but one entry always goes.
  assert.deepEqual(idsOf(s.take(10, bytesOf(a))), ["1-3"]);
  assert.deepEqual(idsOf(s.take(10, 1)), ["2-1"]);
  assert.deepEqual(idsOf(s.take(10, Number.MAX_SAFE_INTEGER)), ["2-2"]);
  assert.equal(s.buffered, 0);
  assert.equal(s.bufferedBytes, 0);
  assert.equal(memory.bytes, 0);
  assert.equal(s.queuedTop, "2-2", "what was taken stays below the top");
});

Deno.test("a batch that could not be written goes back in front, in order, and is counted again", () => {
  const memory = { bytes: 0 };
  const s = new ReplicatedStream(makeStreamRef(0, "s"), memory);
  const list = entries(["1-1", "1-2", "1-3", "1-4"]);
  s.push(list, bytesOf(list));
  const full = memory.bytes;
  const batch = s.take(2, Number.MAX_SAFE_INTEGER);
  s.unshift(batch);
  assert.equal(memory.bytes, full);
  assert.deepEqual(idsOf(s.take(10, Number.MAX_SAFE_INTEGER)), ["1-1", "1-2", "1-3", "1-4"]);
});

Deno.test("clearing the buffer drops what was read and not written, with the deleted IDs, and lowers the top taken in to nothing", () => {
  const memory = { bytes: 0 };
  const s = new ReplicatedStream(makeStreamRef(0, "s"), memory);
  const list = entries(["5-1", "5-2"]);
  s.push(list, bytesOf(list));
  s.addDeleted(["4-9"]);
  assert.equal(s.clearBuffer(), 3);
  assert.equal(s.buffered, 0);
  assert.deepEqual(s.deleted, []);
  assert.equal(memory.bytes, 0);
  // After a clear (recovery claims all that is pending again, from the start) any ID is taken.
  assert.equal(s.queuedTop, "0-0");
});
