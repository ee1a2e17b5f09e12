import assert from "node:assert/strict";
import type { OrchestratorStatus } from "../lib/replication/mod.ts";
import {
  formatProgress,
  progressOf,
  shouldShowProgress,
  startProgress,
} from "../lib/ops/progress.ts";
import type { StreamStatus } from "../lib/replication/stream/stream.ts";
import { getLog, setupLogging } from "../lib/log.ts";
import { TerminalLines } from "../lib/terminal.ts";

function status(streams: Array<Partial<StreamStatus>>): OrchestratorStatus {
  const health = { role: "source", address: "127.0.0.1:1", up: true, reconnects: 0, outages: 0 };
  return {
    ready: true,
    source: health,
    target: { ...health, role: "target" },
    streams: streams.map((s) => ({
      db: 0,
      key: "k",
      targetDb: 0,
      target: "k",
      state: "replicating",
      copied: 0,
      skipped: 0,
      deleted: 0,
      batches: 0,
      recovered: 0,
      targetLosses: 0,
      refilled: 0,
      stalls: 0,
      lastCopiedId: "0-0",
      errors: 0,
      ...s,
    })),
  };
}

Deno.test("shouldShowProgress() draws only on a terminal with text logs", () => {
  assert.equal(shouldShowProgress(true, "%(message)s"), true);
  assert.equal(shouldShowProgress(false, "%(message)s"), false);
  assert.equal(shouldShowProgress(true, "json"), false);
  assert.equal(shouldShowProgress(true, " JSON "), false);
});

Deno.test("progressOf() counts copied and skipped entries and derives rate and ETA", () => {
  const p = progressOf(
    status([{ copied: 600, skipped: 400 }, { key: "b", copied: 1000 }]),
    { elapsedMs: 2000, total: 4000 },
  );
  assert.deepEqual(p, { done: 2000, total: 4000, rate: 1000, etaSeconds: 2 });
  assert.equal(progressOf(status([]), { elapsedMs: 0, total: 0 }).etaSeconds, null);
});

Deno.test("formatProgress() shows done of total, percentage, rate and ETA", () => {
  assert.equal(
    formatProgress({ done: 12345, total: 50000, rate: 45000.4, etaSeconds: 0.84 }),
    "copied 12,345 of 50,000 entries (24.7%), 45,000 entries/s, ETA 1 s",
  );
  assert.equal(
    formatProgress({ done: 5, total: 0, rate: 0, etaSeconds: null }),
    "copied 5 entries, 0 entries/s",
  );
  assert.match(
    formatProgress({ done: 1, total: 100000, rate: 10, etaSeconds: 9999 }),
    /ETA 2 h 46 min$/,
  );
});

Deno.test("startProgress() fixes each stream's total from its first stats and ends the line", () => {
  const stats = {
    sourceLength: 100,
    lastSourceId: "1-100",
    firstSourceId: "1-1",
    sourceIsStream: true,
    groupExists: true,
    pending: 10,
    lag: 60,
    trimmedBeforeCopy: 0,
    lastDeliveredId: "1-40",
    targetLength: 30,
    lastCopiedId: "1-30",
    targetWrongType: false,
    targetRemoved: 0,
    targetRemovedUpTo: "0-0",
    firstTargetId: "",
    lagSeconds: 0,
    handledAtRefresh: 30,
  };
  let current = status([{ copied: 35, stats }]);
  const lines: string[] = [];
  const stop = startProgress(() => current, { intervalMs: 60_000, write: (t) => lines.push(t) });
  const clear = "\r\x1b[2K"; // carriage return, then erase the line
  assert.ok(lines[0].startsWith(`${clear}copied 35 of 100 entries (35.0%)`), lines[0]);
  // Later stats (less left) must not change the total fixed at the first draw.
  current = status([{ copied: 80, stats: { ...stats, lag: 0, pending: 0, handledAtRefresh: 80 } }]);
  stop();
  assert.equal(lines.at(-1), "\n");
  assert.ok(lines.at(-2)!.startsWith(`${clear}copied 80 of 100 entries (80.0%)`), lines.at(-2));
});

Deno.test("a log line written while the progress line is shown goes above it, and the progress line is drawn again below it", async () => {
  const out: string[] = [];
  const terminal = new TerminalLines((text) => out.push(text));
  await setupLogging({ level: "INFO", format: "%(levelname)s %(message)s", terminal });
  try {
    const stop = startProgress(() => status([{ copied: 5 }]), { intervalMs: 60_000, terminal });
    getLog("orchestrator").warning("Something happened");
    stop();
    const clear = "\r\x1b[2K";
    const text = out.join("");
    assert.ok(
      text.includes(`${clear}WARNING Something happened\n${clear}copied 5`) ||
        text.includes(`${clear}WARNING Something happened\ncopied 5`),
      JSON.stringify(text),
    );
    assert.ok(!/copied 5[^\n\r]*WARNING/.test(text), JSON.stringify(text)); // never on one line
    assert.ok(text.endsWith("\n"), JSON.stringify(text));
  } finally {
    await setupLogging({ level: "ERROR" });
  }
});
