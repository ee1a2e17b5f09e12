import assert from "node:assert/strict";
import { Backoff, backoffDelay, sleep } from "../lib/backoff.ts";

Deno.test("backoffDelay() doubles from the base, with jitter in [cap/2, cap], never below base", () => {
  const low = () => 0;
  const high = () => 0.999999;
  const options = { baseMs: 100, maxMs: 10_000 };
  assert.equal(backoffDelay(0, { ...options, random: low }), 100); // half of 100 is raised to the base
  assert.equal(backoffDelay(0, { ...options, random: high }), 100);
  assert.equal(backoffDelay(3, { ...options, random: low }), 400);
  assert.equal(backoffDelay(3, { ...options, random: high }), 800);
  for (let attempt = 0; attempt < 40; attempt++) {
    const ms = backoffDelay(attempt, options);
    assert.ok(ms >= 100 && ms <= 10_000, `attempt ${attempt}: ${ms}`);
  }
});

Deno.test("backoffDelay() is capped at maxMs however many attempts failed", () => {
  assert.equal(backoffDelay(1000, { baseMs: 1000, maxMs: 30_000, random: () => 0.999999 }), 30_000);
  assert.equal(backoffDelay(1000, { baseMs: 1000, maxMs: 30_000, random: () => 0 }), 15_000);
  assert.equal(backoffDelay(0, { baseMs: 5000, maxMs: 2000, random: () => 0 }), 2000);
});

Deno.test("Backoff retries at once immediateRetries times, then backs off, and resets", () => {
  const backoff = new Backoff({
    baseMs: 100,
    maxMs: 1000,
    immediateRetries: 2,
    random: () => 0.999999,
  });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [
    0,
    0,
    100,
    200,
  ]);
  assert.equal(backoff.attempt, 4);
  backoff.reset();
  assert.equal(backoff.attempt, 0);
  assert.equal(backoff.next(), 0);
});

Deno.test("sleep() returns early when its signal aborts", async () => {
  const controller = new AbortController();
  const started = performance.now();
  const slept = sleep(60_000, controller.signal);
  controller.abort();
  await slept;
  assert.ok(performance.now() - started < 30_000);
  await sleep(10, AbortSignal.abort()); // an aborted signal returns at once
});
