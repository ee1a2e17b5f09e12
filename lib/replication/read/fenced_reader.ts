/**
 * The fenced reader (leases: several instances share the streams): every
 * read is the fenced XREADGROUP (the leases checked and the entries taken
 * in one script), and when no stream has a backlog it waits with `XREAD
 * COUNT 1 BLOCK` from each stream's last delivered ID, which takes nothing:
 * a read left blocked on the server by a paused instance delivers no entry
 * to it. The streams that wait names are read next, through the fence.
 * Every {@linkcode FENCED_SWEEP_MS} (or 5 ms per stream, when longer: many
 * streams; at most 30 s) it sweeps: reads some of its streams through the
 * fence, in turns (XREAD does not wake for a deleted or retyped key, nor
 * for entries below where the group was moved back; the read finds them).
 * The sweeps of all readers together read at most
 * {@linkcode FENCED_SWEEP_RATE} streams a second, each reader its share by
 * its number of streams, and at most {@linkcode SWEEP_STREAMS} at once: so
 * the idle cost of the sweeps does not grow with the number of streams, and
 * each stream is swept every `max(5 s, streams / 200 s)` or so (at most
 * `ceil(streams of the reader / 200)` sweeps of it). When the source's
 * notifications reach it, its wait sleeps here instead (a notification
 * names the stream, read through the fence next), and the XREAD is sent
 * without BLOCK when the block would have ended.
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import {
  encodeWaitRead,
  parseFlatMap,
  type RedisConnection,
  text,
  wokenKeys,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { streamId } from "../stream/stream_ref.ts";
import { groupBy } from "../_group_by.ts";
import { fencedRead, type ReadCommand } from "./_read_command.ts";
import { RefusedRead } from "./_read_replies.ts";
import { StreamReader } from "./reader.ts";
import { MAX_WAIT_MS, WAIT_MS_PER_STREAM } from "./_wait_plan.ts";
import { LOOK_KEYS_PER_READ } from "./_next_pass.ts";

/** A fenced reader sweeps (reads streams without waiting) this often, at least. */
export const FENCED_SWEEP_MS = 5000;
/**
 * Streams one sweep reads, at most: with more, in turns (so a sweep costs
 * the same; and the read-ahead memory a sweep reserves, a batch a stream,
 * stays well within the budget all readers share).
 */
export const SWEEP_STREAMS = 200;
/** Streams the sweeps of all readers read per second together, at most. */
export const FENCED_SWEEP_RATE = 200;
/** A wait over this many streams or more lets the writes of the streams it woke go first. */
export const WRITES_FIRST_KEYS = 1000;
/** How long a wait lets those writes go first, at most (ms). */
export const WRITES_FIRST_MS = 50;

/** Reads through the leases' fence; waits with an XREAD that takes nothing. */
export class FencedReader extends StreamReader {
  protected override readonly waitTakesNothing = true;
  /** When it last swept (ms since epoch). */
  #lastSweep = 0;
  /** How long the last wait blocked, or would have (ms): with notifications, how often it looks. */
  #waitMs = 0;

  protected override command(): ReadCommand {
    return fencedRead(this.options.fence!);
  }

