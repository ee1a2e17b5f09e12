/**
 * The one table of an instance's streams (lib/replication/run/stream_table.ts):
 * which streams run, start, drain, wait and ended, and how. Pure
 * bookkeeping: the control connection it is given is never opened.
 */
import assert from "node:assert/strict";
import { RedisConnection } from "../lib/redis/connection.ts";
import { StatsKeeper } from "../lib/replication/run/stats_keeper.ts";
import { ReplicatedStream } from "../lib/replication/stream/stream.ts";
import { EndedStream } from "../lib/replication/stream/ended_stream.ts";
import { makeStreamRef, type StreamRef } from "../lib/replication/stream/stream_ref.ts";
import { StreamTable } from "../lib/replication/run/stream_table.ts";
import { TargetOwners } from "../lib/replication/write/target_owners.ts";
import { quietLogs } from "./_replication.ts";

function table(): { table: StreamTable; leaseEnds: Array<[string, boolean]> } {
  // Never connected: these tests touch no server.
  const control = new RedisConnection({ role: "source", host: "127.0.0.1", port: 1 });
  const leaseEnds: Array<[string, boolean]> = [];
  const t = new StreamTable({
    group: "g",
    stats: new StatsKeeper({ group: "g" }),
    owners: new TargetOwners(control, { group: "g" }),
    onLeaseEnd: (stream, released) => leaseEnds.push([stream.ref.label, released]),
  });
  return { table: t, leaseEnds };
}

const ref = (key: string, db = 0): StreamRef => makeStreamRef(db, key);

