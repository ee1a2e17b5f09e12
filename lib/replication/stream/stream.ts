/**
 * One replicated stream's small state: where its copy stands, the entries
 * read ahead and not written yet, whether a write or a read of it is in
 * flight, and its status object for `status` and metrics. No I/O, no timer:
 * the reader, the writer, the acknowledger and the engine act on it.
 *
 * @module
 */
import { entryId, type RawEntry } from "../../redis/mod.ts";
import { packKeys, type StreamRef } from "./stream_ref.ts";
import { StreamLife, type StreamOutcome } from "./stream_life.ts";
import type { StreamStatus } from "./stream_status.ts";

export type { StreamOutcome, StreamState } from "./stream_life.ts";
export type { CopiedBatch, StreamStatus } from "./stream_status.ts";

/**
 * Memory an entry read ahead costs beyond its fields' bytes (its object, its
 * place in the buffer, its share of the read buffer's overhead), for the
 * budget of all streams together.
 */
const ENTRY_OVERHEAD = 160;

/**
 * The seams of every stream: one set, as an entry belongs to one stream (a
 * set per stream cost ~200 bytes each at 100,000 quiet streams).
 */
const SEAMS = new WeakSet<RawEntry>();

/**
 * The empty buffer and deleted IDs of every stream without any (64 bytes a stream otherwise),
 * frozen: a push into them throws; `push` and `addDeleted` make a stream's own.
 */
const NO_ENTRIES: RawEntry[] = Object.freeze([]) as unknown as RawEntry[];
const NO_IDS: string[] = Object.freeze([]) as unknown as string[];

/** One stream being replicated. */
export class ReplicatedStream {
  /** Which stream, and where it goes. */
  readonly ref: StreamRef;
  /** Its status object (updated in place). */
  readonly status: StreamStatus;
  /** Its state machine: the one place its state changes. */
  readonly life: StreamLife;
  /**
   * The target stream's last ID: XADD refuses anything not above it. It only
   * goes up, but when the target is found to have lost entries
   * ({@linkcode ReplicatedStream.targetLost}).
   */
  targetTop = "0-0";
  /**
   * The target's connection generation (reconnects) when `targetTop` was
   * last known right: after a reconnect the top is checked before the next
   * write (a restarted or failed-over target may hold less).
   */
  targetGeneration = 0;
  /**
   * Entries confirmed on the target that it lost: copied again from the
   * source (XRANGE after `from`, up to `to`) by the next recovery, before
   * anything else is written.
   */
  refill: { from: string; to: string } | undefined;
  /**
   * Entries after `after` up to `to` may have been passed by (its group
   * moved past them): the next recovery checks whether the first of them is
   * pending, and copies them from the source when it is not.
   */
  suspectedGap: { after: string; to: string } | undefined;
  /**
   * Where its consumer group stood when it started here (a group that
   * existed: made by someone else, or an earlier run); entries at or below
   * are never taken as passed by. Undefined: a group made by this start.
   */
  startDelivered: string | undefined;
  /**
   * The first entry of each delivery into the buffer (and the entry after a
   * batch put back): where two entries come from different reads, nothing
   * proves that no source entry lies between them (the writer asks the source).
   */
  readonly seams: WeakSet<RawEntry> = SEAMS;
  /** Entries read and not written yet, in ID order, from `head` on (none: the shared empty one). */
  buffer: RawEntry[] = NO_ENTRIES;
  /** Index of the first unwritten entry of `buffer`. */
  head = 0;
  /** Bytes of the entries from `head` on. */
  bufferedBytes = 0;
  /**
   * The highest ID taken into the buffer since it was last cleared (what is
   * written, being written or buffered is at or below it): entries are
   * taken only above it, so the buffer stays strictly increasing.
   */
  queuedTop = "0-0";
  /** IDs of pending entries found deleted from the source: acked with the next write (`addDeleted`). */
  deleted: string[] = NO_IDS;
  /** A write of this stream is in flight. */
  writing = false;
  /** Reads in flight that include this stream. */
  readsInFlight = 0;
  /** The last read returned a full batch: more is probably there. */
  hot = true;
  /**
   * A read of it was answered: its next reads ask for full batches (until
   * then, a first read asks for a few entries, so that thousands of new
   * streams, most of them small, share one read's memory).
   */
  probed = false;
  /**
   * The group's last delivered ID as this instance knows it (fenced reads
   * wait for entries after it with XREAD); undefined until known.
   */
  lastDelivered: string | undefined;
  /**
   * Re-read this consumer's own pending entries from this ID (with an ID
   * instead of ">") before new ones: a read whose reply was lost may have
   * delivered entries nobody received.
   */
  history: string | undefined;
  /** Entries delivered to this consumer whose XACK was not sent yet. */
  outstanding = 0;
  /** The group's pending entries must be taken over (claimed) before more is read. */
  needsRecovery = false;
  /** Own pending entries were found above what is outstanding once (confirmed at the next check). */
  suspectLoss = false;
  /** Its lease goes to another instance: no new reads, what was read is written. */
  handingOver = false;
  /** once mode: a read found nothing more for this stream. */
  drained = false;
  /** Consecutive failed writes (for the backoff). */
  failures = 0;
  /**
   * Entries its next write may carry: shrinks when the target refuses a
   * write for lack of memory (a smaller one may fit), grows back after
   * writes that succeed. Set by the writer.
   */
  writeCap = 0;
  /** The stream waits for a retry (ms since epoch) before its next write. */
  retryAt = 0;
  /** When its group maintenance is due next (ms since epoch). */
  maintenanceDue = 0;
  readonly #memory: { bytes: number };

