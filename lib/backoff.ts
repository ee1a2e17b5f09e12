/**
 * Exponential backoff with jitter, and an abortable sleep.
 *
 * @module
 */

/** Options for {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /**
   * First delay, in milliseconds.
   * @default {1000}
   */
  baseMs?: number;
  /**
   * Largest delay, in milliseconds.
   * @default {30000}
   */
  maxMs?: number;
  /**
   * Source of randomness in [0, 1), for tests.
   * @default {Math.random}
   */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry):
 * `cap = min(max, base * 2^attempt)`, with "equal jitter" so that the delay
 * lies in `[cap / 2, cap]`; never below `baseMs` and never above `maxMs`.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const ms = backoffDelay(3, { baseMs: 100, maxMs: 5000 }); // between 400 and 800
 * ```
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs = 1000, maxMs = 30_000, random = Math.random } = options;
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  const half = exp / 2;
  return Math.round(Math.max(Math.min(baseMs, maxMs), half + random() * half));
}

/**
 * Resolves after `ms` milliseconds, or as soon as `signal` aborts (it then
 * resolves too: callers check `signal.aborted`).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Options for {@linkcode Backoff}. */
export interface BackoffLoopOptions extends BackoffOptions {
  /**
   * Failures retried at once (*_MAX_RETRIES) before the delays start.
   * @default {0}
   */
  immediateRetries?: number;
}

/**
 * Counts consecutive failures of one loop and says how long to wait before
 * the next attempt: the first `immediateRetries` at once, then exponential
 * backoff with jitter. Reset it after a success.
 */
export class Backoff {
  #attempt = 0;
  #options: BackoffLoopOptions;
  constructor(options: BackoffLoopOptions = {}) {
    this.#options = options;
  }
  /** Consecutive failures so far. */
  get attempt(): number {
    return this.#attempt;
  }
  /**
   * The delay for the next retry; counts one more failure. `atOnce`: the
   * failure may pass with an immediate retry (a dropped connection); false
   * for a server that refused (out of memory, read-only), which only a
   * delay helps.
   */
  next(atOnce = true): number {
    const immediate = this.#options.immediateRetries ?? 0;
    const attempt = this.#attempt++;
    if (attempt < immediate && atOnce) return 0;
    return backoffDelay(Math.max(0, attempt - immediate), this.#options);
  }
  /** Call after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
