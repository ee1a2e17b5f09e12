/**
 * A discovery pass's start of the streams it found, in waves of at most
 * START_WAVE (lib/replication/run/_start_waves.ts): what each wave is, what
 * happens to the streams whose wave does not come (stopped, or a wave
 * failed), and the one INFO line of the pass. Pure: no server (the memory
 * it saves is measured by the bench's row q, in docs/performance.md R24).
 */
import assert from "node:assert/strict";
import { notTakenOf, START_WAVE, startInWaves } from "../lib/replication/run/_start_waves.ts";
import { makeStreamRef, type StreamRef } from "../lib/replication/stream/stream_ref.ts";
import { captureLogs } from "./_replication.ts";

function refs(n: number): StreamRef[] {
  return Array.from({ length: n }, (_, i) => makeStreamRef(0, `s${i}`));
}

function table() {
  const notTaken: StreamRef[] = [];
  const endStart: StreamRef[] = [];
  return {
    notTaken,
    endStart,
    table: {
      notTaken: (r: readonly StreamRef[]) => void notTaken.push(...r),
      endStart: (r: readonly StreamRef[]) => void endStart.push(...r),
    },
  };
}

Deno.test("streams found at once start in waves of at most START_WAVE, in order, and the pass says so in one INFO line", async () => {
  const logs = await captureLogs("INFO");
  const all = refs(2 * START_WAVE + 5);
  const waves: number[] = [];
  const t = table();
  await startInWaves(all, {
    signal: new AbortController().signal,
    start: (wave, said) => {
      assert.equal(wave[0], all[waves.reduce((a, b) => a + b, 0)]); // in order, none twice
      waves.push(wave.length);
      for (const ref of wave) said.started.push(ref);
      said.created += wave.length;
      return Promise.resolve();
    },
    moved: () => false,
    table: t.table,
  });
  assert.deepEqual(waves, [START_WAVE, START_WAVE, 5]);
  assert.deepEqual([t.notTaken.length, t.endStart.length], [0, 0]);
  const lines = logs.atLeast("INFO", /Replicating/);
  assert.equal(lines.length, 1, logs.toString());
  assert.match(lines[0].message, /Replicating 20005 new streams \(20005 consumer groups created\)/);
});

Deno.test("a stop between waves leaves the later waves' streams not taken; a failed wave ends the start of the later ones, and its error goes on", async () => {
  await captureLogs("INFO");
  const all = refs(START_WAVE * 3);
  const stop = new AbortController();
  const t = table();
  let started = 0;
  await startInWaves(all, {
    signal: stop.signal,
    start: (wave) => {
      started += wave.length;
      stop.abort(); // stopped while the first wave starts
      return Promise.resolve();
    },
    moved: () => false,
    table: t.table,
  });
  assert.equal(started, START_WAVE);
  assert.deepEqual(t.notTaken, all.slice(START_WAVE));
  const f = table();
  await assert.rejects(
    startInWaves(all, {
      signal: new AbortController().signal,
      start: (wave) =>
        wave[0] === all[START_WAVE] ? Promise.reject(new Error("down")) : Promise.resolve(),
      moved: () => false,
      table: f.table,
    }),
    /down/,
  );
  assert.deepEqual(f.endStart, all.slice(2 * START_WAVE)); // the failed wave's own: by its start
  assert.deepEqual(f.notTaken, []);
});

Deno.test("the streams begun but not taken are those whose lease another instance holds, or all of them once stopped", () => {
  const [a, b, c] = ["a", "b", "c"].map((k) => makeStreamRef(0, k));
  const running = new AbortController();
  assert.deepEqual(notTakenOf([a, b, c], [a, c], running.signal), [b]);
  assert.deepEqual(notTakenOf([a, b, c], [], running.signal), [a, b, c]);
  const all = [a, b, c];
  assert.deepEqual(notTakenOf(all, all, running.signal), []);
  const stopped = new AbortController();
  stopped.abort();
  assert.deepEqual(notTakenOf([a, b, c], [a, c], stopped.signal), [a, b, c]);
});