  /**
   * @param memory bytes read ahead by all streams together (this stream's part is added and
   * taken away as its buffer changes).
   */
  constructor(ref: StreamRef, memory: { bytes: number } = { bytes: 0 }) {
    packKeys(ref); // kept while it runs: its key bytes in a shared block
    this.ref = ref;
    this.#memory = memory;
    this.status = {
      db: ref.db,
      key: ref.keyLabel,
      targetDb: ref.targetDb,
      target: ref.targetKeyLabel,
      state: "starting",
      copied: 0,
      skipped: 0,
      deleted: 0,
      batches: 0,
      recovered: 0,
      targetLosses: 0,
      refilled: 0,
      stalls: 0,
      lastCopiedId: "0-0",
      errors: 0,
    };
    this.life = new StreamLife(ref.label, this.status);
  }

  /** Resolves with how the stream ended. */
  get done(): Promise<StreamOutcome> {
    return this.life.done;
  }

  /** Whether it ended (caught up, stopped, in error, gone, skipped, released). */
  get ended(): boolean {
    return this.life.ended;
  }

  /** Whether it copies new entries now (not starting, recovering or ended). */
  get active(): boolean {
    return this.life.active;
  }

  /** Entries read and not written yet. */
  get buffered(): number {
    return this.buffer.length - this.head;
  }

  /** Appends entries read (in ID order). */
  push(entries: readonly RawEntry[], bytes: number): void {
    if (this.head > 0 && this.head === this.buffer.length) {
      this.buffer = NO_ENTRIES;
      this.head = 0;
    }
    if (entries.length > 0 && this.buffer === NO_ENTRIES) this.buffer = [];
    for (const entry of entries) this.buffer.push(entry);
    if (entries.length > 0) {
      this.queuedTop = this.#sameId(entryId(entries[entries.length - 1]));
      this.seams.add(entries[0]);
    }
    this.bufferedBytes += bytes;
    this.#memory.bytes += bytes + ENTRY_OVERHEAD * entries.length;
  }

