/**
 * New entries on a cluster source: a subscriber per master on the
 * `xadd` keyspace event (`__keyevent@0__:xadd`), which names the stream
 * that got entries, so a reader reads it at once instead of at its next
 * sweep. A master's subscriber takes one place of that master's pool
 * (when the pool has at least two); subscribers follow the layout (made
 * for new masters, closed for former ones). Notifications are
 * fire-and-forget: the readers' sweeps stay the safety net, and a renewed
 * subscription sweeps that master's streams at once.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import {
  keyEventKey,
  type RedisConnection,
  type ServerPool,
  watchKeyEvents,
} from "../../redis/mod.ts";

const log = getLog("orchestrator");

/** Options for {@linkcode SourceEvents}. */
export interface SourceEventsOptions {
  /** A stream key was named by an `xadd` event. */
  onKey: (key: Uint8Array) => void;
  /** Notifications of `node` may have been missed: sweep its streams. */
  onGap: (node: string) => void;
  /** Stops every subscriber. */
  signal: AbortSignal;
}

interface Subscriber {
  conn: RedisConnection;
  stop: AbortController;
  done: Promise<void>;
}

/** The subscribers of a cluster source's masters; see the module doc. */
export class SourceEvents {
  readonly #pool: ServerPool;
  readonly #options: SourceEventsOptions;
  readonly #subscribers = new Map<string, Subscriber>();
  readonly #told = new Set<string>();
  readonly #runs: Promise<void>[] = [];

  constructor(pool: ServerPool, options: SourceEventsOptions) {
    this.#pool = pool;
    this.#options = options;
  }

  /** A subscriber on every master now, none on the others. Call at start and after a layout change. */
  sync(): void {
    if (this.#options.signal.aborted) return;
    const masters = new Set(this.#pool.nodes());
    for (const [node, sub] of this.#subscribers) {
      if (masters.has(node)) continue;
      sub.stop.abort();
      this.#pool.release(sub.conn);
      this.#subscribers.delete(node);
    }
    for (const node of masters) {
      if (this.#subscribers.has(node)) continue;
      // A pool of one keeps its place for a reader: that master is swept only.
      if (!this.#pool.canDedicate(node) || this.#poolSizeOne()) {
        this.#tell(node, "no room in SOURCE_REDIS_POOL_SIZE for a subscriber (at least 2)");
        continue;
      }
      this.#subscribe(node);
    }
  }

  /** The subscribers' loops (they end with the signal). */
  get runs(): Promise<void>[] {
    return this.#runs;
  }

  #poolSizeOne(): boolean {
    return this.#pool.poolSize < 2;
  }

  #subscribe(node: string): void {
    const { onKey, onGap, signal } = this.#options;
    const conn = this.#pool.dedicate(0, {
      name: "events",
      node,
      onPush: (message) => {
        const key = keyEventKey(message);
        if (key) onKey(key);
      },
    });
    const stop = new AbortController();
    const sub: Subscriber = { conn, stop, done: Promise.resolve() };
    sub.done = watchKeyEvents(conn, {
      event: "xadd",
      control: this.#pool.controlOf(node),
      signal: AbortSignal.any([signal, stop.signal]),
      onGap: () => onGap(node),
      onMode: (mode, flags) => {
        if (mode === "off") {
          this.#tell(
            node,
            `its notify-keyspace-events is ${JSON.stringify(flags)}; set it to include "Et" ` +
              `(CONFIG SET notify-keyspace-events Et) for notifications`,
          );
        } else this.#told.delete(node);
      },
    });
    this.#subscribers.set(node, sub);
    this.#runs.push(sub.done);
  }

  /** Says once per master (until it changes) why it is swept only. */
  #tell(node: string, why: string): void {
    if (this.#told.has(node)) return;
    this.#told.add(node);
    log.info(
      "Source master {node} sends no stream notifications ({why}): its new entries are found by sweeps every STREAM_POLL_INTERVAL",
      { node, why },
    );
  }
}
