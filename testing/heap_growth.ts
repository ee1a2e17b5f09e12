/**
 * Run by tests/memory_trim_test.ts with the start task's flags: keeps about
 * 75 MB of small objects alive, then makes 40 rounds of garbage, and prints
 * as one JSON line the heap in use after the live set was made and the
 * largest heap V8 held meanwhile (`heapTotal`), in bytes. How far the second
 * rises above the first is the heap growth the start task's V8 flags allow.
 * Also the largest the young generation (`new_space`) grew to, which the
 * flags cap.
 *
 * @module
 */
import v8 from "node:v8";

const live: unknown[] = [];
for (let i = 0; i < 500_000; i++) live.push({ a: i, b: `s${i}`, c: [i] });
const liveBytes = Deno.memoryUsage().heapUsed;
let maxHeapBytes = 0;
let newSpaceMax = 0;
let last: unknown[] = [];
for (let round = 0; round < 40; round++) {
  const junk: unknown[] = [];
  for (let i = 0; i < 100_000; i++) junk.push({ a: i, b: [i, i], c: `t${i}` });
  last = junk;
  maxHeapBytes = Math.max(maxHeapBytes, Deno.memoryUsage().heapTotal);
  const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  newSpaceMax = Math.max(newSpaceMax, young?.space_size ?? 0);
  await new Promise((resolve) => setTimeout(resolve, 0));
}
console.log(
  JSON.stringify({ liveBytes, maxHeapBytes, newSpaceMax, kept: live.length + last.length }),
);
