/**
 * A stream's life as a state machine: the one place where a replicated
 * stream's state changes. Every change is a named event, looked up in one
 * table ({@linkcode TRANSITIONS}), and logged at DEBUG with the stream, the
 * states and the event. An event that the table does not allow from the
 * current state is a bug of the caller: it throws
 * {@linkcode IllegalTransitionError} and changes nothing.
 *
 * ```
 *  starting ──reading──▶ replicating ◀──write-succeeded── retrying
 *     │                    │   ▲   └──────write-failed──────▶ │
 *     └────recover───▶ recovering ◀──────────recover──────────┘
 *                          └─recovered─▶ replicating
 *  any of the above ──end(outcome)──▶ caught-up | stopped | error | gone | skipped | released
 *  caught-up ──left-pending──▶ error   (run --once found entries still pending)
 *  replicating ──stall──▶ stalled ──write-succeeded | flowing──▶ replicating
 *                         stalled ──write-failed──▶ retrying,  ──recover──▶ recovering
 * ```
 *
 * No I/O and no timer: the engine, the reader, the writer and recovery tell
 * it what happened; `status`, metrics and the run's result ask it.
 *
 * @module
 */
import { getLog } from "../../log.ts";

const log = getLog("stream");

/** Where a stream's replication is. */
export type StreamState =
  | "starting"
  | "recovering"
  | "replicating"
  | "stalled"
  | "retrying"
  | "caught-up"
  | "stopped"
  | "error"
  | "gone"
  | "skipped"
  | "released";

/**
 * How a stream's replication ended. "released": another instance holds
 * its lease now (it was handed over, or found taken).
 */
export type StreamOutcome = "stopped" | "caught-up" | "gone" | "skipped" | "error" | "released";

/** What can happen to a stream while it is not ended. */
export type StreamEvent =
  /** Started with nothing pending in the group: it reads new entries. */
  | "reading"
  /** Its pending entries must be taken over before it reads on. */
  | "recover"
  /** What was pending is written: it reads new entries again. */
  | "recovered"
  /** A write failed and will be retried. */
  | "write-failed"
  /** A write succeeded. */
  | "write-succeeded"
  /** `run --once`: it caught up, but entries are still pending in the group. */
  | "left-pending"
  /**
   * The watchdog found entries on the source beyond its copy, with no
   * progress for STREAM_STALL_TIMEOUT: it is read at once.
   */
  | "stall"
  /** A stalled stream is no longer behind (without a write of it: its entries were removed). */
  | "flowing";

const ACTIVE: readonly StreamState[] = ["replicating", "stalled", "retrying"];
const TERMINAL: ReadonlySet<StreamState> = new Set<StreamState>([
  "caught-up",
  "stopped",
  "error",
  "gone",
  "skipped",
  "released",
]);

/**
 * For each event, the state it leads to from each state it is allowed in.
 * Ending (`end`) is allowed from every state that is not terminal.
 */
export const TRANSITIONS: Readonly<
  Record<StreamEvent, Readonly<Partial<Record<StreamState, StreamState>>>>
> = Object.freeze({
  "reading": { starting: "replicating" },
  "recover": {
    starting: "recovering",
    replicating: "recovering",
    stalled: "recovering",
    retrying: "recovering",
    recovering: "recovering",
  },
  "recovered": { recovering: "replicating" },
  // A write of recovered entries fails or succeeds while recovering: it stays recovering.
  "write-failed": {
    replicating: "retrying",
    stalled: "retrying",
    retrying: "retrying",
    recovering: "recovering",
  },
  "write-succeeded": {
    replicating: "replicating",
    stalled: "replicating",
    retrying: "replicating",
    recovering: "recovering",
  },
  "left-pending": { "caught-up": "error" },
  "stall": { replicating: "stalled", stalled: "stalled" },
  "flowing": { stalled: "replicating", replicating: "replicating" },
});

/** An event that the state machine does not allow from the stream's current state. */
export class IllegalTransitionError extends Error {
  /** The state the stream was in. */
  readonly from: StreamState;
  /** The event refused. */
  readonly event: StreamEvent | `end:${StreamOutcome}`;