  protected async quiet(wanting: () => ReplicatedStream[]): Promise<void> {
    // Longer than 5 s only for many streams (a sweep's cost), whatever STREAM_POLL_INTERVAL.
    const period = Math.max(
      FENCED_SWEEP_MS,
      Math.min(MAX_WAIT_MS, this.load * WAIT_MS_PER_STREAM),
    );
    if (Date.now() - this.#lastSweep >= period) {
      this.#lastSweep = Date.now();
      const most = this.#sweepShare(period);
      return this.readNow(wanting(), false, { turn: "fenced sweep", most });
    }
    const notifications = this.options.notifications?.() ?? false;
    if (notifications && !(await this.wake.lookDue(Math.min(this.#waitMs, period)))) return;
    const { db, streams, blockMs } = this.nextDb(wanting());
    this.#waitMs = Math.min(blockMs, period);
    if (!notifications) {
      if (streams.length >= WRITES_FIRST_KEYS) await this.#writesFirst();
      return this.#wait(db, streams, this.#waitMs);
    }
    // The same XREAD without BLOCK, in parts (the source is not held by 10,000 keys at once).
    for (let i = 0; i < streams.length; i += LOOK_KEYS_PER_READ) {
      await this.#wait(db, streams.slice(i, i + LOOK_KEYS_PER_READ));
    }
  }

  /**
   * While some streams have a backlog, the others (the next in turn) are
   * looked at with an XREAD that takes nothing (no script, no lease check);
   * those it names are read through the fence next, like a wait's.
   */
  protected override async lookAtOthers(others: ReplicatedStream[]): Promise<void> {
    for (const [db, streams] of groupBy(others, (s) => s.ref.db)) await this.#wait(db, streams);
  }

  /**
   * Before a wait over many streams is sent again after a wake-up, the
   * writes of the streams it woke go first (at most
   * {@linkcode WRITES_FIRST_MS}): the source serves one command at a time,
   * and a write's continuity check waited behind the wait's thousands of
   * keys (sent right after the read; 10-40 ms at 11,000 keys). Nothing is
   * missed meanwhile: the wait reads from each stream's last delivered ID,
   * and returns at once for entries that came since. Woken early (a poke),
   * it waits no longer.
   */
  async #writesFirst(): Promise<void> {
    const woken = this.takeReadWoken();
    const until = Date.now() + WRITES_FIRST_MS;
    if (woken.some((s) => s.inHand && !s.ended) && Date.now() < until) {
      await this.wake.sleep(until - Date.now()); // the end of a write pokes this reader
    }
  }

  /** Streams this reader's sweep reads: its share (by streams) of the rate over `periodMs`. */
  #sweepShare(periodMs: number): number {
    const mine = this.load;
    const all = Math.max(mine, this.options.placed?.() ?? mine);
    const share = Math.ceil((FENCED_SWEEP_RATE * periodMs / 1000) * mine / all);
    return Math.max(1, Math.min(SWEEP_STREAMS, share));
  }

  /**
   * Waits with XREAD (taking nothing) for entries of `streams` after their
   * last delivered IDs (loaded first where unknown; without `blockMs` it
   * only looks), and marks those that have some as hot: the next pass reads them through the fence. The
   * streams count as read in flight meanwhile.
   */
  async #wait(db: number, streams: ReplicatedStream[], blockMs?: number): Promise<void> {
    try {
      const unknown = streams.filter((s) => s.lastDelivered === undefined);
      if (unknown.length > 0) {
        await loadLastDelivered(this.conn, db, { streams: unknown, group: this.options.group });
      }
      for (const s of streams) s.readsInFlight++;
      try {
        // Blocking (unblockable) only from the XREAD on, not while its IDs are loaded.
        if (blockMs !== undefined) this.wake.blockStarted();
        const [reply] = await this.conn.batch(
          db,
          1,
          (w) =>
            encodeWaitRead(w, streams.map((s) => s.ref.key), {
              ids: streams.map((s) => s.lastDelivered ?? "$"),
              blockMs,
            }),
          { buffers: true, blockMs: blockMs ?? 0, name: "XREAD" },
        );
        if (reply instanceof RedisReplyError) throw new RefusedRead(reply, [...streams]);
        for (const key of wokenKeys(reply)) {
          const stream = this.byId.get(streamId(db, key));
          if (stream) {
            stream.hot = true;
            this.woken.add(stream);
          }
        }
      } finally {
        for (const s of streams) if (--s.readsInFlight === 0) this.hooks.idle(s);
      }
    } finally {
      this.wake.blockEnded();
    }
  }
}

/**
 * Loads the group's last delivered ID of `streams` (XINFO GROUPS, one
 * pipeline); streams whose group or key is gone keep none (their next
 * fenced read tells).
 */
export async function loadLastDelivered(
  conn: RedisConnection,
  db: number,
  options: { streams: readonly ReplicatedStream[]; group: string },
): Promise<void> {
  const { streams, group } = options;
  const replies = await conn.pipeline(db, streams.map((s) => ["XINFO", "GROUPS", s.ref.key]));
  replies.forEach((r, i) => {
    if (r.status !== "fulfilled" || !Array.isArray(r.value)) return;
    for (const g of r.value) {
      const info = parseFlatMap(g);
      if (text(info.get("name")) === group) {
        streams[i].lastDelivered = text(info.get("last-delivered-id"));
      }
    }
  });
}
