/**
 * Keyspace notifications of one server: a subscriber connection on
 * `__keyevent@0__:<event>` (or, with `allDbs`, `__keyevent@*__:<event>`)
 * that hands every key named to a callback. The
 * subscription is renewed whenever its connection was reopened (each
 * renewal is a gap: notifications may have been missed meanwhile), a PING
 * keeps a hung connection from going unnoticed, and the server's
 * `notify-keyspace-events` is read now and then to tell whether it sends
 * the event at all. Notifications are fire-and-forget: a caller keeps its
 * own sweep as the safety net.
 *
 * @module
 */
import { Backoff, sleep } from "../backoff.ts";
import { isRetriableError, RedisReplyError } from "../errors.ts";
import type { RedisConnection } from "./connection.ts";

/** PING on the subscriber this often (ms); a hung one is closed after the command timeout. */
const KEEPALIVE_MS = 2000;
/**
 * `notify-keyspace-events` is read again this often (ms): it may be changed at run time, and
 * a reader that relies on the notifications goes back to blocking waits within this when
 * they are switched off.
 */
export const KEY_EVENTS_RECHECK_MS = 5000;
/** A subscription the server refused (an ACL without the channel) is tried again this often (ms). */
const REFUSED_RETRY_MS = 60_000;

/** Whether a server sends the event: yes, no, or unknown (CONFIG GET refused). */
export type KeyEventsMode = "on" | "off" | "unknown";

/** Options for {@linkcode watchKeyEvents}. */
export interface KeyEventsOptions {
  /** The event, e.g. `xadd`. */
  event: string;
  /** Called after each (re)subscription: notifications may have been missed before it. */
  onGap: () => void;
  /**
   * Called when the subscription was found lost (its connection failed): notifications are
   * missed until the next `onGap`.
   * @default {undefined}
   */
  onLost?: () => void;
  /**
   * The server refused the subscription (e.g. `NOPERM`: the ACL user lacks the channel); tried
   * again every minute.
   * @default {undefined}
   */
  onRefused?: (error: RedisReplyError) => void;
  /**
   * Every DB's events (`PSUBSCRIBE __keyevent@*__:<event>`), not DB 0's only.
   * @default {false}
   */
  allDbs?: boolean;
  /** Called when the server's `notify-keyspace-events` was read (or could not be). */
  onMode: (mode: KeyEventsMode, flags: string) => void;
  /** A connection to the same server for CONFIG GET (a subscribed connection cannot send it). */
  control: RedisConnection;
  /** Stops the watch. */
  signal: AbortSignal;
}

/**
 * Whether the flags of `notify-keyspace-events` send `__keyevent@*__:<event>`
 * for a stream command (`E` with `t` or `A`).
 */
export function sendsStreamEvents(flags: string): boolean {
  return flags.includes("E") && (flags.includes("t") || flags.includes("A"));
}

/** The key a keyspace event message names (a copy), and its DB. */
export interface KeyEvent {
  db: number;
  key: Uint8Array;
}

const CHANNEL_DB = /^__keyevent@(\d+)__:/;
const DECODER = new TextDecoder();

/**
 * The key (a copy) and DB a keyspace event message names, for the subscriber's
 * `onPush`: `["message", channel, key]` or `["pmessage", pattern, channel, key]`.
 */
export function keyEventOf(message: unknown[]): KeyEvent | undefined {
  const [channel, key] = message.length === 4 ? [message[2], message[3]] : [message[1], message[2]];
  if (!(key instanceof Uint8Array) || !(channel instanceof Uint8Array)) return undefined;
  const db = CHANNEL_DB.exec(DECODER.decode(channel.subarray(0, 32)))?.[1];
  return db === undefined ? undefined : { db: Number(db), key: key.slice() };
}

/**
 * Keeps `conn` subscribed to `__keyevent@0__:<event>` (with `allDbs`, every
 * DB's) until the signal aborts, then closes it. `conn` must be a
 * subscriber's connection (made with an `onPush` that reads
 * {@linkcode keyEventOf}). Never throws: failures are retried with backoff.
 */
export function watchKeyEvents(conn: RedisConnection, options: KeyEventsOptions): Promise<void> {
  return keepSubscribed(
    conn,
    `__keyevent@${options.allDbs ? "*" : "0"}__:${options.event}`,
    options,
  );
}

async function keepSubscribed(
  conn: RedisConnection,
  channel: string,
  options: KeyEventsOptions,
): Promise<void> {
  const { signal } = options;
  const backoff = new Backoff({ baseMs: 200, maxMs: 5000 });
  let generation = -1;
  let checked = 0;
  const close = () => conn.close();
  signal.addEventListener("abort", close, { once: true });
  try {
    while (!signal.aborted) {
      try {
        if (Date.now() - checked >= KEY_EVENTS_RECHECK_MS || generation !== conn.generation) {
          checked = Date.now();
          await readMode(options);
        }
        if (generation !== conn.generation) {
          // A new socket: not subscribed yet.
          if (generation !== -1) options.onLost?.();
          generation = -1;
          await conn.send(undefined, [options.allDbs ? "PSUBSCRIBE" : "SUBSCRIBE", channel]);
          generation = conn.generation;
          options.onGap();
        } else {
          await conn.send(undefined, ["PING"]);
        }
        backoff.reset();
        await sleep(KEEPALIVE_MS, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (generation !== -1) options.onLost?.();
        generation = -1;
        // A refusal (NOPERM...) is tried again in a minute; a transient reply (BUSY during a
        // long script, LOADING...) is an outage like a lost connection: backoff.
        const refused = error instanceof RedisReplyError && !isRetriableError(error);
        if (refused) options.onRefused?.(error);
        await sleep(refused ? REFUSED_RETRY_MS : backoff.next(), signal);
      }
    }
  } finally {
    signal.removeEventListener("abort", close);
  }
}

/** Reads `notify-keyspace-events` on the control connection (a subscribed one cannot). */
async function readMode(options: KeyEventsOptions): Promise<void> {
  try {
    const reply = await options.control.send(undefined, [
      "CONFIG",
      "GET",
      "notify-keyspace-events",
    ]);
    const flags = Array.isArray(reply) ? String(reply[1] ?? "") : "";
    options.onMode(sendsStreamEvents(flags) ? "on" : "off", flags);
  } catch (error) {
    // Transient (BUSY, LOADING...): not a refusal of CONFIG GET; the watch backs off.
    if (!(error instanceof RedisReplyError) || isRetriableError(error)) throw error;
    options.onMode("unknown", "");
  }
}
