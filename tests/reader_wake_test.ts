/**
 * A reader's wake-up (`lib/replication/read/_reader_wake.ts`): a stream
 * that wants entries while its reader prepares a wait (a fenced reader
 * loads its streams' positions first) must not be left out of every wait
 * until that one ends (up to 30 s with many streams): the wait is
 * unblocked as soon as it starts.
 */
import assert from "node:assert/strict";
import { ReaderWake } from "../lib/replication/read/_reader_wake.ts";

function context(mustEnd: () => boolean, sent: string[]) {
  return {
    mustEnd,
    clientId: "7",
    unblock: (id: string) => {
      sent.push(id);
      return Promise.resolve(true);
    },
  };
}

Deno.test("a poke while the reader prepares its wait unblocks that wait as soon as it starts", () => {
  const wake = new ReaderWake();
  const sent: string[] = [];
  wake.looked();
  wake.poke(context(() => true, sent)); // neither sleeping nor blocked: preparing the wait
  assert.deepEqual(sent, []);
  wake.blockStarted();
  assert.deepEqual(sent, ["7"]);
  wake.blockEnded();
  wake.blockStarted(); // the next wait: that poke is spent
  assert.deepEqual(sent, ["7"]);
  wake.blockEnded();
});

Deno.test("a poke before the reader last looked at its streams, or one that need not end the wait, unblocks nothing", () => {
  const wake = new ReaderWake();
  const sent: string[] = [];
  wake.poke(context(() => true, sent));
  wake.looked(); // the loop saw that stream's state after the poke
  wake.blockStarted();
  assert.deepEqual(sent, []);
  wake.blockEnded();
  wake.looked();
  wake.poke(context(() => false, sent)); // e.g. a stream already in the wait
  wake.blockStarted();
  assert.deepEqual(sent, []);
  wake.blockEnded();
});

Deno.test("of several pokes while the reader prepares its wait, one that must end the wait unblocks it even when a later one need not", () => {
  const wake = new ReaderWake();
  const sent: string[] = [];
  wake.looked();
  wake.poke(context(() => true, sent)); // e.g. a stream handed over
  wake.poke(context(() => false, sent)); // then a stream already in the wait
  wake.blockStarted();
  assert.deepEqual(sent, ["7"]);
  wake.blockEnded();
});