/** Lets the table's reactions to `done` run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("a stream starts once: not while it is starting, running or draining, nor while another stream writes its target stream", async () => {
  await quietLogs();
  const { table: t } = table();
  const a = ref("a");
  assert.deepEqual(t.beginStart([a]), [a]);
  assert.ok(t.isStarting(a.id));
  assert.deepEqual(t.beginStart([a]), [], "started twice");
  const stream = new ReplicatedStream(a);
  t.made([stream]);
  assert.ok(t.live().has(stream));
  t.started([stream]);
  t.endStart([a]);
  assert.ok(!t.isStarting(a.id));
  assert.equal(t.running(a.id), stream);
  assert.deepEqual(t.beginStart([a]), [], "started while running");
  // Another source stream (db1:a) written to the same target stream (db0:a): refused.
  const collision = makeStreamRef(1, "a", { targetDb: 0 });
  assert.deepEqual(t.beginStart([collision]), []);
  assert.deepEqual(t.admit([collision]), []);
  stream.end("stopped");
  await settle();
  assert.equal(t.running(a.id), undefined);
  assert.deepEqual(t.beginStart([collision]), [collision], "the target stream is free again");
});

Deno.test("a stream that ends with a read of it in flight drains: it is not started again until the read is over", async () => {
  await quietLogs();
  const { table: t } = table();
  const a = ref("a");
  const stream = new ReplicatedStream(a);
  t.made([stream]);
  t.started([stream]);
  stream.readsInFlight = 1;
  stream.end("gone");
  t.endedNow(stream);
  await settle();
  assert.ok(!t.live().has(stream));
  assert.ok(t.isDraining(a.id));
  assert.deepEqual(t.admit([a]), []);
  assert.deepEqual(t.beginStart([a]), []);
  // A read of an earlier stream of the same name does not free a newer one.
  t.readsOver(new ReplicatedStream(a));
  assert.ok(t.isDraining(a.id));
  stream.readsInFlight = 0;
  t.readsOver(stream);
  assert.ok(!t.isDraining(a.id));
  assert.deepEqual(t.admit([a]), [a]);
});

Deno.test("a stream that ends with a write or acks in flight drains until they are answered, also when its reads are over first", async () => {
  await quietLogs();
  const { table: t } = table();
  const a = ref("a");
  const stream = new ReplicatedStream(a);
  t.made([stream]);
  t.started([stream]);
  let answered = () => {};
  const writes = new Promise<void>((resolve) => answered = resolve);
  stream.end("released");
  t.endedNow(stream, writes);
  await settle();
  assert.ok(t.isDraining(a.id));
  t.readsOver(stream); // no read in flight: the write still is
  assert.ok(t.isDraining(a.id));
  assert.deepEqual(t.beginStart([a]), [], "started again with its write in flight");
  answered();
  await settle();
  assert.ok(!t.isDraining(a.id));
  assert.deepEqual(t.beginStart([a]), [a]);
});

Deno.test("the count of a stream's runs lost here ends when the stream is gone: one made again under its name counts anew", async () => {
  await quietLogs();
  const { table: t } = table();
  const a = ref("a");
  const first = new ReplicatedStream(a);
  t.made([first]);
  t.started([first]);
  first.recordWrite({ ids: new Array(100), written: 100, skipped: 0, deleted: 0 });
  first.end("released"); // its lease lost
  await settle();
  const second = new ReplicatedStream(a);
  t.made([second]);
  t.started([second]);
  assert.equal(t.statuses()[0].copied, 100, "the lost run's entries counted on");
  second.end("gone"); // deleted from the source
  await settle();
  const third = new ReplicatedStream(a);
  t.made([third]);
  t.started([third]);
  third.recordWrite({ ids: new Array(5), written: 5, skipped: 0, deleted: 0 });
  assert.equal(t.statuses()[0].copied, 5);
});

Deno.test("how a stream ended decides what the table keeps: gone is remembered and hidden, released is forgotten, a lost lease's stream waits to be taken again, others stay shown", async () => {
  await quietLogs();
  const { table: t, leaseEnds } = table();
  const [gone, lost, handed, caughtUp] = [ref("gone"), ref("lost"), ref("handed"), ref("caught")];
  const streams = [gone, lost, handed, caughtUp].map((r) => new ReplicatedStream(r));
  t.made(streams);
  t.started(streams);
  assert.equal(t.runningCount, 4);
  assert.ok(t.beginHandOver(handed.id));
  streams[0].end("gone", "no such key");
  streams[1].end("released"); // its lease was lost
  streams[2].end("released"); // handed over
  streams[3].end("caught-up");
  await settle();
  t.handedOver(handed.id);
  assert.equal(t.runningCount, 0);
  assert.ok(t.wasGone(gone.id));
  assert.ok(!t.wasGone(caughtUp.id));
  assert.deepEqual(t.shownStreams().map((s) => s.ref.id), [caughtUp.id]);
  // What is kept of it: its name, status and state machine, not the stream with its buffers.
  const ended = t.endedStream(caughtUp.id);
  assert.ok(ended instanceof EndedStream);
  assert.equal(ended.ref, caughtUp);
  assert.equal(ended.status, streams[3].status);
  assert.equal(ended.life, streams[3].life);
  assert.equal(ended.life.state, "caught-up");
  assert.ok(!ended.active);
  assert.equal(t.endedStream(lost.id), undefined);
  for (const r of [gone, handed, caughtUp]) assert.ok(t.isDone(r.id), r.id);
  // Not done: taken again at a next lease tick (or left to the instance that holds it).
  assert.ok(!t.isDone(lost.id));
  assert.deepEqual(t.waiting, [lost]);
  assert.deepEqual(leaseEnds, [
    ["db0:gone", false],
    ["db0:lost", true],
    ["db0:handed", true],
    ["db0:caught", false],
  ]);
  // Started again: it runs, waits no more, and is no longer shown as ended.
  const again = new ReplicatedStream(caughtUp);
  const lostAgain = new ReplicatedStream(lost);
  t.started([again, lostAgain]);
  assert.deepEqual(t.shownStreams(), [again, lostAgain]);
  assert.deepEqual(t.waiting, []);
});

Deno.test("a start that failed before the stream ran forgets it; waiting streams are those set last, and one left to others counts as done", () => {
  const { table: t } = table();
  const a = ref("a");
  const stream = new ReplicatedStream(a);
  t.made([stream]);
  t.unmade(stream);
  assert.equal(t.live().size, 0);
  const b = ref("b");
  t.setWaiting([a, b]);
  assert.deepEqual(t.waiting, [a, b]);
  assert.ok(!t.isDone(b.id));
  t.leftToOthers(b);
  assert.ok(t.isDone(b.id));
  assert.equal(t.result(true).ok, true);
});

Deno.test("a running stream is handed over once: a second hand-over while the first lasts is refused, and one not running here cannot begin", async () => {
  await quietLogs();
  const { table: t } = table();
  const a = ref("a");
  assert.equal(t.beginHandOver(a.id), false, "not running here");
  t.beginStart([a]);
  const stream = new ReplicatedStream(a);
  t.made([stream]);
  t.started([stream]);
  t.endStart([a]);
  assert.equal(t.beginHandOver(a.id), true);
  assert.ok(t.isHandingOver(a.id));
  assert.equal(t.beginHandOver(a.id), false, "handed over twice at once");
  t.handedOver(a.id);
  assert.ok(!t.isHandingOver(a.id));
  assert.equal(t.beginHandOver(a.id), true, "may be handed over again once the first is over");
  t.handedOver(a.id);
  stream.end("stopped");
  await settle();
});
