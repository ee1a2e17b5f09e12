/**
 * What a reader's loop does next (`_next_pass.ts`): pure choices over fake
 * streams (only the fields the choice reads), no server.
 */
import assert from "node:assert/strict";
import {
  LOOK_STREAMS,
  NextPass,
  type NextPassContext,
} from "../lib/replication/read/_next_pass.ts";
import type { ReplicatedStream } from "../lib/replication/stream/stream.ts";

interface Fake {
  hot: boolean;
  history: string | undefined;
  readsInFlight: number;
  name: string;
}

function fakes(n: number, prefix = "s"): ReplicatedStream[] {
  return Array.from(
    { length: n },
    (_, i) => ({ hot: false, history: undefined, readsInFlight: 0, name: `${prefix}${i}` }) as Fake,
  ) as unknown as ReplicatedStream[];
}

/** A NextPass over `streams`, recording what its passes would send. */
function setup(streams: ReplicatedStream[], extra: Partial<NextPassContext> = {}) {
  const sent: Array<{ kind: string; streams: ReplicatedStream[]; repeat?: boolean }> = [];
  const woken = new Set<ReplicatedStream>();
  const notified = new Set<ReplicatedStream>();
  const context: NextPassContext = {
    streams: new Set(streams),
    notified,
    woken,
    once: false,
    wants: () => true,
    lookSize: () => LOOK_STREAMS,
    readNow: (s, repeat) => (sent.push({ kind: "read", streams: s, repeat }), Promise.resolve()),
    lookAtOthers: (s) => (sent.push({ kind: "look", streams: s }), Promise.resolve()),
    quiet: (s) => (sent.push({ kind: "wait", streams: s() }), Promise.resolve()),
    ...extra,
  };
  return { next: new NextPass(context), sent, woken, notified };
}

Deno.test("with no backlog the next pass is a wait over every stream; while a pass is in flight, nothing instead (the wait comes after it)", async () => {
  const streams = fakes(5);
  const { next, sent } = setup(streams);
  assert.equal(next.next(true), undefined);
  const pass = next.next(false)!;
  assert.equal(pass.blocking, true);
  await pass.send();
  assert.deepEqual(sent.map((p) => [p.kind, p.streams.length]), [["wait", 5]]);
});

Deno.test("while a pass is in flight, streams with a backlog are still read at once", async () => {
  const streams = fakes(5);
  (streams[2] as unknown as Fake).hot = true;
  const { next, sent } = setup(streams);
  for (let i = 0; i < 2; i++) {
    const pass = next.next(true)!;
    assert.equal(pass.blocking, false);
    await pass.send();
  }
  // A look at the others first (due at once), then the read of the backlog; no wait.
  assert.deepEqual(sent.map((p) => [p.kind, p.streams.length]), [["look", 4], ["read", 1]]);
  assert.deepEqual(sent[1].streams, [streams[2]]);
});

Deno.test("a stream a wait saw an entry of is read once; one whose last read came back full is read several times over in one round trip", async () => {
  const streams = fakes(4);
  for (const s of streams) (s as unknown as Fake).hot = true;
  const { next, sent, woken } = setup(streams);
  for (const s of streams) woken.add(s);
  await next.next()!.send();
  assert.equal(sent.at(-1)!.repeat, false);
  woken.delete(streams[3]); // its read came back full: more is there
  await next.next()!.send();
  assert.equal(sent.at(-1)!.repeat, true);
});

Deno.test("a stream a wait saw an entry of is read once, without a look at the others (the wait after it covers them), and not again while its read is out; one whose read came back full brings the look", async () => {
  const streams = fakes(5);
  const woken0 = streams[0] as unknown as Fake;
  woken0.hot = true;
  const { next, sent, woken } = setup(streams);
  woken.add(streams[0]);
  await next.next()!.send();
  assert.deepEqual(sent.map((p) => [p.kind, p.streams.length]), [["read", 1]]);
  // Its read is out (still woken and hot until the reply): neither read again nor a look.
  woken0.readsInFlight = 1;
  assert.equal(next.next(true), undefined);
  assert.deepEqual(sent.map((p) => p.kind), ["read"]);
  // The reply came back full: a backlog, and the others are looked at.
  woken.delete(streams[0]);
  woken0.readsInFlight = 0;
  await next.next()!.send();
  assert.deepEqual([sent.at(-1)!.kind, sent.at(-1)!.streams.length], ["look", 4]);
});

Deno.test("while streams have a backlog, the others are looked at up to 2,000 at once, and the next look waits its turn (200 keys a millisecond)", async () => {
  const streams = fakes(5001);
  (streams[0] as unknown as Fake).hot = true;
  const { next, sent } = setup(streams);
  await next.next()!.send();
  assert.deepEqual(sent.map((p) => [p.kind, p.streams.length]), [["look", 2000]]);
  await next.next()!.send(); // 2,000 keys: the next look is due 10 ms later
  assert.deepEqual(sent.at(-1)!.kind, "read");
  await new Promise((r) => setTimeout(r, 12));
  await next.next()!.send();
  assert.deepEqual([sent.at(-1)!.kind, sent.at(-1)!.streams.length], ["look", 2000]);
  assert.ok(!sent.at(-1)!.streams.includes(sent[0].streams[0]), "the next 2,000 in turn");
});

Deno.test("a notified stream among 10,000 is read at once, and neither its read nor a wait that does not need the list asks every stream whether it wants entries", async () => {
  const streams = fakes(10_000);
  let asked = 0;
  const { next, sent, notified } = setup(streams, {
    wants: () => (asked++, true),
    quiet: () => (sent.push({ kind: "wait", streams: [] }), Promise.resolve()),
  });
  notified.add(streams[1234]);
  const read = next.next(false)!;
  assert.equal(read.blocking, false);
  await read.send();
  assert.deepEqual(sent.map((p) => [p.kind, p.streams]), [["read", [streams[1234]]]]);
  notified.clear();
  await next.next(false)!.send(); // a wait that sleeps (notifications): no list
  assert.deepEqual(sent.map((p) => p.kind), ["read", "wait"]);
  assert.ok(asked < 10, `wants() asked ${asked} times`);
});
