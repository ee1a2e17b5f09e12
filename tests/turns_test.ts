/**
 * A read that may take only some streams takes the next ones in turn
 * (`lib/replication/read/_turns.ts`): with 100,000 quiet streams and room
 * for a few hundred per read, a rotation that moved on by one stream per
 * read left most streams unread for minutes.
 */
import assert from "node:assert/strict";
import { Turns } from "../lib/replication/read/_turns.ts";

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
