/**
 * Taking over pending entries, and group maintenance. A stream recovers on
 * start, when an ack was lost, after a stale read, and when maintenance
 * finds entries pending for another consumer or lost for this one: its
 * reads stop, the write in flight ends, what it had read and not written is
 * dropped (still pending), and every pending entry of the group is claimed
 * (XAUTOCLAIM) and copied in ID order before it reads new entries again.
 * Maintenance looks at each stream once per STREAM_PENDING_CHECK_INTERVAL,
 * spread over the interval, many streams per pipeline.
 *
 * @module
 */
import { Backoff } from "../../backoff.ts";
import type { RecoverySettings } from "../../config/mod.ts";
import {
  ConnectionError,
  errorMessage,
  isRetriableError,
  LeaseLostError,
  StreamGoneError,
} from "../../errors.ts";
import { getLog } from "../../log.ts";
import { compareIds, type RawEntry, type RedisClient } from "../../redis/mod.ts";
import { LogDigest } from "../_log_digest.ts";
import { claimPending, readConsumers, removeConsumers } from "./group.ts";
import { highestRemoved, readSourceRange, unpendingGaps } from "./source_range.ts";
import type { ReadFence } from "../sharing/read_fence.ts";
import { Rotation } from "../rotation.ts";
import type { Scheduler } from "../scheduler.ts";
import type { ReplicatedStream, StreamOutcome } from "../stream/stream.ts";

const log = getLog("replicator");
/** Streams whose group maintenance looks at per STREAM_PENDING_CHECK_INTERVAL, at most. */
const MAINTAINED_PER_INTERVAL = 1000;

/** Pending entries claimed per XAUTOCLAIM (at least STREAM_BATCH_SIZE). */
const CLAIM_COUNT = 1000;
/** Claimed entries a stream may hold unwritten before claiming more. */
const CLAIM_AHEAD = 5000;

/** What recovery needs from the engine. */
export interface RecoveryOptions {
  /** The consumer group. */
  group: string;
  /** Entries per read (claims take at least as many). */
  batchSize: number;
  /** Recovery's settings. */
  recovery: RecoverySettings;
  /** The one timer. */
  scheduler: Scheduler;
  /** `run --once`: no periodic maintenance. */
  once: boolean;
  /** This instance's consumer name. */
  consumer: string;
  /**
   * With leases: claims check the stream's lease.
   * @default {undefined}
   */
  fence?: ReadFence;
  /** Hands claimed entries to the stream (to be written). */
  push(stream: ReplicatedStream, entries: RawEntry[], deleted: string[], bytes: number): void;
  /** Whether no read or write of the stream is in flight (asking its reader to let go). */
  quiet(stream: ReplicatedStream): boolean;
  /** Ends the stream. */
  end(stream: ReplicatedStream, outcome: StreamOutcome, error?: string): void;
  /** Recovery is over: read on. */
  resume(stream: ReplicatedStream): void;
}