  /** Takes up to `maxEntries` / `maxBytes` (at least one entry) from the buffer. */
  take(maxEntries: number, maxBytes: number): RawEntry[] {
    const start = this.head;
    let end = start;
    let bytes = 0;
    while (end < this.buffer.length && end - start < maxEntries) {
      const size = this.buffer[end].size;
      if (end > start && bytes + size > maxBytes) break;
      bytes += size;
      end++;
    }
    const batch = this.buffer.slice(start, end);
    this.head = end;
    this.bufferedBytes -= bytes;
    this.#memory.bytes -= bytes + ENTRY_OVERHEAD * (end - start);
    if (this.head === this.buffer.length) {
      this.buffer = NO_ENTRIES;
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Entries read and not written, IDs to ack with the next write, or a write in flight. */
  get inHand(): boolean {
    return this.buffered > 0 || this.deleted.length > 0 || this.writing;
  }

  /**
   * Nothing read is in hand any more (the buffer is empty, no write in
   * flight): entries delivered again below the last one taken in are
   * written again (the target confirms them and they are acked), not
   * dropped as in hand.
   */
  nothingInHand(): void {
    if (this.buffered === 0 && !this.writing) this.queuedTop = "0-0";
  }

  /** Puts a batch that could not be written back in front of the buffer. */
  unshift(batch: readonly RawEntry[]): void {
    if (batch.length === 0) return;
    let bytes = 0;
    for (const entry of batch) bytes += entry.size;
    const next = this.buffer[this.head];
    if (next !== undefined) this.seams.add(next);
    this.buffer = [...batch, ...this.buffer.slice(this.head)];
    this.head = 0;
    this.bufferedBytes += bytes;
    this.#memory.bytes += bytes + ENTRY_OVERHEAD * batch.length;
  }

  /**
   * Drops every entry read and not written, and the deleted IDs not acked
   * (they stay pending and are claimed again, in order); returns how many.
   */
  clearBuffer(): number {
    const dropped = this.buffered + this.deleted.length;
    this.#memory.bytes -= this.bufferedBytes + ENTRY_OVERHEAD * this.buffered;
    this.buffer = NO_ENTRIES;
    this.head = 0;
    this.bufferedBytes = 0;
    this.deleted = NO_IDS;
    this.queuedTop = "0-0";
    return dropped;
  }

  /** Pending entries found deleted from the source: acked with the next write. */
  addDeleted(ids: readonly string[]): void {
    if (ids.length === 0) return;
    if (this.deleted === NO_IDS) this.deleted = [];
    for (const id of ids) this.deleted.push(id);
  }

  /** The deleted IDs to ack with the write being made now; the stream has none left. */
  takeDeleted(): string[] {
    const deleted = this.deleted;
    this.deleted = NO_IDS;
    return deleted;
  }

  /**
   * A write of it finished: its counters move, and the entries it acks are
   * no longer outstanding. True when it acks entries deleted from the source.
   */
  recordWrite(
    result: { ids: readonly unknown[]; written: number; skipped: number; deleted: number },
  ): boolean {
    const s = this.status;
    s.copied += result.written;
    s.skipped += result.skipped;
    s.deleted += result.deleted;
    if (result.written > 0) {
      s.batches++;
      s.lastBatchAt = Date.now();
    }
    this.outstanding = Math.max(0, this.outstanding - result.ids.length);
    return result.deleted > 0;
  }

  /** `id` is on the target now. */
  advance(id: string, compare: (a: string, b: string) => number): void {
    if (compare(id, this.targetTop) > 0) this.targetTop = this.#sameId(id);
    if (compare(id, this.status.lastCopiedId) > 0) this.status.lastCopiedId = this.#sameId(id);
  }

  /**
   * `id`, or the equal string the stream holds already: a quiet stream's last delivered,
   * queued, target and copied IDs are one string, not four (~100 bytes a stream).
   */
  #sameId(id: string): string {
    if (id === this.lastDelivered) return this.lastDelivered;
    if (id === this.queuedTop) return this.queuedTop;
    if (id === this.targetTop) return this.targetTop;
    return id;
  }

  /**
   * The target holds less than was confirmed (its top is `found` now):
   * `targetTop` goes back down to it, and the range lost is to be copied
   * again (`refill`; widened when one is still to be done).
   */
  targetLost(found: string, compare: (a: string, b: string) => number): void {
    this.mustRefill(found, this.targetTop, compare);
    this.targetTop = found;
  }

  /** Entries after `after` up to `to` may have been passed by (joined with any suspicion still open). */
  suspectGap(after: string, to: string, compare: (a: string, b: string) => number): void {
    const g = this.suspectedGap;
    this.suspectedGap = {
      after: g && compare(g.after, after) < 0 ? g.after : after,
      to: g && compare(g.to, to) > 0 ? g.to : to,
    };
  }

  /** The source entries after `from` up to `to` are to be copied again (joined with any range still to do). */
  mustRefill(from: string, to: string, compare: (a: string, b: string) => number): void {
    const r = this.refill;
    this.refill = {
      from: r && compare(r.from, from) < 0 ? r.from : from,
      to: r && compare(r.to, to) > 0 ? r.to : to,
    };
  }

  /** Ends the stream (once): its state and `done` say how. */
  end(outcome: StreamOutcome, error?: string): void {
    if (this.ended) return;
    if (error !== undefined) this.status.lastError = error;
    this.clearBuffer();
    this.life.end(outcome);
  }
}
