/**
 * Gives memory back after a burst. V8 keeps the heap it grew to (copying
 * ten thousand streams at start-up, a backlog after an outage) long after
 * the burst is over: an idle replicator would sit on hundreds of MB it no
 * longer uses. A periodic look at the heap runs a full garbage collection
 * when much of it is free and nothing is being copied (a collection pauses
 * the process), which returns the pages to the system; then glibc's
 * `malloc_trim` gives back the free pages of the C heap (`_malloc_trim.ts`),
 * also on the idle schedule when the JavaScript heap has little free.
 *
 * @module
 */
import v8 from "node:v8";
import vm from "node:vm";
import { getLog } from "../log.ts";
import { mallocTrim } from "./_malloc_trim.ts";

const log = getLog("memory");

/** How often the heap is looked at. */
const CHECK_INTERVAL_MS = 1_000;
/** Free heap (allocated and not used) above which a collection gives it back. */
const FREE_HEAP_BYTES = 48 * 1024 * 1024;
/**
 * While nothing is copied, the first collection after one that followed a
 * burst waits this long; each next one twice as long as the one before, up
 * to {@linkcode IDLE_MAX_MS}: the heap left by a burst is given back within
 * seconds, and an idle service then collects rarely.
 */
const IDLE_FIRST_MS = 5_000;
/** The longest wait between two collections while nothing is copied. */
const IDLE_MAX_MS = 300_000;
/** Collections that gave nothing back wait this much longer before the next one. */
const BACKOFF_MS = 60_000;

let collect: (() => void) | null | undefined;

/** V8's full collection, made available at run time; null where it cannot be. */
function fullCollection(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    v8.setFlagsFromString("--expose-gc");
    collect = vm.runInNewContext("gc") as () => void;
    if (typeof collect !== "function") collect = null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Options for {@linkcode startMemoryTrim}. */
export interface MemoryTrimOptions {
  /**
   * Milliseconds between two looks at the heap.
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * Whether the service is quiet now (nothing copied for a while): a full
   * collection pauses the process for tens of milliseconds, which live
   * traffic would feel, so it waits for a quiet moment.
   * @default {() => true}
   */
  quiet?: () => boolean;
  /**
   * When something was last copied (ms since epoch): a collection runs once
   * after each burst of work, and while the service stays idle after 5 s,
   * then 10 s, 20 s, ... at most every 5 minutes (a large idle heap keeps
   * free space of its own, which a collection gives back only for it to
   * grow again: at 100,000 streams, two full collections of about 250 ms
   * every 15 s).
   * @default {undefined} (every time the heap has that much free)
   */
  lastActivity?: () => number;
  /**
   * With `lastActivity`: the first wait between two collections while nothing is copied (ms).
   * @default {5000}
   */
  idleIntervalMs?: number;
  /**
   * Milliseconds a collection that gave back little (under 24 MiB) waits before the next.
   * @default {60000}
   */
  backoffMs?: number;
  /**
   * Whether glibc's free pages are given back too (`malloc_trim`, where the
   * `--allow-ffi` permission for the C library is granted: `_malloc_trim.ts`).
   * @default {true}
   */
  mallocTrim?: boolean;
}

/**
 * Looks at the heap every second until `signal` aborts; runs a full
 * collection when more than 48 MiB of it are free and the service is quiet
 * (with `lastActivity`: once after each burst, then ever more rarely while
 * idle; and at most once a minute while collections give little back).
 * Returns at once where the runtime offers no way to collect.
 */
export function startMemoryTrim(signal: AbortSignal, options: MemoryTrimOptions = {}): void {
  const gc = fullCollection();
  if (!gc || signal.aborted) return;
  const cHeap = options.mallocTrim === false ? null : mallocTrim();
  if (options.mallocTrim !== false && !cHeap) {
    log.debug(
      "glibc's malloc_trim cannot be called (no --allow-ffi for the C library, or not glibc): memory freed outside the JavaScript heap stays with the process",
    );
  }
  const { quiet = () => true, lastActivity } = options;
  const firstWait = options.idleIntervalMs ?? IDLE_FIRST_MS;
  let notBefore = 0;
  let collectedAt = -Infinity;
  let idleWait = firstWait;
  // The C heap's own schedule: given back once nothing was copied (nor given back) for
  // `cWait`, which doubles each time and starts again after work (a few ms, no collection).
  let cTrimmedAt = Date.now();
  let cWait = firstWait;
  const trimC = (): void => {
    cHeap?.();
    cTrimmedAt = Date.now();
    cWait = Math.min(IDLE_MAX_MS, cWait * 2);
  };
  const timer = setInterval(() => {
    if (!quiet()) return;
    const last = lastActivity?.() ?? 0;
    if (last > cTrimmedAt) cWait = firstWait;
    if (Date.now() < notBefore) return void trimCWhenDue();
    // Nothing copied since the last one: only after a while, longer each time.
    const idle = lastActivity !== undefined && last <= collectedAt;
    if (!idle) idleWait = firstWait;
    if (idle && Date.now() - collectedAt < idleWait) return void trimCWhenDue();
    const before = Deno.memoryUsage();
    if (before.heapTotal - before.heapUsed < FREE_HEAP_BYTES) return void trimCWhenDue();
    if (idle) idleWait = Math.min(IDLE_MAX_MS, idleWait * 2);
    const started = performance.now();
    collectedAt = Date.now();
    gc();
    trimC(); // after the collection: the buffers' memory it freed goes back too
    say("", before, started);
  }, options.intervalMs ?? CHECK_INTERVAL_MS);
  function trimCWhenDue(): void {
    if (!cHeap || Date.now() - Math.max(lastActivity?.() ?? 0, cTrimmedAt) < cWait) return;
    const before = Deno.memoryUsage();
    const started = performance.now();
    trimC();
    say("; C heap only", before, started);
  }
  function say(how: string, before: Deno.MemoryUsage, started: number): void {
    const after = Deno.memoryUsage();
    const freed = before.rss - after.rss;
    if (how === "" && freed < FREE_HEAP_BYTES / 2) {
      notBefore = Date.now() + (options.backoffMs ?? BACKOFF_MS);
    }
    log.debug("Gave back {freed} MiB of memory in {ms} ms (RSS {rss} MiB{how})", {
      how,
      freed: Math.round(freed / 2 ** 20),
      ms: Math.round(performance.now() - started),
      rss: Math.round(after.rss / 2 ** 20),
    });
  }
  Deno.unrefTimer(timer);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