/** Recovers streams and maintains their groups; see the module doc. */
export class Recovery {
  readonly #control: RedisClient;
  readonly #o: RecoveryOptions;
  readonly #running = new Set<ReplicatedStream>();
  /** Group maintenance's turns over the live streams. */
  #turns: Rotation<ReplicatedStream> | undefined;
  /** When maintenance last looked (ms since epoch; 0: never). */
  #lastMaintained = 0;
  readonly #waiters = new Map<ReplicatedStream, () => void>();
  #summary = { entries: 0, streams: [] as string[], timer: false };
  readonly #removedLog = new LogDigest(
    log,
    "info",
    (streams, name) =>
      `Removed consumer ${name} from the group of ${streams}: idle, nothing pending`,
    0,
  );
  readonly #movedLog = new LogDigest(
    log,
    "warning",
    (streams) =>
      `The consumer group of ${streams} was moved past entries the target does not hold (XGROUP SETID, or acked by another consumer); copying them from the source`,
    0,
  );
  readonly #pendingLog = new LogDigest(
    log,
    "warning",
    (streams) =>
      `Entries of ${streams} were delivered by a read whose reply was lost (pending, not in hand); re-reading them in order`,
    0,
  );
  readonly #refilledLog = new LogDigest(
    log,
    "warning",
    (streams) => `Copied again from the source what the target had lost of ${streams}`,
    0,
  );
  readonly #cleanupLog = new LogDigest(
    log,
    "warning",
    (streams, error) => `Could not remove idle consumers of ${streams}: ${error}`,
  );

  constructor(control: RedisClient, options: RecoveryOptions) {
    this.#control = control;
    this.#o = options;
  }

  /** Recovers `stream` (again, if it is recovering now: what is pending is claimed once more). */
  recover(stream: ReplicatedStream, _options: { reason: string }): void {
    if (stream.ended) return;
    stream.needsRecovery = true;
    if (this.#running.has(stream)) return;
    this.#running.add(stream);
    stream.life.on("recover");
    this.#run(stream).finally(() => this.#running.delete(stream));
  }

  /** Something changed for `stream` (a read or write ended, or it ended). */
  wake(stream: ReplicatedStream): void {
    const waiter = this.#waiters.get(stream);
    if (waiter) {
      this.#waiters.delete(stream);
      waiter();
    }
  }

  async #run(stream: ReplicatedStream): Promise<void> {
    const backoff = new Backoff(this.#o.recovery.retry);
    let recovered = 0;
    try {
      while (stream.needsRecovery && !stream.ended) {
        while (!this.#o.quiet(stream) && !stream.ended) await this.#wait(stream);
        if (stream.ended) return;
        stream.outstanding = Math.max(0, stream.outstanding - stream.clearBuffer());
        stream.needsRecovery = false;
        stream.history = undefined;
        // Entries the group may have passed by: copied from the source unless pending.
        if (stream.suspectedGap) await this.#checkGap(stream, backoff);
        // What the target lost is copied again first, from the source, in order.
        const refill = stream.refill;
        stream.refill = undefined;
        if (refill) await this.#refill(stream, refill, backoff);
        // Written first; then claims below what they brought are taken, not dropped as in hand.
        await this.#whileInHand(stream);
        if (stream.ended) return;
        if (stream.needsRecovery) continue;
        stream.nothingInHand();
        let cursor = "0-0";
        while (true) {
          while (stream.buffered >= CLAIM_AHEAD && !stream.ended) await this.#wait(stream);
          if (stream.ended || stream.needsRecovery) break;
          let claimed;
          try {
            claimed = await claimPending(this.#control, stream, {
              group: this.#o.group,
              consumer: this.#o.consumer,
              count: Math.max(this.#o.batchSize, CLAIM_COUNT),
              cursor,
              fence: this.#o.fence,
            });
          } catch (error) {
            // The same step again, after a pause: a claim that failed took nothing over.
            await this.#pause(stream, error, backoff);
            continue;
          }
          backoff.reset();
          cursor = claimed.cursor;
          recovered += claimed.entries.length;
          if (claimed.entries.length > 0 || claimed.deleted.length > 0) {
            // Pending entries need not be next to each other in the source: each is proven.
            for (const e of claimed.entries) stream.seams.add(e);
            this.#o.push(stream, claimed.entries, claimed.deleted, claimed.bytes);
          }
          if (cursor === "0-0") break;
        }
        // What was claimed is written before anything new is read.
        await this.#whileInHand(stream);
      }
      if (stream.ended) return;
      stream.life.on("recovered");
      if (recovered > 0) {
        stream.status.recovered += recovered;
        log.debug("Recovered {count} pending entries of {stream}", {
          count: recovered,
          stream: stream.ref.label,
        });
        this.#summarise(stream, recovered);
      }
      this.#o.resume(stream);
    } catch (error) {
      if (error instanceof StreamGoneError) this.#o.end(stream, "gone", error.message);
      else if (error instanceof LeaseLostError) this.#o.end(stream, "released", error.message);
      else this.#o.end(stream, "error", errorMessage(error));
    }
  }

  /** Waits while `stream` has entries read and not written (unless it ends or must recover). */
  async #whileInHand(stream: ReplicatedStream): Promise<void> {
    while (stream.inHand && !stream.ended && !stream.needsRecovery) await this.#wait(stream);
  }

  /**
   * Copies the entries of `range` (after `from`, up to `to`) that the
   * source still holds to the stream's buffer again, in pages, for the
   * writer; entries the source no longer holds are said lost. Interrupted
   * (the stream ended or must recover again), what is left is kept for the
   * next recovery.
   */
  async #refill(
    stream: ReplicatedStream,
    range: { from: string; to: string },
    backoff: Backoff,
  ): Promise<void> {
    // From what the target holds now (a write since may have gone further).
    let after = compareIds(range.from, stream.targetTop) > 0 ? range.from : stream.targetTop;
    let copied = 0;
    let first = true;
    while (true) {
      while (stream.buffered >= CLAIM_AHEAD && !stream.ended && !stream.needsRecovery) {
        await this.#wait(stream);
      }
      if (stream.ended) return;
      if (stream.needsRecovery) {
        // Its buffer is dropped again: from what the target holds now.
        const to = stream.refill && compareIds(stream.refill.to, range.to) > 0
          ? stream.refill.to
          : range.to;
        stream.refill = { from: stream.targetTop, to };
        return;
      }
      let page;
      try {
        if (first) await this.#sayTrimmed(stream, range);
        first = false;
        page = await readSourceRange(this.#control, stream.ref, {
          after,
          to: range.to,
          count: CLAIM_COUNT,
        });
      } catch (error) {
        await this.#pause(stream, error, backoff);
        continue;
      }
      backoff.reset();
      if (page.entries.length > 0) {
        copied += page.entries.length;
        after = page.entries[page.entries.length - 1].idText();
        this.#o.push(stream, page.entries, [], page.bytes);
      }
      if (page.entries.length < CLAIM_COUNT) break;
    }
    stream.status.refilled += copied;
    this.#refilledLog.add(stream.ref.label, "");
  }

  /**
   * Looks whether the first source entry of a suspected gap is pending
   * (delivered to a consumer: no gap) and, when it is not, has the range
   * from the target's top copied from the source first (said at WARNING).
   */
  async #checkGap(stream: ReplicatedStream, backoff: Backoff): Promise<void> {
    const gap = stream.suspectedGap!;
    stream.suspectedGap = undefined;
    while (!stream.ended) {
      try {
        const range = [{ stream, from: gap.after, to: gap.to }];
        const found = await unpendingGaps(this.#control, range, { group: this.#o.group });
        if (found.length > 0) {
          this.#movedLog.add(stream.ref.label, "");
          stream.mustRefill(stream.targetTop, gap.to, compareIds);
        } else this.#pendingLog.add(stream.ref.label, "");
        return;
      } catch (error) {
        await this.#pause(stream, error, backoff);
      }
    }
  }

  /**
   * Says when the source removed entries (trimmed, deleted) in a range the
   * target lost: those cannot be copied again (Redis >= 7 tells the highest
   * ID a stream ever removed).
   */
  async #sayTrimmed(stream: ReplicatedStream, range: { from: string; to: string }): Promise<void> {
    const removed = await highestRemoved(this.#control, stream.ref);
    if (removed === undefined || compareIds(removed, range.from) <= 0) return;
    log.warning(
      "Target stream {target} lost entries of {stream} after {from}, and the source removed (trimmed or deleted) entries up to {removed}: those the target held in that range cannot be copied again",
      { target: stream.ref.targetLabel, stream: stream.ref.label, from: range.from, removed },
    );
  }

  /** A step of a recovery failed: thrown on when retrying cannot help, else counted and waited out. */
  async #pause(stream: ReplicatedStream, error: unknown, backoff: Backoff): Promise<void> {
    if (!isRetriableError(error)) throw error;
    stream.status.errors++;
    stream.status.lastError = errorMessage(error);
    await this.#o.scheduler.sleep(backoff.next(error instanceof ConnectionError));
  }

  /** Waits for {@linkcode Recovery.wake} (a read or write of the stream ended). */
  #wait(stream: ReplicatedStream): Promise<void> {
    return new Promise((resolve) => this.#waiters.set(stream, resolve));
  }

  /** One INFO line for the recoveries of a moment, not one per stream. */
  #summarise(stream: ReplicatedStream, entries: number): void {
    this.#summary.entries += entries;
    this.#summary.streams.push(stream.ref.label);
    if (this.#summary.timer) return;
    this.#summary.timer = true;
    this.#o.scheduler.after(1000, () => {
      const { entries, streams } = this.#summary;
      this.#summary = { entries: 0, streams: [], timer: false };
      log.info("Recovered {count} pending entries of {streams}", {
        count: entries,
        streams: streams.length <= 3
          ? streams.join(", ")
          : `${streams.slice(0, 3).join(", ")} and ${streams.length - 3} more streams`,
      });
    });
  }

  /**
   * Group maintenance of the streams whose turn it is (each once per
   * STREAM_PENDING_CHECK_INTERVAL, spread over it; at most
   * {@linkcode MAINTAINED_PER_INTERVAL} per interval, so beyond 1,000 streams
   * each is looked at less often and the cost stays the same): entries pending for
   * another consumer are taken over, entries pending for this one beyond
   * what it holds (lost, found twice in a row) are claimed again, and other
   * consumers idle for STREAM_CONSUMER_IDLE_TIMEOUT with nothing pending are
   * removed.
   */
  async maintain(streams: ReadonlySet<ReplicatedStream>): Promise<void> {
    if (this.#o.once) return;
    const { group, recovery } = this.#o;
    const every = recovery.pendingCheckEveryMs;
    const now = Date.now();
    // A bounded rate, in turns: each call goes on from where the last stopped and looks only
    // until it has its share (at 100,000 streams nearly all are overdue: not a walk of all of
    // them every second).
    const elapsed = Math.min(every, this.#lastMaintained ? now - this.#lastMaintained : every);
    const budget = Math.max(1, Math.ceil(MAINTAINED_PER_INTERVAL * elapsed / every));
    if (this.#turns?.items !== streams) this.#turns = new Rotation(streams);
    const due = this.#turns.take(budget, (s) => {
      if (!s.active) return false;
      if (s.maintenanceDue !== 0) return s.maintenanceDue <= now && !this.#running.has(s);
      s.maintenanceDue = now + Math.random() * every; // its first turn, spread over the interval
      return false;
    });
    if (due.length === 0) return;
    this.#lastMaintained = now;
    for (const s of due) s.maintenanceDue = now + every;
    const expected = new Map(due.map((s) => [s, s.outstanding]));
    const consumers = await readConsumers(this.#control, due, { group });
    const removals: Array<{ stream: ReplicatedStream; name: string }> = [];
    const idleMs = recovery.consumerIdleMs;
    for (const [stream, list] of consumers) {
      if (list instanceof StreamGoneError) {
        this.#o.end(stream, "gone", list.message);
        continue;
      }
      if (list instanceof Error || stream.ended) continue; // tried again at its next turn
      const me = this.#o.consumer;
      const own = list.find((c) => c.name === me)?.pending ?? 0;
      if (list.some((c) => c.name !== me && c.pending > 0)) {
        this.recover(stream, { reason: "pending for other consumers" });
      } else if (own > (expected.get(stream) ?? 0)) {
        // Entries pending for this consumer that it does not hold: a read in flight may
        // explain it once; twice in a row, they are lost (a lost reply) and claimed again.
        if (stream.suspectLoss) this.recover(stream, { reason: "pending entries lost" });
        stream.suspectLoss = !stream.suspectLoss;
      } else stream.suspectLoss = false;
      for (const c of list) {
        if (c.name !== me && c.pending === 0 && c.idle >= idleMs) {
          removals.push({ stream, name: c.name });
        }
      }
    }
    if (removals.length === 0) return;
    const results = await removeConsumers(this.#control, removals, {
      group,
      fence: this.#o.fence,
    });
    removals.forEach(({ stream, name }, i) => {
      const r = results[i];
      // (A fenced removal answers 0 when it did not remove: entries pending now.)
      if (r?.status === "fulfilled") {
        if (!this.#o.fence || r.value === 1) this.#removedLog.add(stream.ref.label, name);
      } // Housekeeping only (e.g. the ACL user may not run XGROUP DELCONSUMER):
      // never a reason to stop copying; the next turn tries again.
      else if (r) this.#cleanupLog.add(stream.ref.label, errorMessage(r.reason));
    });
  }
}
