/**
 * Keyspace notifications of one server: a subscriber connection on
 * `__keyevent@0__:<event>` that hands every key named to a callback. The
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
import { RedisReplyError } from "../errors.ts";
import type { RedisConnection } from "./connection.ts";

/** PING on the subscriber this often (ms); a hung one is closed after the command timeout. */
const KEEPALIVE_MS = 2000;
/** `notify-keyspace-events` is read again this often (ms): it may be changed at run time. */
const RECHECK_MS = 30_000;

/** Whether a server sends the event: yes, no, or unknown (CONFIG GET refused). */
export type KeyEventsMode = "on" | "off" | "unknown";

/** Options for {@linkcode watchKeyEvents}. */
export interface KeyEventsOptions {
  /** The event, e.g. `xadd`. */
  event: string;
  /** Called after each (re)subscription: notifications may have been missed before it. */
  onGap: () => void;
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

/** The key a keyspace event message names (a copy), for the subscriber's `onPush`. */
export function keyEventKey(message: unknown[]): Uint8Array | undefined {
  const key = message[2];
  return key instanceof Uint8Array ? key.slice() : undefined;
}

/**
 * Keeps `conn` subscribed to `__keyevent@0__:<event>` until the signal
 * aborts, then closes it. `conn` must be a subscriber's connection (made
 * with an `onPush` that reads {@linkcode keyEventKey}). Never throws:
 * failures are retried with backoff.
 */
export function watchKeyEvents(conn: RedisConnection, options: KeyEventsOptions): Promise<void> {
  return keepSubscribed(conn, `__keyevent@0__:${options.event}`, options);
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
        if (Date.now() - checked >= RECHECK_MS || generation !== conn.generation) {
          checked = Date.now();
          await readMode(options);
        }
        if (generation !== conn.generation) {
          // A new socket: not subscribed yet.
          await conn.send(undefined, ["SUBSCRIBE", channel]);
          generation = conn.generation;
          options.onGap();
        } else {
          await conn.send(undefined, ["PING"]);
        }
        backoff.reset();
        await sleep(KEEPALIVE_MS, signal);
      } catch {
        if (signal.aborted) return;
        generation = -1;
        await sleep(backoff.next(), signal);
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
    if (!(error instanceof RedisReplyError)) throw error;
    options.onMode("unknown", "");
  }
}
