/**
 * Which streams group maintenance looks at next when more are due than it
 * may look at: those due longest ago. Internal to the group layer.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";

/**
 * The `n` streams of `due` due longest ago, without sorting all of them
 * (100,000 streams, a few dozen taken each second): one walk, the `n`
 * kept in order.
 */
export function longestWaiting(due: readonly ReplicatedStream[], n: number): ReplicatedStream[] {
  const kept: ReplicatedStream[] = [];
  for (const s of due) {
    if (kept.length === n && s.maintenanceDue >= kept[n - 1].maintenanceDue) continue;
    let lo = 0, hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].maintenanceDue <= s.maintenanceDue) lo = mid + 1;
      else hi = mid;
    }
    kept.splice(lo, 0, s);
    if (kept.length > n) kept.pop();
  }
  return kept;
}
