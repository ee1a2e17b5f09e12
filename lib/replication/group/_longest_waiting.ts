/**
 * Which streams group maintenance looks at next when more are due than it
 * may look at: those due longest ago. Internal to the group layer.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";

/**
 * Keeps the `n` streams offered that were due longest ago, in order,
 * without a list of all of them (100,000 streams walked every second, a
 * few dozen kept): one binary search per stream that beats the last kept.
 */
export class LongestWaiting {
  readonly #n: number;
  readonly #kept: ReplicatedStream[] = [];

  constructor(n: number) {
    this.#n = Math.max(1, n);
  }

  /** Offers `s` (due at `s.maintenanceDue`). */
  offer(s: ReplicatedStream): void {
    const kept = this.#kept;
    const n = this.#n;
    if (kept.length === n && s.maintenanceDue >= kept[n - 1].maintenanceDue) return;
    let lo = 0, hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].maintenanceDue <= s.maintenanceDue) lo = mid + 1;
      else hi = mid;
    }
    kept.splice(lo, 0, s);
    if (kept.length > n) kept.pop();
  }

  /** The streams kept, due longest ago first. */
  get streams(): readonly ReplicatedStream[] {
    return this.#kept;
  }
}
