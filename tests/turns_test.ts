/**
 * A read that may take only some streams takes the next ones in turn
 * (`lib/replication/read/_turns.ts`): with 100,000 quiet streams and room
 * for a few hundred per read, a rotation that moved on by one stream per
 * read left most streams unread for minutes.
 */
import assert from "node:assert/strict";
import { Turns } from "../lib/replication/read/_turns.ts";
import { Rotation } from "../lib/replication/rotation.ts";
import { planRound } from "../lib/replication/read/_read_replies.ts";
import { ReadAhead } from "../lib/replication/read/read_ahead.ts";
import { ReplicatedStream } from "../lib/replication/stream/stream.ts";
import { makeStreamRef } from "../lib/replication/stream/stream_ref.ts";

Deno.test("reads that take 3 of 10 streams take every stream once before any twice, and each kind of read keeps its own turn", () => {
  const list = Array.from({ length: 10 }, (_, i) => i);
  const turns = new Turns<number>();
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    seen.push(...turns.next("backlog", list, 3));
    turns.next("sweep", list.slice(0, 5), 2); // another kind, in between
  }
  assert.deepEqual(seen.slice(0, 10).sort((a, b) => a - b), list);
  assert.deepEqual(seen.slice(10), [0, 1]); // then round again
  assert.deepEqual(turns.next("sweep", list.slice(0, 5), 2), [3, 4]);
});

Deno.test("a read that may take as many streams as there are takes them all", () => {
  const turns = new Turns<string>();
  assert.deepEqual(turns.next("look", ["a", "b"], 2), ["a", "b"]);
  assert.deepEqual(turns.next("look", ["a", "b"], 5), ["a", "b"]);
  assert.deepEqual(turns.next("look", ["a", "b", "c"], 0), []);
});

Deno.test("a stream's first read asks for 10 entries, or a batch when STREAM_BATCH_SIZE is smaller; later reads a batch", () => {
  for (const [batchSize, first] of [[100, 10], [3, 3], [1, 1]]) {
    const streams = [0, 1, 2].map((i) => new ReplicatedStream(makeStreamRef(0, `s${i}`)));
    streams[2].probed = true;
    const { commands } = planRound(streams, {
      budget: new ReadAhead(batchSize),
      turns: new Turns(),
      turn: "look",
      most: Infinity,
      repeat: false,
      batchSize,
    });
    const firstReads = commands.filter((c) => c.count !== undefined);
    assert.deepEqual(firstReads.map((c) => c.count), [first]);
    assert.deepEqual(firstReads[0].streams, streams.slice(0, 2));
    const full = commands.filter((c) => c.count === undefined);
    assert.deepEqual(full.map((c) => c.streams), [[streams[2]]]);
  }
});

Deno.test("a rotation takes the next items that qualify, every one in its turn, while items come and go between calls", () => {
  const items = new Set(Array.from({ length: 10 }, (_, i) => i));
  const rotation = new Rotation(items);
  const even = (i: number) => i % 2 === 0;
  assert.deepEqual(rotation.take(2, even), [0, 2]);
  items.delete(4); // gone before its turn: not taken
  items.add(12); // new: taken in its turn, after those already there
  assert.deepEqual(rotation.take(2, even), [6, 8]);
  assert.deepEqual(rotation.take(2, even), [12, 0]); // round again
  // Never an item twice in one call, also when fewer qualify than asked for.
  assert.deepEqual(rotation.take(100, even), [2, 6, 8, 12, 0]);
  assert.deepEqual(rotation.take(3, () => false), []);
  assert.deepEqual(new Rotation(new Set<number>()).take(5, () => true), []);
});

Deno.test("a rotation's items put back (their pass was not sent) are taken alone by the next call, if still there and qualifying; then it goes on where it stopped", () => {
  const items = new Set(Array.from({ length: 6 }, (_, i) => i));
  const rotation = new Rotation(items);
  const all = () => true;
  const taken = rotation.take(3, all);
  assert.deepEqual(taken, [0, 1, 2]);
  rotation.putBack(taken);
  items.delete(1);
  assert.deepEqual(rotation.take(4, (i) => i !== 2), [0]);
  assert.deepEqual(rotation.take(2, all), [3, 4]);
  rotation.putBack([3, 4]);
  items.delete(3);
  items.delete(4);
  // None of them is left: the call goes on where the last one stopped, each item once.
  assert.deepEqual(rotation.take(10, all), [5, 0, 2]);
});
