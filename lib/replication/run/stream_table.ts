/**
 * The one table of this instance's streams: for each stream, where it is in
 * this run. Every other part asks it (is this stream running here, starting,
 * draining, waiting for its lease, ended and how) and tells it what happened
 * (made, started, ended, reads over); none keeps a copy.
 *
 * ```
 *  found ─(lease another's)─▶ waiting
 *  found, waiting ─beginStart─▶ starting (leases: taking) ─notTaken─▶ waiting
 *  found ─beginStart─▶ starting ─made─▶ live ─started─▶ running ─end─▶ ended (outcome)
 *                                         running ─end with a read, write or ack in flight─▶ draining ─all answered─▶ (free)
 *  running ─beginHandOver─▶ running, handing over ─handedOver─▶ (its lease given back)
 * ```
 *
 * A stream's own state (replicating, recovering, ...) is its state machine's
 * (`stream_life.ts`); this table holds which streams there are, and reacts
 * to each one's end: bookkeeping, its lease, one line in the log. It also
 * says what was said about each (warnings logged once per reason) and makes
 * the run's result.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import type { RedisClient } from "../../redis/mod.ts";
import { runFailures, type RunResult, stillPending } from "./run_result.ts";
import type { StatsKeeper } from "./stats_keeper.ts";
import type { ReplicatedStream, StreamOutcome, StreamStatus } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { EndedStream } from "../stream/ended_stream.ts";
import { GoneStreams } from "./_gone_log.ts";
import { EarlierRuns } from "./_stream_counts.ts";
import { Draining } from "./_draining.ts";
import type { TargetOwners } from "../write/target_owners.ts";

const log = getLog("orchestrator");

/** Options of {@linkcode StreamTable}. */
export interface StreamTableOptions {
  /** The consumer group, for messages. */
  group: string;
  /** The streams' stats (dropped with a stream that is gone or released). */
  stats: StatsKeeper;
  /** Which stream writes each target stream (released when a stream ends). */
  owners: TargetOwners;
  /**
   * With leases: a stream ended. `released`: its lease is another instance's
   * (forget it); else give it back.
   * @default {undefined}
   */
  onLeaseEnd?: (stream: ReplicatedStream, released: boolean) => void;
}

/** The streams of this instance in one run; see the module doc. */
export class StreamTable {
  /** Streams replicating now, by id. */
  readonly #running = new Map<string, ReplicatedStream>();
  /** Streams that ended (but gone and released ones), for status and the result: what is kept of them. */
  readonly #ended = new Map<string, EndedStream>();
  /** How each stream that ended, ended. */
  readonly #outcomes = new Map<string, StreamOutcome>();
  /** Streams that were gone once (copied whole if they come back). */
  readonly #goneBefore = new Set<string>();
  /** Streams gone since the last summary (said once per discovery pass, not one line each). */
  readonly #gone: GoneStreams;
  /** Streams being started now, by id: started once. */
  readonly #starting = new Set<string>();
  /** Streams made by the engine that have not ended (those starting included). */
  readonly #live = new Set<ReplicatedStream>();
  /** Streams that ended with a read, write or ack of theirs out: not started again yet. */
  readonly #draining = new Draining();
  /**
   * With leases: streams found by the last pass whose lease is another
   * instance's, or was lost, by id (a map: a lease tick that lost the buckets
   * of 100,000 streams adds each in constant time).
   */
  #waiting = new Map<string, StreamRef>();
  /** With leases: the counts of the streams' earlier runs here (lease lost or expired). */
  readonly #earlier = new EarlierRuns();
  /** With leases: streams being handed over to another instance now (writes finishing, then the lease), by id. */
  readonly #handing = new Set<string>();
  readonly #warned = new Map<string, string>();
  readonly #o: StreamTableOptions;
  /** Resolves the wait of {@linkcode allEnded} when no stream runs any more. */
  #noneRunning: (() => void) | undefined;
  /** Every stream's end listener (one function, not a closure per stream). */
  readonly #endListener = (outcome: StreamOutcome, s: ReplicatedStream) => this.#onEnd(s, outcome);

