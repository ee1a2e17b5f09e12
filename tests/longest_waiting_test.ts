/**
 * Group maintenance's choice of the streams due longest ago
 * (`lib/replication/group/_longest_waiting.ts`, pure): kept while the
 * streams are walked, without a list of all those due.
 */
import assert from "node:assert/strict";
import { LongestWaiting } from "../lib/replication/group/_longest_waiting.ts";
import type { ReplicatedStream } from "../lib/replication/stream/stream.ts";

Deno.test("LongestWaiting keeps the n streams due longest ago, in order, whatever the order they are offered in", () => {
  const dues = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000); // a permutation
  const streams = dues.map((d) => ({ maintenanceDue: d }) as unknown as ReplicatedStream);
  const kept = new LongestWaiting(5);
  for (const s of streams) kept.offer(s);
  assert.deepEqual(kept.streams.map((s) => s.maintenanceDue), [0, 1, 2, 3, 4]);
  const all = new LongestWaiting(2000);
  for (const s of streams) all.offer(s);
  assert.equal(all.streams.length, 1000, "fewer than n: every one");
  assert.deepEqual(all.streams.map((s) => s.maintenanceDue), [...dues].sort((a, b) => a - b));
  const none = new LongestWaiting(3);
  assert.deepEqual(none.streams, []);
});
