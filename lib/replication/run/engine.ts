/**
 * The replication engine: the life of every stream, from its start (group,
 * target top and pending entries, for all new streams in pipelines) through
 * reading, writing and acknowledging (event-driven: what a reader delivers
 * is written in the same tick, what the target confirmed is acked in the
 * next) to its end. Recovery and group maintenance are in `recovery.ts`.
 *
 * @module
 */
import type { ReplicationSettings } from "../../config/mod.ts";
import { errorMessage, StreamGoneError } from "../../errors.ts";
import { Healer } from "./healer.ts";
import { getLog } from "../../log.ts";
import { compareIds, entryId, type RawEntry } from "../../redis/mod.ts";
import { Acknowledger } from "../group/acker.ts";
import { goneOr } from "../group/group.ts";
import { pendingBeside } from "../group/pending.ts";
import { prepareStart } from "./stream_start.ts";
import { Placement } from "../read/placement.ts";
import { Recovery } from "../group/recovery.ts";
import type { ReaderHooks } from "../read/read_hooks.ts";
import { ReplicatedStream, type StreamOutcome } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { TargetWriter } from "../write/writer.ts";
import { describeWrite, type WriterHooks } from "../write/write_hooks.ts";
import { ReadAhead } from "../read/read_ahead.ts";
import type { StreamTable } from "./stream_table.ts";
import type { EngineOptions } from "./engine_hooks.ts";

export type { EngineHooks, EngineOptions } from "./engine_hooks.ts";

const log = getLog("replicator");

/** How often a stream being handed over is looked at until its writes are done. */
const HAND_OVER_POLL_MS = 50;

/** The streams being replicated, and the machinery that moves their entries. */
export class ReplicationEngine {
  readonly #settings: ReplicationSettings;
  readonly #o: EngineOptions;
  readonly #writer: TargetWriter;
  /** Who waits for the write in flight of an ended stream to be answered. */
  readonly #writeEnds = new Map<ReplicatedStream, () => void>();
  readonly #acker: Acknowledger;
  readonly #placement: Placement;
  readonly #recovery: Recovery;
  readonly #readAhead: ReadAhead;
  /** The one table of this instance's streams (the engine tells it what it made and what ended). */
  readonly #table: StreamTable;
  #stopping = false;
  #warnedDeleted = new Set<ReplicatedStream>();
  readonly #healer: Healer;

