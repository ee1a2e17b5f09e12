/**
 * The streams of a run: those replicating now, those that ended (and how),
 * what was said about each (warnings logged once per reason), and the run's
 * result. It reacts to each stream's end: bookkeeping, its lease, one line
 * in the log.
 *
 * @module
 */
import { getLog } from "../log.ts";
import type { RedisClient } from "../redis/client.ts";
import { runFailures, type RunResult, stillPending } from "./run_result.ts";
import type { StatsKeeper } from "./stats_keeper.ts";
import type { ReplicatedStream, StreamOutcome, StreamStatus } from "./stream.ts";
import type { StreamRef } from "./stream_ref.ts";
import type { TargetOwners } from "./target_owners.ts";

const log = getLog("orchestrator");

/** Options of {@linkcode StreamRoster}. */
export interface StreamRosterOptions {
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

/** The streams of one run; see the module doc. */
export class StreamRoster {
  /** Streams replicating now, by id. */
  readonly active = new Map<string, ReplicatedStream>();
  /** Streams that ended (but gone and released ones), for status and the result. */
  readonly ended = new Map<string, ReplicatedStream>();
  /** How each stream that ended, ended. */
  readonly outcomes = new Map<string, StreamOutcome>();
  /** Streams that were gone once (copied whole if they come back). */
  readonly goneBefore = new Set<string>();
  readonly #warned = new Map<string, string>();
  readonly #o: StreamRosterOptions;

  constructor(options: StreamRosterOptions) {
    this.#o = options;
  }

  /** `streams` replicate now. */
  started(streams: readonly ReplicatedStream[]): void {
    for (const s of streams) {
      this.ended.delete(s.ref.id);
      this.active.set(s.ref.id, s);
      s.done.then((outcome) => this.#onEnd(s, outcome));
    }
  }

  /**
   * Those of `candidates` that may start: not running, not `draining`, and
   * not written to the same target stream as a running one (an ERROR once).
   */
  admit(candidates: readonly StreamRef[], draining: (id: string) => boolean): StreamRef[] {
    const fresh: StreamRef[] = [];
    for (const ref of candidates) {
      if (this.active.has(ref.id) || draining(ref.id)) continue;
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
    while ((this.active.size > 0 || options.waiting()) && !signal.aborted) {
      const aborted = new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => resolve(), { once: true })
      );
      const waits: Promise<unknown>[] = [
        Promise.all([...this.active.values()].map((s) => s.done)),
        aborted,
      ];
      if (options.waiting()) waits.push(options.recheck());
      await Promise.race(waits);
    }
  }

  /** Every stream's status (with its stats), sorted by DB and key. */
  statuses(): StreamStatus[] {
    const streams: StreamStatus[] = [];
    for (const s of [...this.ended.values(), ...this.active.values()]) {
      const stats = this.#o.stats.stats.get(s.ref.id);
      streams.push(stats ? { ...s.status, stats } : s.status);
    }
    return streams.sort((a, b) => a.db - b.db || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * `run --once`: every stream that caught up must have nothing pending in
   * its group (with leases, for this instance's `consumer`: other live
   * instances may be reading it by now).
   */
  async checkNothingPending(control: RedisClient, consumer?: string): Promise<void> {
    const caughtUp = [...this.outcomes].filter(([, o]) => o === "caught-up")
      .map(([id]) => this.ended.get(id)).filter((s) => s !== undefined);
    for (const s of await stillPending(control, caughtUp, { group: this.#o.group, consumer })) {
      this.outcomes.set(s.ref.id, "error");
    }
  }

  /** The run's result. */
  result(once: boolean): RunResult {
    const failures = runFailures(this.outcomes, {
      ended: this.ended,
      active: this.active.values(),
      once,
      group: this.#o.group,
    });
    return { ok: failures.length === 0, streams: this.statuses(), failures };
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
    if (this.active.get(ref.id) === stream) this.active.delete(ref.id);
    this.#o.owners.release(ref);
    this.#o.onLeaseEnd?.(stream, outcome === "released");
    this.outcomes.set(ref.id, outcome);
    if (outcome === "released") {
      // Another instance copies it now: it leaves status and metrics here.
      this.ended.delete(ref.id);
      this.#o.stats.stats.delete(ref.id);
      return;
    }
    // A stream that is gone disappears from status and metrics; others stay visible.
    if (outcome === "gone") {
      this.#o.stats.stats.delete(ref.id);
      this.goneBefore.add(ref.id);
    } else this.ended.set(ref.id, stream);
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
      log.warning("Stream {stream} is gone ({reason}); its replication ended", {
        stream: ref.label,
        reason: status.lastError,
      });
    } else if (outcome === "caught-up" || outcome === "stopped") {
      this.#warned.delete(ref.id);
    }
  }
}
