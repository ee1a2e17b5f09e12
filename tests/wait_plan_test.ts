import assert from "node:assert/strict";
import { MAX_WAIT_MS, planWait, WAIT_MS_PER_STREAM } from "../lib/replication/read/_wait_plan.ts";
import type { ReplicatedStream } from "../lib/replication/stream/stream.ts";

/** Streams of `db` as the plan sees them (it reads only their DB). */
function streamsOf(db: number, n: number): ReplicatedStream[] {
  return Array.from({ length: n }, () => ({ ref: { db } }) as unknown as ReplicatedStream);
}

Deno.test("a wait over one DB blocks 5 ms a stream when it can be unblocked, between the poll interval and 30 s", () => {
  const plan = (n: number, canUnblock: boolean) =>
    planWait(streamsOf(0, n), { turn: 0, blockMs: 1000, canUnblock }).blockMs;
  assert.equal(plan(10, true), 1000);
  assert.equal(plan(1000, true), 1000 * WAIT_MS_PER_STREAM);
  assert.equal(plan(100_000, true), MAX_WAIT_MS);
  assert.equal(plan(100_000, false), 1000);
});

Deno.test("the DBs of a reader's streams take turns, each wait blocking the poll interval shared out (50 ms at least)", () => {
  const wanting = [...streamsOf(3, 2), ...streamsOf(0, 5), ...streamsOf(7, 1)];
  const seen = [0, 1, 2, 3].map((turn) =>
    planWait(wanting, { turn, blockMs: 900, canUnblock: true })
  );
  assert.deepEqual(seen.map((p) => p.db), [3, 0, 7, 3]);
  assert.deepEqual(seen.map((p) => p.streams.length), [2, 5, 1, 2]);
  assert.ok(seen.every((p) => p.blockMs === 300));
  assert.equal(planWait(wanting, { turn: 0, blockMs: 60, canUnblock: true }).blockMs, 50);
});
