/**
 * The orchestrator: the supervisor of a run. It discovers streams on a
 * timer and hands the new ones to the replication engine (collisions on the
 * target resolved first), refreshes the streams' stats, mirrors trims,
 * drives group maintenance, serves the status snapshot, and shuts
 * everything down in order when its signal aborts.
 *
 * @module
 */
import { Backoff } from "../backoff.ts";
import type { Config } from "../config/types.ts";
import { errorMessage, isRetriableError, RedisReplyError } from "../errors.ts";
import { getLog } from "../log.ts";
import type { RedisConnection } from "../redis/connection.ts";
import { serverAddress } from "../redis/endpoint.ts";
import { ConnectionPool } from "../redis/pool.ts";
import { parseFlatMap, text } from "../redis/replies.ts";
import { ServerHealth, type ServerHealthStatus } from "../redis/server_health.ts";
import { groupBy } from "./_group_by.ts";
import { findStreams } from "./discover.ts";
import { type EngineHooks, ReplicationEngine } from "./engine.ts";
import { pendingCounts } from "./group.ts";
import { Scheduler } from "./scheduler.ts";
import { readStreamStats, type StreamStats } from "./stats.ts";
import type { ReplicatedStream, StreamOutcome, StreamStatus } from "./stream.ts";
import type { StreamRef } from "./stream_ref.ts";
import { mirrorTrims } from "./trim.ts";

const log = getLog("orchestrator");

/** Up to this many streams, every discovery pass reads the stats of all of them. */
const ALWAYS_REFRESH_STATS = 1000;
/** Beyond, this share of the streams (1/n) is refreshed a pass: each at least every n passes. */
const QUIET_STATS_EVERY = 6;

/** How often group maintenance looks for the streams whose turn it is, at most. */
const MAINTENANCE_TICK_MS = 1000;

/** Options for {@linkcode Orchestrator.run}. */
export interface RunOptions {
  /**
   * `run --once`: one discovery pass, copy until every stream is caught up, then return.
   * @default {false}
   */
  once?: boolean;
  /**
   * After the signal aborts, how long writes in flight may take to finish
   * (write and ack) before they are abandoned (they stay pending and are
   * re-delivered safely on the next start).
   * @default {5000}
   */
  graceMs?: number;
}

/** Per-batch and per-error hooks, for metrics. */
export type OrchestratorHooks = EngineHooks;

/** What a run ended with. */
export interface RunResult {
  /** Whether every stream ended well (for `--once`: caught up, nothing pending). */
  ok: boolean;
  /** Status of every stream seen. */
  streams: StreamStatus[];
  /** Streams that could not be brought up to date, with why. */
  failures: Array<{ stream: string; reason: string }>;
}

/** A snapshot of the whole service, for `status` and metrics. */
export interface OrchestratorStatus {
  /** Whether both servers answered and the first discovery pass finished. */
  ready: boolean;
  /** Why not ready, when not. */
  reason?: string;
  /** Source server health. */
  source: ServerHealthStatus;
  /** Target server health. */
  target: ServerHealthStatus;
  /** Every stream seen, active or ended. */
  streams: StreamStatus[];
}

/** Replicates every configured and discovered stream. */
export class Orchestrator {
  readonly #config: Config;
  readonly #hooks: OrchestratorHooks;
  readonly #sourceHealth: ServerHealth;
  readonly #targetHealth: ServerHealth;
  readonly #control: RedisConnection;
  readonly #readerPool: ConnectionPool;
  readonly #targetPool: ConnectionPool;
  readonly #scheduler = new Scheduler();
  #engine: ReplicationEngine | undefined;
  /** Streams replicating now, by id. */
  readonly #active = new Map<string, ReplicatedStream>();
  /** Which stream writes each target stream (collisions), by target id. */
  readonly #targets = new Map<string, StreamRef>();
  /** Streams that ended (but gone ones), for status and the result. */
  readonly #ended = new Map<string, ReplicatedStream>();
  readonly #outcomes = new Map<string, StreamOutcome>();
  readonly #warned = new Map<string, string>();
  #stats = new Map<string, StreamStats>();
  /** Entries trimmed on the source before they were copied, last known, by stream id. */
  readonly #trimmed = new Map<string, number>();
  /** What each stream's copy had done at its last stats refresh. */
  readonly #statsMarks = new WeakMap<ReplicatedStream, { mark: number; state: string }>();
  #statsTurn = 0;
  #ready = false;
  #notReadyReason = "starting";
  #once = false;
  #started = false;
  #stopped = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #endHardStop!: () => void;
  readonly #hardStopped = new Promise<void>((resolve) => (this.#endHardStop = resolve));
  readonly #goneBefore = new Set<string>();