  constructor(options: StreamTableOptions) {
    this.#o = options;
    this.#gone = new GoneStreams(options.group);
  }

  // Questions ------------------------------------------------------------

  /** The stream `id` if it replicates here now. */
  running(id: string): ReplicatedStream | undefined {
    return this.#running.get(id);
  }

  /** Every stream replicating here now. */
  runningStreams(): ReplicatedStream[] {
    return [...this.#running.values()];
  }

  /** The names of every stream replicating here now. */
  runningRefs(): StreamRef[] {
    return Array.from(this.#running.values(), (s) => s.ref);
  }

  /** The streams that ended caught up in this run (`run --once`). */
  caughtUp(): EndedStream[] {
    // Walked, not spread (a pair a stream, at the end of run --once: the heap at its largest).
    const out: EndedStream[] = [];
    for (const [id, outcome] of this.#outcomes) {
      if (outcome !== "caught-up") continue;
      const s = this.#ended.get(id);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /** How many streams replicate here now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** The stream `id` if it ran in this run and ended (not gone, not released). */
  endedStream(id: string): EndedStream | undefined {
    return this.#ended.get(id);
  }

  /** Every stream seen in this run and still shown: ended ones first, then those running. */
  shownStreams(): Array<ReplicatedStream | EndedStream> {
    return [...this.#ended.values(), ...this.#running.values()];
  }

  /** Whether the stream `id` was gone once in this run (a stream that comes back is copied whole). */
  wasGone(id: string): boolean {
    return this.#goneBefore.has(id);
  }

  /** Whether the stream `id` is being started now. */
  isStarting(id: string): boolean {
    return this.#starting.has(id);
  }

  /** Whether the stream `id` ended while a read of it is still in flight (do not start it yet). */
  isDraining(id: string): boolean {
    return this.#draining.has(id);
  }

  /** With leases: whether the stream `id` is being handed over to another instance now. */
  isHandingOver(id: string): boolean {
    return this.#handing.has(id);
  }

  /** Whether the stream `id` runs here now, or ended in this run (`run --once`: nothing to wait for). */
  isDone(id: string): boolean {
    return this.#running.has(id) || this.#outcomes.has(id);
  }

  /** Streams made by the engine that have not ended (those starting included). */
  live(): ReadonlySet<ReplicatedStream> {
    return this.#live;
  }

  /** With leases: the streams found by the last pass whose lease is another instance's. */
  get waiting(): readonly StreamRef[] {
    return [...this.#waiting.values()];
  }

  // What happened --------------------------------------------------------

  /** With leases: the streams found by the last pass that do not run here (yet). */
  setWaiting(refs: readonly StreamRef[]): void {
    this.#waiting = new Map(refs.map((r) => [r.id, r]));
  }

  /**
   * With leases: the stream `id` is to be handed over to another instance;
   * false when it already is, or does not run here.
   */
  beginHandOver(id: string): boolean {
    if (this.#handing.has(id) || !this.#running.has(id)) return false;
    this.#handing.add(id);
    return true;
  }

  /** With leases: the hand-over of the stream `id` is over (its lease given back, or that failed). */
  handedOver(id: string): void {
    this.#handing.delete(id);
  }

  /** `run --once` with leases: the stream is left to the instance that holds its lease. */
  leftToOthers(ref: StreamRef): void {
    this.#outcomes.set(ref.id, "released");
  }

  /**
   * Of `refs`, those that may start now (not running, starting or draining
   * here, and owning their target stream): they are starting from now on,
   * until {@linkcode endStart}.
   */
  beginStart(refs: readonly StreamRef[]): StreamRef[] {
    const fresh = refs.filter((r) =>
      !this.#running.has(r.id) && !this.#starting.has(r.id) && !this.#draining.has(r.id) &&
      this.#o.owners.claim(r) === undefined
    );
    for (const r of fresh) this.#starting.add(r.id);
    return fresh;
  }

  /** The start of `refs` is over (they run now, or it failed). */
  endStart(refs: readonly StreamRef[]): void {
    for (const r of refs) this.#starting.delete(r.id);
  }

  /**
   * With leases: `refs` were begun (to take their leases: no other take
   * counts or starts them meanwhile), and their lease is another
   * instance's. They are not starting, and own no target stream here.
   */
  notTaken(refs: readonly StreamRef[]): void {
    for (const r of refs) {
      this.#starting.delete(r.id);
      this.#o.owners.release(r);
    }
  }

  /** The engine made `streams` (their start is under way). */
  made(streams: readonly ReplicatedStream[]): void {
    for (const s of streams) this.#live.add(s);
  }

  /** The start of `stream` failed before it ran: it is forgotten, and started again later. */
  unmade(stream: ReplicatedStream): void {
    this.#live.delete(stream);
  }

  /**
   * `stream` ended (told at once by the engine, before its `done` settles):
   * while a read of it is in flight, or until `writes` (its write in flight
   * and its acks answered) settles, it is draining.
   */
  endedNow(stream: ReplicatedStream, writes?: Promise<void>): void {
    this.#live.delete(stream);
    this.#draining.ended(stream, writes);
  }

  /** No read of `stream` is in flight any more. */
  readsOver(stream: ReplicatedStream): void {
    this.#draining.readsOver(stream);
  }

  /** `streams` replicate now: they wait no more. */
  started(streams: readonly ReplicatedStream[]): void {
    for (const s of streams) {
      this.#ended.delete(s.ref.id);
      this.#running.set(s.ref.id, s);
      s.life.onEnd(this.#endListener, s);
    }
    if (this.#waiting.size > 0) { for (const s of streams) this.#waiting.delete(s.ref.id); }
  }

  /**
   * Those of `candidates` that may start: not running, not draining, and
   * not written to the same target stream as a running one (an ERROR once).
   */
  admit(candidates: readonly StreamRef[]): StreamRef[] {
    const fresh: StreamRef[] = [];
    for (const ref of candidates) {
      if (this.#running.has(ref.id) || this.#draining.has(ref.id)) continue;
      const owner = this.#o.owners.claim(ref);
      if (owner !== undefined) {
        this.warnOnce(
          `collision:${ref.id}`,
          owner.id,
          `Streams ${owner.label} and ${ref.label} would both be written to target stream ${ref.targetLabel}; ${ref.label} is skipped, ${owner.label} keeps replicating`,
          "error",
        );
        continue;
      }
      fresh.push(ref);
    }
    return fresh;
  }

  /**
   * Resolves once every stream running has ended (and `waiting()` says no
   * other is to come), or `signal` aborts; `recheck` paces the looks while
   * streams are waited for.
   */
  async allEnded(
    signal: AbortSignal,
    options: { waiting: () => boolean; recheck: () => Promise<void> },
  ): Promise<void> {
    const aborted = new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true })
    );
    while ((this.#running.size > 0 || options.waiting()) && !signal.aborted) {
      const waits: Promise<unknown>[] = [aborted];
      // None running (all of them lost their lease, say): only the recheck, never an empty
      // Promise.all, which resolves at once and would spin this loop.
      // One promise for all of them, not one a stream (~300 bytes each at 100,000).
      if (this.#running.size > 0) {
        waits.push(new Promise<void>((resolve) => (this.#noneRunning = resolve)));
      }
      if (options.waiting()) waits.push(options.recheck());
      try {
        await Promise.race(waits);
      } finally {
        this.#noneRunning = undefined;
      }
    }
  }

  /** Every stream's status (with its stats), sorted by DB and key. */
  statuses(): StreamStatus[] {
    const streams: StreamStatus[] = [];
    for (const s of this.shownStreams()) {
      const stats = this.#o.stats.stats.get(s.ref.id);
      const status = this.#earlier.withEarlier(s.ref.id, s.status);
      streams.push(stats ? { ...status, stats } : status);
    }
    return streams.sort((a, b) => a.db - b.db || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * `run --once`: every stream that caught up must have nothing pending in
   * its group (with leases, for this instance's `consumer`: other live
   * instances may be reading it by now).
   */
  async checkNothingPending(
    control: RedisClient,
    consumer?: string | ((name: string) => boolean),
  ): Promise<void> {
    for (
      const s of await stillPending(control, this.caughtUp(), { group: this.#o.group, consumer })
    ) {
      this.#outcomes.set(s.ref.id, "error");
    }
  }

  /** The run's result. */
  result(once: boolean): RunResult {
    const failures = runFailures(this.#outcomes, {
      ended: this.#ended,
      active: this.#running.values(),
      once,
      group: this.#o.group,
    });
    return { ok: failures.length === 0, streams: this.statuses(), failures };
  }

  /** Says what ended as gone since the last call: see {@linkcode GoneStreams.say}. */
  sayGone(found?: ReadonlySet<string>): void {
    this.#gone.say(found);
  }

  /** Logs `message` once per `(key, variant)`; a new variant logs again. */
  warnOnce(
    key: string,
    variant: string,
    message: string,
    level: "info" | "warning" | "error" = "warning",
  ): void {
    if (this.#warned.get(key) === variant) return;
    this.#warned.set(key, variant);
    log[level]("{message}", { message });
  }

  #onEnd(stream: ReplicatedStream, outcome: StreamOutcome): void {
    const ref = stream.ref;
    if (this.#running.get(ref.id) === stream) this.#running.delete(ref.id);
    if (this.#running.size === 0) this.#noneRunning?.();
    this.#o.owners.release(ref);
    this.#o.onLeaseEnd?.(stream, outcome === "released");
    if (outcome === "released" && !this.#handing.has(ref.id)) {
      // Its lease was lost (taken by another instance, or expired: a pause longer than
      // STREAM_LEASE_TTL, its key deleted), not handed over: not done, it waits to be taken
      // again, at the next lease tick if its bucket is free; `run --once` leaves it to an
      // instance that holds it (`leftToOthers`).
      this.#outcomes.delete(ref.id);
      if (!this.#waiting.has(ref.id)) this.#waiting.set(ref.id, ref);
      this.#earlier.lost(ref.id, stream.status);
    } else this.#outcomes.set(ref.id, outcome);
    if (outcome === "released") {
      // Another instance copies it now: it leaves status and metrics here.
      this.#ended.delete(ref.id);
      this.#o.stats.stats.delete(ref.id);
      return;
    }
    // A stream that is gone disappears from status and metrics; others stay visible.
    if (outcome === "gone") {
      this.#o.stats.stats.delete(ref.id);
      this.#earlier.forget(ref.id);
      this.#goneBefore.add(ref.id);
    } else this.#ended.set(ref.id, new EndedStream(stream));
    const status = stream.status;
    if (outcome === "error") {
      this.warnOnce(
        ref.id,
        status.lastError ?? "",
        `Stopped replicating ${ref.label}: ${status.lastError}`,
        "error",
      );
    } else if (outcome === "skipped") {
      this.warnOnce(
        ref.id,
        "skipped",
        `Stream ${ref.label} has no consumer group "${this.#o.group}" and STREAM_AUTO_CREATE_CONSUMER_GROUPS=false; skipped`,
      );
    } else if (outcome === "gone") {
      // Deleting streams is normal: summed up once a pass (sayGone), each one at DEBUG.
      this.#gone.add(ref, status.lastError ?? "");
      log.debug("Stream {stream} is gone ({reason}); its replication ended", {
        stream: ref.label,
        reason: status.lastError,
      });
    } else if (outcome === "caught-up" || outcome === "stopped") {
      this.#warned.delete(ref.id);
    }
  }
}
