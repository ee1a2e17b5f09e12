/**
 * The orchestrator: the supervisor of a run. It discovers streams on a
 * timer and hands the new ones to the replication engine (collisions on the
 * target resolved first), refreshes the streams' stats, mirrors trims,
 * drives group maintenance, serves the status snapshot, and shuts
 * everything down in order when its signal aborts.
 *
 * @module
 */
import { Backoff } from "../../backoff.ts";
import { type Config, type RunSettings, runSettings } from "../../config/mod.ts";
import { errorMessage, isRetriableError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import { openPool, type RedisClient, serverAddress, ServerHealth } from "../../redis/mod.ts";
import type { ServerPool } from "../../redis/mod.ts";
import { findStreams, noStreamsFound, nothingToCopy, RUN_SCAN_PACE_MS } from "./discover.ts";
import { ReplicationEngine } from "./engine.ts";
import type { OrchestratorHooks } from "./engine_hooks.ts";
import { type OrchestratorStatus, type RunOptions, runStatus } from "./run_result.ts";
import type { RunResult } from "./run_result.ts";
import { Scheduler } from "../scheduler.ts";
import { StatsKeeper } from "./stats_keeper.ts";
import { TargetOwners } from "../write/target_owners.ts";
import { StreamTable } from "./stream_table.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { sayStarted } from "./_start_log.ts";
import { notTakenOf, startInWaves, type StartSummary } from "./_start_waves.ts";
import { mirrorTrims } from "../write/trim.ts";
import { Ownership } from "../sharing/ownership.ts";
import { keepOwnership } from "./ownership_loop.ts";
import { keepBeating } from "./heartbeat.ts";
import { keepMaintaining } from "./maintenance_loop.ts";
import { GroupMirror } from "../mirror/group_mirror.ts";

const log = getLog("orchestrator");

/** Replicates every configured and discovered stream. */
export class Orchestrator {
  /** Every setting of the run, built once from the configuration. */
  readonly #settings: RunSettings;
  readonly #hooks: OrchestratorHooks;
  readonly #sourceHealth: ServerHealth;
  readonly #targetHealth: ServerHealth;
  readonly #control: RedisClient;
  readonly #readerPool: ServerPool;
  readonly #targetPool: ServerPool;
  readonly #scheduler = new Scheduler();
  #engine: ReplicationEngine | undefined;
  /** Which stream writes each target stream (collisions). */
  readonly #owners: TargetOwners;
  /** The one table of this instance's streams. */
  readonly #table: StreamTable;
  readonly #statsKeeper: StatsKeeper;
  #ready = false;
  #notReadyReason = "starting";
  #once = false;
  #started = false;
  #stopped = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #endHardStop!: () => void;
  readonly #hardStopped = new Promise<void>((resolve) => (this.#endHardStop = resolve));
  readonly #conflict = new AbortController();
  /** With leases: this instance's share of the streams. */
  #ownership: Ownership | undefined;
  /** With STREAM_GROUPS_SYNC: the applications' groups, mirrored on the target. */
  readonly #mirror: GroupMirror | undefined;

  constructor(config: Config, hooks: OrchestratorHooks = {}) {
    const settings = runSettings(config);
    this.#settings = settings;
    const { group } = settings.replication;
    this.#hooks = hooks;
    this.#sourceHealth = new ServerHealth("source", serverAddress(settings.source));
    this.#targetHealth = new ServerHealth("target", serverAddress(settings.target));
    this.#readerPool = openPool("source", settings.source, { health: this.#sourceHealth });
    this.#control = this.#readerPool.control(settings.source.db, "control"); // beside the pool
    this.#targetPool = openPool("target", settings.target, { health: this.#targetHealth });
    this.#owners = new TargetOwners(this.#control, { group });
    this.#statsKeeper = new StatsKeeper({
      ...hooks, // onTrimmedBeforeCopy, onTargetRemoved
      group,
      startId: (ref) => this.#startId(ref),
      targetTrims: settings.replication.write.targetTrims,
      // A whole target trimmed (MIRROR_SOURCE_TRIM) or its top deleted: the engine checks.
      onTargetBehind: (stream) => this.#engine?.checkTarget(stream),
      onGroupAhead: (stream, delivered) => { // a group made at "$" passed older entries on purpose
        if (this.#startId(stream.ref) !== "$") this.#engine?.checkGroupGap(stream, delivered);
      },
      stalls: {
        stallMs: settings.replication.recovery.stallMs,
        nudge: (stream, strike) => this.#engine?.nudge(stream, strike),
        onStall: (stream) => hooks.onStall?.(stream.ref),
      },
    });
    this.#table = new StreamTable({
      group,
      stats: this.#statsKeeper,
      owners: this.#owners,
      onLeaseEnd: (stream, released) => this.#ownership?.ended(stream.ref, released),
    });
    const mirrored = settings.groupSync;
    this.#mirror = mirrored &&
      new GroupMirror({ source: this.#control, target: this.#targetPool }, {
        settings: mirrored,
        scheduler: this.#scheduler,
      });
  }

  /** A snapshot of every stream and both servers. */
  status(): OrchestratorStatus {
    return runStatus({
      notReady: this.#ready ? undefined : this.#notReadyReason,
      source: this.#sourceHealth,
      target: this.#targetHealth,
      streams: this.#table.statuses(),
      instance: this.#ownership?.status(),
      groups: this.#mirror?.status(),
    });
  }

  /** Replicates until `signal` aborts (`once`: until all is copied); closes every connection. */
  async run(stop: AbortSignal, options: RunOptions = {}): Promise<RunResult> {
    if (this.#started) {
      throw new Error("Orchestrator.run() may be called once; make a new Orchestrator");
    }
    this.#started = true;
    // Stopped from outside, or by a conflict of instance ids (thrown once all is closed).
    const signal = AbortSignal.any([stop, this.#conflict.signal]);
    const { once = false, graceMs = 5000 } = options;
    this.#once = once;
    const readers = new AbortController();
    const settled = new AbortController(); // ends the lease loop
    let consumer = this.#settings.consumer;
    const sharing = this.#settings.sharing;
    if (sharing) {
      const ownership = new Ownership(this.#control, {
        settings: sharing,
        once,
        onChange: this.#hooks.onLeases,
      });
      const identity = await ownership.registerWithRetry(signal, {
        scheduler: this.#scheduler,
        backoffBaseMs: this.#settings.sourceRetry.baseMs,
        backoffMaxMs: this.#settings.sourceRetry.maxMs,
        onRetry: (e) => (this.#notReadyReason = `registering failed: ${errorMessage(e)}`),
        named: (id) => (this.#readerPool.nameSuffix = `@${id}`),
      });
      if (identity === undefined) {
        this.#hardStop();
        this.#scheduler.close();
        return { ok: !once, streams: [], failures: [] };
      }
      this.#ownership = ownership;
      consumer = identity.consumer;
    }
    const engine = new ReplicationEngine(this.#settings.replication, {
      consumer,
      fence: this.#ownership?.leases,
      control: this.#control,
      readers: this.#readerPool,
      target: this.#targetPool,
      targetGeneration: () => this.#targetHealth.generation,
      scheduler: this.#scheduler,
      hooks: this.#hooks,
      once,
      readSignal: readers.signal,
      table: this.#table,
    });
    this.#engine = engine;
    const onAbort = () => {
      log.info("Stopping: no new reads; finishing the writes in flight");
      readers.abort();
      // Reads in flight are cut now, writes after the grace period: what they had stays
      // pending and is copied on the next start.
      this.#readerPool.close();
      this.#graceTimer = setTimeout(() => this.#hardStop(), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (!this.#settings.streamsEnabled) {
        log.info(
          "Stream processing is disabled (REDIS_STREAMS_ENABLED=false); idling until stopped",
        );
        this.#ready = true;
        if (!once) await this.#scheduler.sleep(2 ** 31 - 1, signal);
      } else {
        const leases = this.#ownershipLoop(AbortSignal.any([signal, settled.signal])); // from now
        const beats = keepBeating(this.#control, AbortSignal.any([signal, settled.signal]), {
          settings: once ? undefined : this.#settings.heartbeat,
          instance: consumer,
          scheduler: this.#scheduler,
        });
        await this.#firstPass(signal);
        if (once) {
          await this.#settle(signal);
          settled.abort();
          await engine.acksDone();
          const owed = this.#ownership?.answersFor(consumer); // else the whole group's
          await this.#table.checkNothingPending(this.#control, owed);
          await this.#mirror?.sync(this.#table.caughtUp().map((s) => s.ref)); // where they are now
          await this.#refreshStats().catch((error) => this.#logDiscoveryError(error)); // said last
        } else {
          const maintenance = keepMaintaining(() => engine.maintain(), signal, {
            scheduler: this.#scheduler,
            everyMs: this.#settings.replication.recovery.pendingCheckEveryMs,
          });
          const mirroring = this.#mirror?.run(() => this.#table.runningRefs(), signal);
          await this.#discoveryLoop(signal);
          await Promise.all([maintenance, mirroring]);
        }
        await Promise.all([leases, beats]);
      }
      await this.#shutdown(readers, graceMs);
      if (this.#conflict.signal.aborted) throw this.#conflict.signal.reason;
      return this.#table.result(this.#once);
    } finally {
      settled.abort();
      signal.removeEventListener("abort", onAbort);
      await this.#shutdown(readers, graceMs);
    }
  }

  async #discoveryLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#scheduler.sleep(this.#settings.discovery.everyMs, signal);
      if (signal.aborted) break;
      try {
        await this.#pass(signal, RUN_SCAN_PACE_MS);
        await this.#refreshStats();
        if (this.#settings.mirrorSourceTrim) {
          await mirrorTrims(this.#control, this.#table.runningStreams(), {
            target: this.#targetPool,
            stats: this.#statsKeeper.stats,
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
    // The leases back and this instance out of the registry: the others take its streams now.
    await Promise.race([
      this.#ownership?.stop().catch((error) =>
        log.warning("Giving back the leases failed: {error}", { error: errorMessage(error) })
      ),
      this.#hardStopped,
    ]);
    clearTimeout(this.#graceTimer);
    this.#hardStop();
    const ending = this.#table.runningStreams().map((s) => s.done);
    engine.stopAll();
    await Promise.allSettled(ending); // their end handlers ran
    this.#table.sayGone();
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

  async #firstPass(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#settings.sourceRetry);
    while (!signal.aborted) {
      try {
        // A cluster's layout first (one server: nothing to read).
        await this.#readerPool.prepare();
        await this.#targetPool.prepare();
        // Not paced: the copy starts once it is done (`run --once` is this pass only).
        await this.#pass(signal, 0);
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
    await this.#table.allEnded(signal, {
      waiting: () => this.#onceWaiting().length > 0,
      // Streams whose lease another instance holds: looked at again every lease tick.
      recheck: () => this.#scheduler.sleep((this.#settings.sharing?.ttlMs ?? 3000) / 3, signal),
    });
  }

  /** `run --once` with leases: the streams found whose lease another instance holds. */
  #onceWaiting(): StreamRef[] {
    if (!this.#ownership) return [];
    const waiting = this.#ownership.stillWaiting(this.#table.waiting, {
      done: (id) => this.#table.isDone(id),
      leftToOthers: (ref) => this.#table.leftToOthers(ref),
    });
    this.#table.setWaiting(waiting);
    return waiting;
  }

  /** With leases: renews them, starts, stops and hands over streams (see `ownership_loop.ts`). */
  async #ownershipLoop(signal: AbortSignal): Promise<void> {
    if (!this.#ownership) return;
    await keepOwnership(this.#ownership, signal, {
      scheduler: this.#scheduler,
      ttlMs: this.#settings.sharing!.ttlMs,
      engine: this.#engine!,
      table: this.#table,
      start: async (refs) => {
        const said = await this.#startBegun(refs);
        if (refs.length > 0) sayStarted(said.started, () => true, said.created);
      },
      onChange: this.#hooks.onLeases,
    }).catch((error) => this.#conflict.abort(error));
  }

  /**
   * Where a stream's new consumer group starts. A stream that was deleted and came back is
   * new: copied whole, whatever STREAM_START_ID says (with "$", entries written before the
   * next discovery pass would be skipped).
   */
  #startId(ref: StreamRef): string {
    return this.#table.wasGone(ref.id) ? "0" : this.#settings.startId;
  }

  /** Reads lengths, last IDs, pending and lag of the streams seen (for status and metrics). */
  async #refreshStats(): Promise<void> {
    await this.#statsKeeper.refresh(this.#table.shownStreams(), {
      source: this.#control,
      target: this.#targetPool,
    });
  }

  /** One discovery pass (its SCAN walks paced by `paceMs`): find streams, start the new ones. */
  async #pass(signal: AbortSignal, paceMs: number): Promise<void> {
    const found = await findStreams(this.#control, this.#settings.discovery, {
      signal,
      skip: (ref) => this.#table.running(ref.id) !== undefined,
      known: (id) => this.#table.endedStream(id)?.ref,
      skipDiscovered: (id) => this.#table.running(id) !== undefined,
      paceMs,
    });
    for (const n of found.notices) this.#table.warnOnce(n.subject, n.variant, n.message, n.level);
    this.#table.sayGone(new Set(found.streams.map((ref) => ref.id)));
    if (nothingToCopy(found.streams, { settings: this.#settings.discovery, table: this.#table })) {
      log.warning("{message}", { message: noStreamsFound(this.#settings.discovery) }); // each pass
    }
    const candidates = await this.#owners.previousOwnersFirst(found.streams, {
      busy: (ref) => this.#table.running(ref.id) !== undefined,
    });
    const fresh = this.#table.admit(candidates);
    if (this.#ownership) this.#table.setWaiting(fresh);
    // Starting from now: no lease tick takes (or counts) them while their leases are taken here.
    const begun = this.#table.beginStart(fresh);
    const held = new Set(begun.filter((ref) => this.#ownership?.holderOf(ref.id)));
    const taken = this.#ownership && begun.length > 0
      ? await this.#ownership.take(begun).catch((error) => {
        this.#table.notTaken(begun);
        throw error;
      })
      : begun;
    // Only the streams that run here own their target stream here.
    this.#table.notTaken(notTakenOf(begun, taken, signal));
    await startInWaves(taken, {
      signal,
      start: (wave, said) => this.#startBegun(wave, said),
      moved: (ref) => held.has(ref),
      table: this.#table,
    });
  }

  /** Starts `refs` (begun with `beginStart`), adding what started to `said`. */
  async #startBegun(
    fresh: StreamRef[],
    said: StartSummary = { started: [], created: 0 },
  ): Promise<StartSummary> {
    if (fresh.length === 0) return said;
    try {
      const { created, streams } = await this.#engine!.start(fresh, {
        startId: (ref) => this.#startId(ref),
      });
      this.#table.started(streams);
      for (const s of streams) if (!s.ended) said.started.push(s.ref);
      said.created += created;
      return said;
    } finally {
      this.#table.endStart(fresh);
    }
  }

  #logDiscoveryError(error: unknown): void {
    const level = isRetriableError(error) ? "debug" : "error";
    log[level]("Discovery pass failed: {error}", { error: errorMessage(error) });
  }
}