  constructor(config: Config, hooks: OrchestratorHooks = {}) {
    this.#config = config;
    this.#hooks = hooks;
    this.#sourceHealth = new ServerHealth("source", serverAddress(config.source));
    this.#targetHealth = new ServerHealth("target", serverAddress(config.target));
    this.#readerPool = new ConnectionPool("source", config.source, { health: this.#sourceHealth });
    // Outside the pool's bound: discovery, health, group management, acks.
    this.#control = this.#readerPool.extra(config.source.db, "control");
    this.#targetPool = new ConnectionPool("target", config.target, { health: this.#targetHealth });
  }

  /** A snapshot of every stream and both servers. */
  status(): OrchestratorStatus {
    const streams: StreamStatus[] = [];
    for (const s of [...this.#ended.values(), ...this.#active.values()]) {
      const stats = this.#stats.get(s.ref.id);
      streams.push(stats ? { ...s.status, stats } : s.status);
    }
    streams.sort((a, b) => a.db - b.db || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const reason = this.#ready
      ? (!this.#sourceHealth.up
        ? "source unreachable"
        : !this.#targetHealth.up
        ? "target unreachable"
        : undefined)
      : this.#notReadyReason;
    return {
      ready: reason === undefined,
      reason,
      source: this.#sourceHealth.status(),
      target: this.#targetHealth.status(),
      streams,
    };
  }

  /**
   * Replicates until `signal` aborts (or, with `once`, until every stream
   * is caught up). Closes every connection before it returns.
   */
  async run(signal: AbortSignal, options: RunOptions = {}): Promise<RunResult> {
    if (this.#started) {
      throw new Error("Orchestrator.run() may be called once; make a new Orchestrator");
    }
    this.#started = true;
    const { once = false, graceMs = 5000 } = options;
    this.#once = once;
    const readers = new AbortController();
    const engine = new ReplicationEngine(this.#config, {
      control: this.#control,
      readers: this.#readerPool,
      target: this.#targetPool,
      scheduler: this.#scheduler,
      hooks: this.#hooks,
      once,
      readSignal: readers.signal,
    });
    this.#engine = engine;
    const onAbort = () => {
      log.info("Stopping: no new reads; finishing the writes in flight");
      readers.abort();
      // A read in flight is cut: what it delivered stays pending and is copied on the next start.
      this.#readerPool.close();
      // After the grace period whatever still waits on a server is cut too (writes in flight
      // stay pending and are re-delivered safely on the next start).
      this.#graceTimer = setTimeout(() => this.#hardStop(), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (!this.#config.streamsEnabled) {
        log.info(
          "Stream processing is disabled (REDIS_STREAMS_ENABLED=false); idling until stopped",
        );
        this.#ready = true;
        if (!once) await this.#scheduler.sleep(2 ** 31 - 1, signal);
      } else {
        await this.#firstPass(signal);
        if (once) {
          await this.#settle(signal);
          await engine.acksDone();
          await this.#checkNothingPending();
        } else {
          const maintenance = this.#maintenanceLoop(signal);
          await this.#discoveryLoop(signal);
          await maintenance;
        }
      }
      await this.#shutdown(readers, graceMs);
      return this.#result();
    } finally {
      signal.removeEventListener("abort", onAbort);
      await this.#shutdown(readers, graceMs);
    }
  }

