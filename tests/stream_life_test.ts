/**
 * The stream state machine (lib/replication/stream/stream_life.ts): the one place
 * where a stream's state changes. Pure: no server.
 */
import assert from "node:assert/strict";
import {
  IllegalTransitionError,
  type StreamEvent,
  StreamLife,
  type StreamOutcome,
  type StreamState,
  TRANSITIONS,
} from "../lib/replication/stream/stream_life.ts";
import { captureLogs, quietLogs } from "./_replication.ts";

const STATES: StreamState[] = [
  "starting",
  "recovering",
  "replicating",
  "stalled",
  "retrying",
  "caught-up",
  "stopped",
  "error",
  "gone",
  "skipped",
  "released",
];
const OUTCOMES: StreamOutcome[] = ["stopped", "caught-up", "gone", "skipped", "error", "released"];
const EVENTS = Object.keys(TRANSITIONS) as StreamEvent[];

/** A life in `state`, reached through events only (as the replication core reaches it). */
function lifeIn(state: StreamState): { life: StreamLife; status: { state: StreamState } } {
  const status = { state: "starting" as StreamState };
  const life = new StreamLife("db0:s", status);
  const path: Record<StreamState, () => void> = {
    starting: () => {},
    recovering: () => life.on("recover"),
    replicating: () => life.on("reading"),
    stalled: () => (life.on("reading"), life.on("stall")),
    retrying: () => (life.on("reading"), life.on("write-failed")),
    "caught-up": () => life.end("caught-up"),
    stopped: () => life.end("stopped"),
    error: () => life.end("error"),
    gone: () => life.end("gone"),
    skipped: () => life.end("skipped"),
    released: () => life.end("released"),
  };
  path[state]();
  assert.equal(life.state, state);
  return { life, status };
}

Deno.test("every event leads where the transition table says, from every state it is allowed in, and is refused elsewhere without a change", () => {
  for (const event of EVENTS) {
    for (const from of STATES) {
      const { life, status } = lifeIn(from);
      const to = TRANSITIONS[event][from];
      if (to === undefined) {
        assert.throws(() => life.on(event), (e: unknown) => {
          assert.ok(e instanceof IllegalTransitionError);
          assert.equal(e.from, from);
          assert.equal(e.event, event);
          assert.match(e.message, new RegExp(`"${event}" in the state "${from}"`));
          return true;
        });
        assert.equal(life.state, from, `${event} from ${from} changed the state`);
      } else {
        assert.equal(life.on(event), to !== from, `${event} from ${from}`);
        assert.equal(life.state, to);
        assert.equal(status.state, to, "the status object follows");
      }
    }
  }
});

Deno.test("no event but left-pending leaves an ended state, and left-pending only turns caught-up into error", () => {
  for (const [event, moves] of Object.entries(TRANSITIONS)) {
    for (const [from, to] of Object.entries(moves)) {
      const ended = lifeIn(from as StreamState).life.ended;
      if (ended) {
        assert.deepEqual([event, from, to], ["left-pending", "caught-up", "error"]);
      }
    }
  }
});

Deno.test("end happens once: the first outcome stays, done resolves with it, and later ends change nothing", async () => {
  for (const outcome of OUTCOMES) {
    for (
      const from of [
        "starting",
        "recovering",
        "replicating",
        "stalled",
        "retrying",
      ] as StreamState[]
    ) {
      const { life } = lifeIn(from);
      assert.ok(!life.ended);
      assert.equal(life.end(outcome), true);
      assert.ok(life.ended);
      assert.ok(!life.active);
      const other = OUTCOMES.find((o) => o !== outcome)!;
      assert.equal(life.end(other), false);
      assert.equal(life.state, outcome);
      assert.equal(await life.done, outcome);
    }
  }
});

Deno.test("active means replicating, stalled (read at once) or retrying; a new life is starting", () => {
  const active = STATES.filter((s) => lifeIn(s).life.active);
  assert.deepEqual(active, ["replicating", "stalled", "retrying"]);
  const status = { state: "replicating" as StreamState };
  new StreamLife("db0:s", status);
  assert.equal(status.state, "starting");
});

Deno.test("each change of state is logged at DEBUG with the stream, both states and the event; events that change nothing are not", async () => {
  const logs = await captureLogs("DEBUG");
  try {
    const { life } = lifeIn("starting");
    life.on("reading");
    life.on("write-succeeded"); // replicating -> replicating: no line
    life.on("write-failed");
    life.end("stopped");
    const lines = logs.at("DEBUG", /^Stream db0:s: /).map((l) => l.message);
    assert.deepEqual(lines, [
      "Stream db0:s: starting -> replicating (reading)",
      "Stream db0:s: replicating -> retrying (write-failed)",
      "Stream db0:s: retrying -> stopped (end:stopped)",
    ]);
  } finally {
    await quietLogs();
  }
});

Deno.test("the end listener and done both learn the outcome once, whether they came before or after the end", async () => {
  const holder = { state: "starting" as StreamState };
  const life = new StreamLife("db0:s", holder);
  const order: string[] = [];
  life.onEnd((outcome) => order.push(`listener ${outcome}`));
  const early = life.done.then((outcome) => order.push(`done ${outcome}`));
  assert.throws(() => life.onEnd(() => {}), /has an end listener already/);
  life.on("reading");
  assert.equal(life.end("gone"), true);
  assert.equal(life.end("error"), false);
  assert.deepEqual(order, []); // in a microtask, not during end()
  await early;
  assert.deepEqual(order, ["listener gone", "done gone"]);
  assert.equal(await life.done, "gone");
  const ended = new StreamLife("db0:t", { state: "starting" as StreamState });
  ended.end("caught-up");
  assert.equal(await ended.done, "caught-up");
  const late = await new Promise<StreamOutcome>((resolve) => ended.onEnd(resolve));
  assert.equal(late, "caught-up");
});