  constructor(settings: ReplicationSettings, options: EngineOptions) {
    this.#settings = settings;
    this.#o = options;
    this.#table = options.table;
    const { group, batchSize, write } = settings;
    // A reader refused room waits until there is some again: woken then, not by a write that
    // may never come (quiet streams bring nothing to write).
    this.#readAhead = new ReadAhead(batchSize, { onRoom: () => this.#placement.roomIsBack() });
    this.#writer = new TargetWriter(options.target, this.#writerHooks(), {
      scheduler: options.scheduler,
      source: options.control,
      minWriteEntries: write.minWriteEntries,
      targetMaxlen: write.targetMaxlen,
      targetTrims: write.targetTrims,
      waitReplicas: write.waitReplicas,
      waitTimeoutMs: write.waitTimeoutMs,
      backoffBaseMs: write.retry.baseMs,
      backoffMaxMs: write.retry.maxMs,
      maxRetries: write.retry.immediateRetries,
      targetGeneration: options.targetGeneration,
      onError: (stream, kind) => options.hooks.onError?.(stream.ref, kind),
    });
    this.#acker = new Acknowledger(options.control, group, {
      acked: () => {},
      failed: (stream, error) => this.#ackFailed(stream, error),
    });
    this.#placement = new Placement(options.readers, options.control, {
      group,
      batchSize,
      read: settings.read,
      consumer: options.consumer,
      fence: options.fence,
      once: options.once,
      hooks: this.#readerHooks(),
      onReadError: options.hooks.onReadError,
      signal: options.readSignal,
    });
    this.#healer = new Healer({
      target: options.target,
      recover: (stream, reason) => this.#recovery.recover(stream, { reason }),
      onTargetLoss: options.hooks.onTargetLoss,
    });
    this.#recovery = new Recovery(options.control, {
      group,
      batchSize,
      recovery: settings.recovery,
      consumer: options.consumer,
      fence: options.fence,
      scheduler: options.scheduler,
      once: options.once,
      push: (stream, entries, deleted, bytes) => this.#deliver(stream, entries, deleted, bytes),
      quiet: (stream) => this.#quiet(stream),
      end: (stream, outcome, error) => this.#end(stream, outcome, error),
      resume: (stream) => this.#resume(stream),
    });
  }

  /** The readers' loops (they end once the read signal aborts). */
  get readers(): Promise<void>[] {
    return this.#placement.runs;
  }

  /**
   * Starts replicating `refs`: creates their groups and loads their targets'
   * last IDs (in pipelines), then takes over what is pending and reads on.
   * Resolves once they are placed on readers; what each did so far is in
   * the returned summary.
   */
  async start(
    refs: readonly StreamRef[],
    options: { startId: (ref: StreamRef) => string },
  ): Promise<{ created: number; streams: ReplicatedStream[] }> {
    const streams = refs.map((ref) => new ReplicatedStream(ref, this.#readAhead.memory));
    // Their target tops are loaded now: known right at this generation of the target's connections.
    const generation = this.#o.targetGeneration?.() ?? 0;
    for (const s of streams) s.targetGeneration = generation;
    this.#table.made(streams);
    try {
      return await this.#start(streams, options);
    } catch (error) {
      // None of them runs (a server failed under the start): forgotten, started again later.
      for (const s of streams) if (!this.#placement.readerOf(s)) this.#table.unmade(s);
      throw error;
    }
  }

  async #start(
    streams: ReplicatedStream[],
    options: { startId: (ref: StreamRef) => string },
  ): Promise<{ created: number; streams: ReplicatedStream[] }> {
    const { created, refused, ready } = await prepareStart(this.#o.control, streams, {
      group: this.#settings.group,
      autoCreate: this.#settings.autoCreateGroups,
      startId: (s) => options.startId(s.ref),
      target: this.#o.target.client(0),
    });
    for (const { stream, outcome, error } of refused) this.#end(stream, outcome, error);
    const started = [...ready.keys()].filter((s) => !s.ended);
    // Streams with nothing pending in the group (the common case, and every new one) read
    // at once; the others take over what is pending first.
    for (const s of started) this.#placement.place(s);
    for (const s of started) {
      if (s.ended) continue; // ended meanwhile (stopped, gone): it stays ended
      if (ready.get(s) === 0) {
        s.life.on("reading");
        this.#resume(s);
      } else this.#recovery.recover(s, { reason: "start" });
    }
    return { created, streams };
  }

  /** The stats found `stream`'s target below what was confirmed: see {@linkcode Healer.checkTarget}. */
  checkTarget(stream: ReplicatedStream): void {
    this.#healer.checkTarget(stream);
  }

  /** The watchdog found `stream` stalled: read at once the first time, then recovered. */
  nudge(stream: ReplicatedStream, strike: number): void {
    if (stream.ended) return;
    if (strike >= 2) return this.#recovery.recover(stream, { reason: "stalled" });
    stream.hot = true;
    this.#placement.readerOf(stream)?.poke();
  }

  /** The stats found `stream`'s group ahead of its target: see {@linkcode Healer.checkGroupGap}. */
  checkGroupGap(stream: ReplicatedStream, delivered: string): void {
    this.#healer.checkGroupGap(stream, delivered);
  }

  /** Group maintenance of a slice of the streams (called by the orchestrator's timer). */
  maintain(): Promise<void> {
    return this.#recovery.maintain(this.#table.live());
  }

  /**
   * Shutdown: no new writes; resolves once the writes in flight and their
   * acks are done (the caller bounds the wait with its grace period).
   */
  async finish(): Promise<void> {
    this.#stopping = true;
    await this.#writer.whenIdle();
    await this.#acker.whenIdle();
  }

  /** Resolves once every ack sent so far was answered. */
  acksDone(): Promise<void> {
    return this.#acker.whenIdle();
  }

  /**
   * Ends `stream` at once: its lease is another instance's (what it read and
   * did not write stays pending, for the new holder to claim).
   */
  release(stream: ReplicatedStream): void {
    this.#end(stream, "released", "its lease is held by another instance");
  }

  /**
   * Ends `stream` once what it read is written and acked (no new reads), or
   * after `timeoutMs`: its lease goes to another instance next.
   */
  async handOver(stream: ReplicatedStream, timeoutMs: number): Promise<void> {
    stream.handingOver = true;
    this.#placement.readerOf(stream)?.poke(stream);
    const deadline = Date.now() + timeoutMs;
    while (!stream.ended && Date.now() < deadline) {
      const idle = stream.readsInFlight === 0 && !stream.writing && stream.buffered === 0 &&
        stream.deleted.length === 0 && !stream.needsRecovery &&
        stream.life.state !== "recovering";
      if (idle) {
        await this.#acker.whenStreamIdle(stream);
        break;
      }
      await this.#o.scheduler.sleep(HAND_OVER_POLL_MS);
    }
    this.#end(stream, "released", "handed over to another instance");
  }

  /** Ends every stream still running as "stopped"; acks not sent are dropped (still pending). */
  stopAll(): void {
    this.#acker.close();
    for (const s of [...this.#table.live()]) this.#end(s, "stopped");
  }

  #readerHooks(): ReaderHooks {
    return {
      deliver: (stream, entries, deleted, bytes) => {
        // A read that ended as the stream's recovery began brings entries it must not take:
        // they stay pending, and the recovery claims them, in order after what it copies first.
        if (stream.active) this.#deliver(stream, entries, deleted, bytes);
      },
      drained: (stream) => this.#drained(stream),
      passedBy: (stream, after, to) => this.#healer.passedBy(stream, after, to),
      gone: (stream, error) => this.#end(stream, "gone", error.message),
      lost: (stream) => this.release(stream),
      failed: (stream, error) => this.#end(stream, "error", errorMessage(error)),
      idle: (stream) => {
        this.#table.readsOver(stream);
        this.#recovery.wake(stream);
      },
      wants: (stream) => this.#wants(stream),
      budget: this.#readAhead,
    };
  }

  #writerHooks(): WriterHooks {
    return {
      canWrite: (stream) => !this.#stopping && !stream.ended && stream.life.state !== "starting",
      written: (stream, result) => {
        log.debug(
          "Wrote {stream}: {written} written, {skipped} already there, {first}..{last}, {bytes} bytes, {ms} ms",
          () => describeWrite(stream, result),
        );
        if (stream.recordWrite(result) && !this.#warnedDeleted.has(stream)) {
          this.#warnedDeleted.add(stream);
          log.warning(
            "{count} pending entries of {stream} were deleted from the source before they were copied; acked",
            { count: result.deleted, stream: stream.ref.label },
          );
        }
        this.#acker.ack(stream, result.ids);
        this.#o.hooks.onBatch?.(stream.ref, result); // its entries too: the delay metric reads their IDs
        this.#afterWrite(stream);
      },
      stopped: (stream, error) => {
        this.#end(stream, error instanceof StreamGoneError ? "gone" : "error", error.message);
        this.#recovery.wake(stream);
      },
      released: (stream) => {
        this.#writeEnds.get(stream)?.();
        this.#recovery.wake(stream);
        this.#afterWrite(stream);
      },
      staleReadsPossible: (stream) => this.#placement.readerOf(stream)?.staleReadsPossible ?? false,
      deliveredElsewhere: async (stream, batch) => {
        // The acks of earlier writes first, so that only this write's entries are pending
        // above the target's top.
        await this.#acker.whenStreamIdle(stream);
        return pendingBeside(this.#o.control, stream, batch, {
          group: this.#settings.group,
          consumer: this.#o.consumer,
        });
      },
      targetLost: (stream, error) => this.#healer.targetLost(stream, error),
      passedBy: (stream, after, to) => this.#healer.passedBy(stream, after, to),
      rewind: (stream) => {
        log.warning(
          "Entries of {stream} were delivered by a read whose reply was lost; re-reading them in order",
          { stream: stream.ref.label },
        );
        this.#recovery.recover(stream, { reason: "stale read" });
      },
    };
  }

  /** Whether `stream` should be read now. */
  #wants(stream: ReplicatedStream): boolean {
    if (!stream.active || stream.needsRecovery || this.#stopping || stream.handingOver) {
      return false;
    }
    if (this.#o.once && stream.drained) return false;
    return this.#readAhead.hasRoom(stream);
  }

  #deliver(stream: ReplicatedStream, entries: RawEntry[], deleted: string[], bytes: number): void {
    if (stream.ended) return; // still pending: the next start takes it over
    if (entries.length > 0 && compareIds(entryId(entries[0]), stream.queuedTop) <= 0) {
      // The buffer stays strictly increasing: a re-read of this consumer's own pending
      // entries (after a failed read) brings again those already in hand (written, being
      // written or read ahead); their first copy is written and acked.
      const again = entries.length;
      entries = entries.filter((e) => compareIds(entryId(e), stream.queuedTop) > 0);
      bytes = 0;
      for (const e of entries) bytes += e.size;
      log.debug("{count} entries of {stream} delivered again while in hand; kept once", {
        count: again - entries.length,
        stream: stream.ref.label,
      });
    }
    stream.outstanding += entries.length + deleted.length;
    if (entries.length > 0) this.#readAhead.push(stream, entries, bytes);
    stream.addDeleted(deleted);
    this.#writer.schedule(stream);
  }

  #drained(stream: ReplicatedStream): void {
    stream.drained = true;
    this.#maybeCaughtUp(stream);
  }

  /** After a write ended: more to write, room to read again, or (once mode) caught up. */
  #afterWrite(stream: ReplicatedStream): void {
    if (stream.ended) return;
    if (this.#wants(stream)) this.#placement.readerOf(stream)?.poke(stream);
    // The other readers only when one was refused room: waking them all after every write
    // would send their waits (thousands of quiet streams) again each time.
    this.#readAhead.wakeIfRoom();
    this.#maybeCaughtUp(stream);
  }

  #maybeCaughtUp(stream: ReplicatedStream): void {
    if (!this.#o.once || !stream.drained || stream.ended) return;
    if (stream.life.state !== "replicating" || stream.needsRecovery) return;
    if (stream.buffered > 0 || stream.writing || stream.deleted.length > 0) return;
    this.#end(stream, "caught-up");
  }

  #ackFailed(stream: ReplicatedStream, error: unknown): void {
    const mapped = goneOr(stream, error);
    if (mapped instanceof StreamGoneError) {
      this.#end(stream, "gone", mapped.message);
      return;
    }
    // The entries are on the target and still pending: taken over again and acked.
    stream.status.errors++;
    stream.status.lastError = errorMessage(error);
    this.#recovery.recover(stream, { reason: "ack failed" });
  }

  /** Resolves once no read or write of `stream` is in flight. */
  #quiet(stream: ReplicatedStream): boolean {
    if (stream.readsInFlight > 0) this.#placement.readerOf(stream)?.poke(stream);
    return stream.readsInFlight === 0 && !stream.writing;
  }

  /** Once the write in flight of `stream` (ended) and then its acks are answered. */
  async #settled(stream: ReplicatedStream): Promise<void> {
    while (stream.writing) {
      await new Promise<void>((resolve) => this.#writeEnds.set(stream, resolve));
      this.#writeEnds.delete(stream);
    }
    await this.#acker.whenStreamIdle(stream); // those of its last write too (queued with it)
  }

  /** After recovery: read on. */
  #resume(stream: ReplicatedStream): void {
    this.#placement.readerOf(stream)?.poke(stream);
    if (stream.buffered > 0 || stream.deleted.length > 0) this.#writer.schedule(stream);
    this.#maybeCaughtUp(stream);
  }

  #end(stream: ReplicatedStream, outcome: StreamOutcome, error?: string): void {
    if (stream.ended) return;
    stream.end(outcome, error);
    // A read of it still in flight may yet deliver entries (they stay pending): the table
    // keeps it draining, not started again until that read is over, or its entries would
    // be passed by; and until its write in flight and its acks are answered (a new run's
    // write beside it, and its count of the same entries).
    const busy = stream.writing || this.#acker.busy(stream);
    this.#table.endedNow(stream, busy ? this.#settled(stream) : undefined);
    this.#warnedDeleted.delete(stream);
    this.#placement.release(stream);
    this.#readAhead.wakeIfRoom(); // its buffer was freed: a reader refused room may read now
    this.#recovery.wake(stream);
    this.#o.hooks.onStreamEnd?.(stream.ref, outcome);
  }
}
