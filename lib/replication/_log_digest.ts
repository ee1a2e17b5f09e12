/**
 * Log lines about many streams at once: what happens to hundreds of streams
 * in the same moment (a target refusing writes, writes resuming) becomes one
 * line naming a few of them and counting the rest, and the same line is
 * repeated at most once a minute.
 *
 * @module
 */
import type { Logger } from "../log.ts";

/** How many stream names a digest line shows before "and N more". */
const NAMES_SHOWN = 3;
/** The same message is logged again after this long at the earliest. */
const REPEAT_MS = 60_000;

type Level = "debug" | "info" | "warning" | "error";

/** Collects (message, stream) pairs during a tick and logs one line per message. */
export class LogDigest {
  readonly #log: Logger;
  readonly #level: Level;
  readonly #format: (streams: string, detail: string) => string;
  readonly #repeatMs: number;
  #pending = new Map<string, string[]>();
  #lastLogged = new Map<string, number>();
  #queued = false;

  /**
   * @param format builds the line from the names (e.g. "db0:a, db0:b and 3 more streams") and the detail.
   * @param repeatMs `0` logs every tick's digest; by default a detail is repeated at most once a minute.
   */
  constructor(
    log: Logger,
    level: Level,
    format: (streams: string, detail: string) => string,
    repeatMs = REPEAT_MS,
  ) {
    this.#log = log;
    this.#level = level;
    this.#format = format;
    this.#repeatMs = repeatMs;
  }

  /** Notes `stream` (a label) under `detail`; the line is logged at the end of the tick. */
  add(stream: string, detail: string): void {
    const list = this.#pending.get(detail);
    if (list) list.push(stream);
    else this.#pending.set(detail, [stream]);
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Logs what was noted (normally called at the end of the tick by itself). */
  flush(): void {
    this.#queued = false;
    const now = Date.now();
    for (const [detail, streams] of this.#pending) {
      const last = this.#lastLogged.get(detail);
      if (this.#repeatMs > 0 && last !== undefined && now - last < this.#repeatMs) continue;
      this.#lastLogged.set(detail, now);
      this.#log[this.#level]("{message}", { message: this.#format(names(streams), detail) });
    }
    this.#pending.clear();
    if (this.#lastLogged.size > 1000) {
      for (const [detail, at] of this.#lastLogged) {
        if (now - at >= this.#repeatMs) this.#lastLogged.delete(detail);
      }
    }
  }
}

/** "a", "a and b", "a, b, c and 7 more streams". */
export function names(streams: readonly string[]): string {
  const unique = [...new Set(streams)];
  if (unique.length <= NAMES_SHOWN) {
    return unique.length === 1
      ? unique[0]
      : `${unique.slice(0, -1).join(", ")} and ${unique[unique.length - 1]}`;
  }
  return `${unique.slice(0, NAMES_SHOWN).join(", ")} and ${
    unique.length - NAMES_SHOWN
  } more streams`;
}
