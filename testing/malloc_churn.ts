/**
 * Run by tests/memory_trim_test.ts with the start task's permission flags:
 * fills the C heap with buffers' memory (small backing stores, one in 20
 * kept: holes a plain `free` cannot return), drops them, lets the memory
 * trimmer run while idle, and prints the resident size (bytes) before and
 * after, and whether `malloc_trim` was available, as one JSON line.
 *
 * @module
 */
import v8 from "node:v8";
import vm from "node:vm";
import { mallocTrim } from "../lib/ops/_malloc_trim.ts";
import { startMemoryTrim } from "../lib/ops/memory_trim.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
let kept: Uint8Array[] = [];
{
  let junk: Uint8Array[] = [];
  for (let i = 0; i < 100_000; i++) {
    const buffer = new Uint8Array(2000).fill(i & 255);
    if (i % 20 === 0) kept.push(buffer);
    else junk.push(buffer);
  }
  junk = [];
  void junk;
}
gc();
const before = Deno.memoryUsage().rss;
const stop = new AbortController();
startMemoryTrim(stop.signal, {
  intervalMs: 20,
  quiet: () => true,
  lastActivity: () => 0,
  idleIntervalMs: 10,
  mallocTrim: Deno.args[0] !== "off",
});
await new Promise((resolve) => setTimeout(resolve, 500));
stop.abort();
const after = Deno.memoryUsage().rss;
console.log(JSON.stringify({ available: mallocTrim() !== null, before, after, kept: kept.length }));
kept = [];