  constructor(label: string, from: StreamState, event: StreamEvent | `end:${StreamOutcome}`) {
    super(`Stream ${label} cannot take the event "${event}" in the state "${from}"`);
    this.name = "IllegalTransitionError";
    this.from = from;
    this.event = event;
  }
}

/** The object whose `state` the life keeps current (a stream's status, read by `status` and metrics). */
export interface StateHolder {
  /** The current state: written by {@linkcode StreamLife} only. */
  readonly state: StreamState;
}

/** One stream's state, changed only through named events. */
export class StreamLife {
  readonly #label: string;
  readonly #holder: { state: StreamState };
  /** Made when first asked for (a promise and its resolver cost ~300 bytes a stream). */
  #done?: Promise<StreamOutcome>;
  #resolve?: (outcome: StreamOutcome) => void;
  #listener?: (outcome: StreamOutcome, subject: unknown) => void;
  /** What the listener is told about (its second argument): one listener serves every stream. */
  #subject: unknown;
  #active = false;

  /**
   * @param label the stream, as logs name it.
   * @param holder the status object whose `state` it keeps (starts as "starting").
   */
  constructor(label: string, holder: StateHolder) {
    this.#label = label;
    this.#holder = holder as { state: StreamState };
    this.#holder.state = "starting";
  }

  /** The current state. */
  get state(): StreamState {
    return this.#holder.state;
  }

  /** Whether it ended (caught up, stopped, in error, gone, skipped, released). */
  get ended(): boolean {
    return TERMINAL.has(this.#holder.state);
  }

  /** Whether it copies new entries now (not starting, recovering or ended). */
  get active(): boolean {
    return this.#active;
  }

  /** Resolves with how the stream ended. */
  get done(): Promise<StreamOutcome> {
    if (this.#done) return this.#done;
    const state = this.#holder.state;
    this.#done = TERMINAL.has(state)
      ? Promise.resolve(state as StreamOutcome)
      : new Promise((resolve) => (this.#resolve = resolve));
    return this.#done;
  }

  /**
   * Calls `listener` with how the stream ended and `subject`, in a
   * microtask after it ended (before the reactions to {@linkcode done}); no
   * promise is made. One listener (the stream table): others await
   * {@linkcode done}. The same function may serve every stream, told apart
   * by `subject` (a closure per stream cost ~100 bytes each at 100,000).
   */
  onEnd<T>(listener: (outcome: StreamOutcome, subject: T) => void, subject?: T): void {
    if (this.#listener) throw new Error(`Stream ${this.#label} has an end listener already`);
    const state = this.#holder.state;
    if (TERMINAL.has(state)) queueMicrotask(() => listener(state as StreamOutcome, subject as T));
    else {
      this.#listener = listener as (outcome: StreamOutcome, subject: unknown) => void;
      this.#subject = subject;
    }
  }

  /**
   * Applies `event`; returns whether the state changed.
   *
   * @throws {IllegalTransitionError} when the table does not allow it from the current state.
   */
  on(event: StreamEvent): boolean {
    const from = this.#holder.state;
    const to = TRANSITIONS[event][from];
    if (to === undefined) throw new IllegalTransitionError(this.#label, from, event);
    return this.#move(from, to, event);
  }

  /**
   * Ends the stream with `outcome`, once: returns false (and changes
   * nothing) when it had ended already.
   */
  end(outcome: StreamOutcome): boolean {
    const from = this.#holder.state;
    if (TERMINAL.has(from)) return false;
    this.#move(from, outcome, `end:${outcome}`);
    const listener = this.#listener;
    const subject = this.#subject;
    this.#listener = this.#subject = undefined;
    if (listener) queueMicrotask(() => listener(outcome, subject));
    this.#resolve?.(outcome);
    this.#resolve = undefined;
    return true;
  }

  #move(from: StreamState, to: StreamState, event: string): boolean {
    if (from === to) return false;
    this.#holder.state = to;
    // Asked for every stream at every read: kept, not looked up.
    this.#active = ACTIVE.includes(to);
    log.debug("Stream {stream}: {from} -> {to} ({event})", {
      stream: this.#label,
      from,
      to,
      event,
    });
    return true;
  }
}