  async #discoveryLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#scheduler.sleep(this.#config.discoveryInterval * 1000, signal);
      if (signal.aborted) break;
      try {
        await this.#pass(signal);
        await this.#refreshStats();
        if (this.#config.mirrorSourceTrim) {
          await mirrorTrims(this.#control, [...this.#active.values()], {
            target: this.#targetPool,
            stats: this.#stats,
            signal,
          });
        }
      } catch (error) {
        this.#logDiscoveryError(error);
      }
    }
  }

  /** Readers stop; writes in flight get `graceMs` to finish (and their acks); then all closes. */
  async #shutdown(readers: AbortController, graceMs: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const engine = this.#engine!;
    readers.abort();
    this.#readerPool.close();
    await Promise.allSettled(engine.readers);
    this.#graceTimer ??= setTimeout(() => this.#hardStop(), graceMs);
    await Promise.race([engine.finish(), this.#hardStopped]);
    clearTimeout(this.#graceTimer);
    this.#hardStop();
    const ending = [...this.#active.values()].map((s) => s.done);
    engine.stopAll();
    await Promise.allSettled(ending); // their end handlers ran
    this.#scheduler.close();
    log.info("Stopped");
  }

  /** Closes every connection: whatever still waits on a server fails at once. */
  #hardStop(): void {
    this.#control.close();
    this.#readerPool.close();
    this.#targetPool.close();
    this.#endHardStop();
  }

  async #maintenanceLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const tick = Math.max(
        50,
        Math.min(MAINTENANCE_TICK_MS, this.#config.pendingCheckInterval * 250),
      );
      await this.#scheduler.sleep(tick, signal);
      if (signal.aborted) return;
      try {
        await this.#engine!.maintain();
      } catch (error) {
        log.debug("Group maintenance failed: {error}", { error: errorMessage(error) });
      }
    }
  }

  async #firstPass(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({
      baseMs: this.#config.source.backoffBase * 1000,
      maxMs: this.#config.source.backoffMax * 1000,
    });
    while (!signal.aborted) {
      try {
        await this.#pass(signal);
        this.#ready = true;
        this.#notReadyReason = "";
        await this.#refreshStats().catch((error) => this.#logDiscoveryError(error));
        return;
      } catch (error) {
        if (!isRetriableError(error)) throw error;
        this.#notReadyReason = `first discovery pass failed: ${errorMessage(error)}`;
        this.#logDiscoveryError(error);
        await this.#scheduler.sleep(backoff.next(), signal);
      }
    }
  }

  /** Waits for every stream to end (they end on abort, or in once mode when caught up). */
  async #settle(signal: AbortSignal): Promise<void> {
    while (this.#active.size > 0 && !signal.aborted) {
      const aborted = new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => resolve(), { once: true })
      );
      await Promise.race([Promise.all([...this.#active.values()].map((s) => s.done)), aborted]);
    }
  }

  /** Reads lengths, last IDs, pending and lag of every stream seen (for status and metrics). */
  async #refreshStats(): Promise<void> {
    const all = [...this.#active.values(), ...this.#ended.values()];
    if (all.length === 0) {
      this.#stats.clear();
      return;
    }
    const refresh = this.#dueForStats(all);
    // Entries handled so far, taken before the read, so that handled + lag + pending
    // (what progress shows as the total) counts no entry twice.
    const handled = new Map<string, number>();
    for (const s of refresh) handled.set(s.ref.id, s.status.copied + s.status.skipped);
    const fresh = await readStreamStats(
      { source: this.#control, target: this.#targetPool.pick(all[0].ref.targetDb) },
      refresh.map((s) => s.ref),
      { group: this.#config.consumerGroup },
    );
    for (const [id, st] of fresh) st.handledAtRefresh = handled.get(id) ?? 0;
    this.#reportTrimmed(fresh);
    for (const [id, st] of fresh) this.#stats.set(id, st); // gone streams leave in #onEnd
  }

  /**
   * The streams whose stats are read this pass: all of them while there are
   * few. With many, a sixth of them a pass ({@linkcode QUIET_STATS_EVERY}):
   * first those whose copy moved since their last refresh (or that have
   * none yet), then the quiet others in turns; so an idle stream costs
   * almost nothing, each stream is refreshed at least every six passes, and
   * ten thousand streams that all moved at once (a backfill) are refreshed
   * over six passes, not in one.
   */
  #dueForStats(all: readonly ReplicatedStream[]): ReplicatedStream[] {
    if (all.length <= ALWAYS_REFRESH_STATS) return [...all];
    const cap = Math.max(ALWAYS_REFRESH_STATS, Math.ceil(all.length / QUIET_STATS_EVERY));
    const due: ReplicatedStream[] = [];
    const quiet: ReplicatedStream[] = [];
    for (const s of all) {
      const st = s.status;
      // The counters only grow: their sum moves whenever one does.
      const mark = st.copied + st.skipped + st.deleted + st.errors + st.recovered;
      const last = this.#statsMarks.get(s);
      const moved = last === undefined || last.mark !== mark || last.state !== st.state;
      if (moved && due.length < cap) {
        this.#statsMarks.set(s, { mark, state: st.state });
        due.push(s);
      } else if (!moved) quiet.push(s);
    }
    const turn = this.#statsTurn % Math.max(1, quiet.length);
    for (let i = 0; i < quiet.length && due.length < cap; i++) {
      due.push(quiet[(turn + i) % quiet.length]);
      this.#statsTurn++;
    }
    return due;
  }

  /**
   * Entries the source trimmed before they were delivered are lost for the
   * target: one WARNING per stream and pass in which more are found, and
   * the metric. Redis counts them for ever, so the first pass of a process
   * reports what it finds then.
   */
  #reportTrimmed(stats: Map<string, StreamStats>): void {
    for (const [id, s] of stats) {
      if (s.trimmedBeforeCopy === null) {
        // Cannot be told now: keep what was known.
        const known = this.#trimmed.get(id);
        if (known !== undefined) s.trimmedBeforeCopy = known;
        continue;
      }
      const before = this.#trimmed.get(id) ?? 0;
      this.#trimmed.set(id, s.trimmedBeforeCopy);
      if (s.trimmedBeforeCopy <= before) continue;
      const stream = this.#active.get(id) ?? this.#ended.get(id);
      if (!stream) continue;
      log.warning(
        "{count} entries of {stream} were trimmed on the source before they could be copied; they are lost for the target ({total} so far)",
        {
          count: s.trimmedBeforeCopy - before,
          stream: stream.ref.label,
          total: s.trimmedBeforeCopy,
        },
      );
      this.#hooks.onTrimmedBeforeCopy?.(stream.ref, s.trimmedBeforeCopy - before);
    }
  }

  /** One discovery pass: find streams, start replicating the new ones. */
  async #pass(signal: AbortSignal): Promise<void> {
    const found = await findStreams(this.#control, this.#config, {
      signal,
      skip: (ref) => this.#active.has(ref.id),
      known: (id) => this.#ended.get(id)?.ref,
      skipDiscovered: (id) => this.#active.has(id),
    });
    for (const n of found.notices) this.#warnOnce(n.subject, n.variant, n.message, n.level);
    const candidates = await this.#previousOwnersFirst(found.streams);
    const fresh: StreamRef[] = [];
    for (const ref of candidates) {
      if (this.#active.has(ref.id)) continue;
      const owner = this.#targets.get(ref.targetId);
      if (owner !== undefined && owner.id !== ref.id) {
        const other = owner.label;
        this.#warnOnce(
          `collision:${ref.id}`,
          owner.id,
          `Streams ${other} and ${ref.label} would both be written to target stream ${ref.targetLabel}; ${ref.label} is skipped, ${other} keeps replicating`,
          "error",
        );
        continue;
      }
      this.#targets.set(ref.targetId, ref);
      fresh.push(ref);
    }
    if (fresh.length === 0 || signal.aborted) return;
    const { created, streams } = await this.#engine!.start(fresh, {
      // A stream that was deleted and came back is new: copy it whole, whatever STREAM_START_ID
      // says (with "$", entries written before the next discovery pass would be skipped).
      startId: (ref) => this.#goneBefore.has(ref.id) ? "0" : this.#config.startId,
    });
    for (const s of streams) {
      this.#ended.delete(s.ref.id);
      this.#active.set(s.ref.id, s);
      s.done.then((outcome) => this.#onEnd(s, outcome));
    }
    log.info("Replicating {count} new streams ({created} consumer groups created)", {
      count: streams.filter((s) => !s.ended).length,
      created,
    });
  }

  #onEnd(stream: ReplicatedStream, outcome: StreamOutcome): void {
    const ref = stream.ref;
    if (this.#active.get(ref.id) === stream) this.#active.delete(ref.id);
    if (this.#targets.get(ref.targetId)?.id === ref.id) this.#targets.delete(ref.targetId);
    // A stream that is gone disappears from status and metrics; others stay visible.
    if (outcome === "gone") {
      this.#stats.delete(ref.id);
      this.#goneBefore.add(ref.id);
    } else this.#ended.set(ref.id, stream);
    this.#outcomes.set(ref.id, outcome);
    const status = stream.status;
    if (outcome === "error") {
      this.#warnOnce(
        ref.id,
        status.lastError ?? "",
        `Stopped replicating ${ref.label}: ${status.lastError}`,
        "error",
      );
    } else if (outcome === "skipped") {
      this.#warnOnce(
        ref.id,
        "skipped",
        `Stream ${ref.label} has no consumer group "${this.#config.consumerGroup}" and STREAM_AUTO_CREATE_CONSUMER_GROUPS=false; skipped`,
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

  /**
   * Of streams that would share a target stream no stream owns now, puts
   * the one that already has the consumer group first: it wrote that target
   * stream before (before a restart, or before it ended), so it must keep
   * it, or the target would mix the entries of two streams. Without such a
   * stream the first found (lowest DB) wins, as on a first start.
   */
  async #previousOwnersFirst(candidates: StreamRef[]): Promise<StreamRef[]> {
    const byTarget = groupBy(
      candidates.filter((ref) => !this.#active.has(ref.id) && !this.#targets.has(ref.targetId)),
      (ref) => ref.targetId,
    );
    const first = new Set<string>();
    for (const refs of byTarget.values()) {
      if (refs.length < 2) continue;
      for (const ref of refs) {
        if (await this.#hasGroup(ref)) {
          first.add(ref.id);
          break;
        }
      }
    }
    if (first.size === 0) return candidates;
    return [
      ...candidates.filter((r) => first.has(r.id)),
      ...candidates.filter((r) => !first.has(r.id)),
    ];
  }

  /** Whether the source stream has the consumer group (false when it cannot tell: no such key...). */
  async #hasGroup(ref: StreamRef): Promise<boolean> {
    try {
      const groups = await this.#control.send(ref.db, ["XINFO", "GROUPS", ref.key]);
      return Array.isArray(groups) &&
        groups.some((g) => text(parseFlatMap(g).get("name")) === this.#config.consumerGroup);
    } catch (error) {
      if (error instanceof RedisReplyError) return false;
      throw error;
    }
  }

  /** `run --once`: every stream that caught up must have nothing pending in its group. */
  async #checkNothingPending(): Promise<void> {
    const caughtUp = [...this.#outcomes].filter(([, o]) => o === "caught-up")
      .map(([id]) => this.#ended.get(id)).filter((s) => s !== undefined);
    if (caughtUp.length === 0) return;
    let counts: Map<ReplicatedStream, number | Error>;
    try {
      counts = await pendingCounts(this.#control, caughtUp, { group: this.#config.consumerGroup });
    } catch (error) {
      for (const s of caughtUp) {
        s.status.lastError = `Could not check pending entries: ${errorMessage(error)}`;
        this.#outcomes.set(s.ref.id, "error");
      }
      return;
    }
    for (const [s, count] of counts) {
      if (count instanceof Error) {
        s.status.lastError = `Could not check pending entries: ${errorMessage(count)}`;
        this.#outcomes.set(s.ref.id, "error");
      } else if (count > 0) {
        s.status.state = "error";
        s.status.lastError =
          `${count} entries still pending in group "${this.#config.consumerGroup}"`;
        this.#outcomes.set(s.ref.id, "error");
      }
    }
  }

  #result(): RunResult {
    const failures: RunResult["failures"] = [];
    for (const [id, outcome] of this.#outcomes) {
      if (outcome === "caught-up" || outcome === "gone") continue;
      if (outcome === "stopped" && !this.#once) continue;
      const stream = this.#ended.get(id);
      const label = stream?.ref.label ?? id;
      const reason = outcome === "skipped"
        ? `no consumer group "${this.#config.consumerGroup}" (STREAM_AUTO_CREATE_CONSUMER_GROUPS=false)`
        : outcome === "stopped"
        ? "interrupted before it was up to date"
        : stream?.status.lastError ?? outcome;
      failures.push({ stream: label, reason });
    }
    if (this.#once) {
      for (const s of this.#active.values()) {
        failures.push({ stream: s.ref.label, reason: "interrupted before it was up to date" });
      }
    }
    return { ok: failures.length === 0, streams: this.status().streams, failures };
  }

  #logDiscoveryError(error: unknown): void {
    if (isRetriableError(error)) {
      log.debug("Discovery pass failed: {error}", { error: errorMessage(error) });
    } else {
      log.error("Discovery pass failed: {error}", { error: errorMessage(error) });
    }
  }

  /** Logs `message` once per `(key, variant)`; a new variant logs again. */
  #warnOnce(
    key: string,
    variant: string,
    message: string,
    level: "info" | "warning" | "error" = "warning",
  ): void {
    if (this.#warned.get(key) === variant) return;
    this.#warned.set(key, variant);
    log[level]("{message}", { message });
  }
}
