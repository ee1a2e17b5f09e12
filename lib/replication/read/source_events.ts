/**
 * New entries on the source: a subscriber per master on the `xadd`
 * keyspace event (`__keyevent@0__:xadd`; on one server, every DB's:
 * `__keyevent@*__:xadd`), which names the stream that got entries, so a
 * reader reads it at once. A master's subscriber takes one place of that
 * master's pool (when the pool has at least two); subscribers follow the
 * layout (made for new masters, closed for former ones). Notifications are
 * fire-and-forget: a cluster's readers sweep as the safety net, and one
 * server's readers rely on them only while they are {@linkcode SourceEvents.live}
 * (subscribed, and `notify-keyspace-events` sends them), else block on the
 * server as before; each change of that, and each renewed subscription,
 * has that master's streams looked at at once.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import {
  type KeyEvent,
  keyEventOf,
  type RedisConnection,
  type ServerPool,
  watchKeyEvents,
} from "../../redis/mod.ts";

const log = getLog("orchestrator");

/** Options for {@linkcode SourceEvents}. */
export interface SourceEventsOptions {
  /** A stream key (and its DB) was named by an `xadd` event. */
  onKey: (event: KeyEvent) => void;
  /**
   * Notifications of `node` may have been missed, or whether they arrive
   * changed (see {@linkcode SourceEvents.live}): look at its streams.
   */
  onGap: (node: string) => void;
  /** Stops every subscriber. */
  signal: AbortSignal;
}

interface Subscriber {
  conn: RedisConnection;
  stop: AbortController;
  done: Promise<void>;
  /** Subscribed now (since its last renewal). */
  subscribed: boolean;
  /** The server sends the events (`notify-keyspace-events` read last). */
  sends: boolean;
}

/** The subscribers of a cluster source's masters; see the module doc. */
export class SourceEvents {
  readonly #pool: ServerPool;
  readonly #options: SourceEventsOptions;
  readonly #subscribers = new Map<string, Subscriber>();
  readonly #told = new Map<string, string>();
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

  /**
   * Whether `node`'s notifications arrive now: subscribed, and its
   * `notify-keyspace-events` sends them (read every few seconds). A
   * subscription found lost counts at once; one lost unnoticed, until its
   * keepalive fails (2 s) and the renewal's `onGap`.
   */
  live(node: string): boolean {
    const sub = this.#subscribers.get(node);
    return sub !== undefined && sub.subscribed && sub.sends;
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
        const event = keyEventOf(message);
        if (event) onKey(event);
      },
    });
    const stop = new AbortController();
    const sub: Subscriber = {
      conn,
      stop,
      done: Promise.resolve(),
      subscribed: false,
      sends: false,
    };
    const change = (update: () => void) => {
      const was = this.live(node);
      update();
      if (this.live(node) === was) return;
      if (!was) this.#told.delete(node); // said again, should they stop
      onGap(node);
    };
    sub.done = watchKeyEvents(conn, {
      event: "xadd",
      allDbs: !this.#pool.cluster,
      control: this.#pool.controlOf(node),
      signal: AbortSignal.any([signal, stop.signal]),
      onGap: () => {
        sub.subscribed = true;
        onGap(node);
      },
      onLost: () => change(() => (sub.subscribed = false)),
      onRefused: (error) => {
        const channel = this.#pool.cluster
          ? "+subscribe &__keyevent@0__:xadd"
          : "+psubscribe &__keyevent@*__:xadd";
        this.#tell(
          node,
          `the subscription was refused: "${error.message}"; the ACL user needs ${channel}`,
        );
      },
      onMode: (mode, flags) => {
        change(() => (sub.sends = mode === "on"));
        if (mode === "off") {
          this.#tell(
            node,
            `its notify-keyspace-events is ${JSON.stringify(flags)}; set it to include "Et" ` +
              `(CONFIG SET notify-keyspace-events Et) for notifications`,
          );
        } else if (mode === "unknown" && !this.#pool.cluster) {
          this.#tell(
            node,
            "CONFIG GET notify-keyspace-events was refused, so whether it sends them is not known",
          );
        }
      },
    });
    this.#subscribers.set(node, sub);
    this.#runs.push(sub.done);
  }

  /** Says once per master and reason (until notifications arrive) why it is swept only. */
  #tell(node: string, why: string): void {
    if (this.#told.get(node) === why) return;
    this.#told.set(node, why);
    if (node === "") {
      log.info(
        "The source sends no stream notifications ({why}): readers wait for new entries with reads blocked on the source over all their streams, which costs it more at many streams",
        { why },
      );
    } else {
      log.info(
        "Source master {node} sends no stream notifications ({why}): its new entries are found by sweeps every STREAM_POLL_INTERVAL",
        { node, why },
      );
    }
  }
}
