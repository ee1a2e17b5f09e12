/**
 * The orchestrator: runs discovery on a timer, owns a `Map` of per-stream
 * loops, shares a bounded set of reader connections among them, and shuts
 * everything down in order when its signal aborts.
 *
 * @module
 */
import { Backoff, sleep } from "../backoff.ts";
import type { Config } from "../config/types.ts";
import { ConnectionPool } from "../redis/pool.ts";
import { findStreams } from "./discover.ts";
import { ConnectionError, errorMessage, isRetriableError, RedisReplyError } from "../errors.ts";
import { getLog } from "../log.ts";
import type { RedisConnection } from "../redis/connection.ts";
import { serverAddress } from "../redis/connection.ts";
import { ServerHealth, type ServerHealthStatus } from "../redis/server_health.ts";
import { StreamReader } from "./reader.ts";
import type { StreamRef } from "./stream_ref.ts";
import { readStreamStats, type StreamStats } from "./stats.ts";
import {
  type CopiedBatch,
  type StreamOutcome,
  StreamReplicator,
  type StreamStatus,
} from "./replicator.ts";
import { parseFlatMap, text } from "../redis/replies.ts";

const log = getLog("orchestrator");

/** Options for {@linkcode Orchestrator.run}. */
export interface RunOptions {
  /**
   * `run --once`: one discovery pass, copy until every stream is caught up, then return.
   * @default {false}
   */
  once?: boolean;
  /**
   * After the signal aborts, how long batches in flight may take to finish
   * (write and ack) before they are abandoned (they stay pending and are
   * re-delivered safely on the next start).
   * @default {5000}
   */
  graceMs?: number;
}

/** Per-batch and per-error hooks, for metrics. */
export interface OrchestratorHooks {
  /**
   * A batch was written and acked.
   * @default {undefined}
   */
  onBatch?: (stream: StreamRef, batch: CopiedBatch) => void;
  /**
   * An attempt failed (and will be retried).
   * @default {undefined}
   */
  onError?: (stream: StreamRef, kind: string) => void;
  /**
   * A stream's loop ended.
   * @default {undefined}
   */
  onStreamEnd?: (stream: StreamRef, outcome: StreamOutcome) => void;
  /**
   * A read from the source failed (and will be retried).
   * @default {undefined}
   */
  onReadError?: (kind: string) => void;
}

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

interface ReaderSlot {
  reader: StreamReader;
  run: Promise<void>;
  /** Streams assigned, per DB. */
  dbs: Map<number, number>;
}

interface Loop {
  stream: StreamRef;
  replicator: StreamReplicator;
  reader: StreamReader;
  promise: Promise<StreamOutcome>;
}

/** Replicates every configured and discovered stream. */
export class Orchestrator {
  #config: Config;
  #hooks: OrchestratorHooks;
  #sourceHealth: ServerHealth;
  #targetHealth: ServerHealth;
  #control: RedisConnection;
  #readerPool: ConnectionPool;
  #targetPool: ConnectionPool;
  #readers: ReaderSlot[] = [];
  #loops = new Map<string, Loop>();
  #targets = new Map<string, string>();
  #ended = new Map<string, { ref: StreamRef; status: StreamStatus }>();
  #outcomes = new Map<string, StreamOutcome>();
  #warned = new Map<string, string>();
  #stats = new Map<string, StreamStats>();
  #ready = false;
  #notReadyReason = "starting";
  #readerController = new AbortController();
  #hardSignal: AbortSignal = new AbortController().signal;
  #once = false;
  #started = false;
  #goneBefore = new Set<string>();
  #warnedUnblock = false;

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
    const entries: Array<{ id: string; status: StreamStatus }> = [...this.#ended.entries()].map((
      [id, e],
    ) => ({
      id,
      status: e.status,
    }));
    for (const [id, loop] of this.#loops) entries.push({ id, status: loop.replicator.status });
    const streams = entries.map(({ id, status }) => {
      const stats = this.#stats.get(id);
      return stats ? { ...status, stats } : status;
    });
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
    const hard = new AbortController();
    this.#hardSignal = hard.signal;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      log.info("Stopping: no new reads; finishing the batches in flight");
      this.#readerController.abort();
      // A read in flight is cut: what it delivered stays pending and is copied on the next start.
      this.#readerPool.close();
      graceTimer = setTimeout(() => {
        // Batches still in flight are abandoned: their commands fail at once, their
        // entries stay pending (re-delivered safely on the next start).
        hard.abort();
        this.#control.close();
        this.#targetPool.close();
      }, graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (!this.#config.streamsEnabled) {
        log.info(
          "Stream processing is disabled (REDIS_STREAMS_ENABLED=false); idling until stopped",
        );
        this.#ready = true;
        if (!once) await sleepUntilAborted(signal);
        return this.#result();
      }
      await this.#firstPass(signal);
      if (once) {
        await this.#settleLoops();
        await this.#checkNothingPending();
        return this.#result();
      }
      while (!signal.aborted) {
        await sleep(this.#config.discoveryInterval * 1000, signal);
        if (signal.aborted) break;
        try {
          await this.#pass(signal);
          await this.#refreshStats();
          if (this.#config.mirrorSourceTrim) await this.#mirrorTrims(signal);
        } catch (error) {
          this.#logDiscoveryError(error);
        }
      }
      await this.#settleLoops();
      return this.#result();
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#readerController.abort();
      await Promise.allSettled(this.#readers.map((r) => r.run));
      await Promise.allSettled([...this.#loops.values()].map((l) => l.promise));
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      this.#control.close();
      this.#readerPool.close();
      this.#targetPool.close();
      log.info("Stopped");
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
        await sleep(backoff.next(), signal);
      }
    }
  }

  /** Reads lengths, last IDs, pending and lag of every stream seen (for status and metrics). */
  async #refreshStats(): Promise<void> {
    const refs = [...this.#loops.values()].map((l) => l.stream);
    for (const { ref } of this.#ended.values()) refs.push(ref);
    if (refs.length === 0) {
      this.#stats.clear();
      return;
    }
    // Entries handled so far, taken before the read, so that handled + lag + pending
    // (what progress shows as the total) counts no entry twice.
    const handled = new Map<string, number>();
    for (const [id, loop] of this.#loops) {
      handled.set(id, loop.replicator.status.copied + loop.replicator.status.skipped);
    }
    const stats = await readStreamStats(
      { source: this.#control, target: this.#targetPool.pick(refs[0].targetDb) },
      refs,
      { group: this.#config.consumerGroup },
    );
    for (const [id, s] of stats) s.handledAtRefresh = handled.get(id) ?? 0;
    this.#stats = stats;
  }

  /**
   * MIRROR_SOURCE_TRIM: trims each target stream to its source's first ID
   * (XTRIM MINID), so entries trimmed or deleted at the head of the source
   * leave the target too. Uses the stats of the last refresh.
   */
  async #mirrorTrims(signal: AbortSignal): Promise<void> {
    for (const loop of this.#loops.values()) {
      if (signal.aborted) return;
      try {
        await this.#mirrorTrim(loop.stream);
      } catch (error) {
        if (error instanceof ConnectionError) throw error; // the server is gone: next pass
        // One stream's refusal does not keep the others from being trimmed.
        log.debug("Mirroring the trim of {stream} failed: {error}", {
          stream: loop.stream.label,
          error: errorMessage(error),
        });
      }
    }
  }

  async #mirrorTrim(ref: StreamRef): Promise<void> {
    const stats = this.#stats.get(ref.id);
    if (!stats?.sourceIsStream || stats.targetWrongType) return;
    let minId = stats.firstSourceId;
    if (!minId) {
      // Empty source: everything up to its last ID was trimmed.
      const info = parseFlatMap(await this.#control.send(ref.db, ["XINFO", "STREAM", ref.key]));
      const top = text(info.get("last-generated-id") ?? "0-0");
      if (top === "0-0") return;
      minId = nextId(top);
    }
    const removed = Number(
      await this.#targetPool.pick(ref.targetDb).send(ref.targetDb, [
        "XTRIM",
        ref.targetKey,
        "MINID",
        minId,
      ]),
    );
    if (removed > 0) {
      log.debug("Trimmed {count} entries of {target} below {minId}, as on the source", {
        count: removed,
        target: ref.targetLabel,
        minId,
      });
    }
  }

  /** Waits for every loop to end (they end on abort, or in once mode when caught up). */
  async #settleLoops(): Promise<void> {
    while (this.#loops.size > 0) {
      await Promise.allSettled([...this.#loops.values()].map((l) => l.promise));
    }
  }

  /** One discovery pass: find streams, start a loop for each new one. */
  async #pass(signal: AbortSignal): Promise<void> {
    const found = await findStreams(this.#control, this.#config, {
      signal,
      skip: (ref) => this.#loops.has(ref.id),
    });
    for (const n of found.notices) this.#warnOnce(n.subject, n.variant, n.message, n.level);
    const candidates = await this.#previousOwnersFirst(found.streams);
    for (const ref of candidates) {
      if (signal.aborted) return;
      if (this.#loops.has(ref.id)) continue;
      const owner = this.#targets.get(ref.targetId);
      if (owner !== undefined && owner !== ref.id) {
        const other = this.#loops.get(owner)?.stream.label ?? owner;
        this.#warnOnce(
          `collision:${ref.id}`,
          owner,
          `Streams ${other} and ${ref.label} would both be written to target stream ${ref.targetLabel}; ${ref.label} is skipped, ${other} keeps replicating`,
          "error",
        );
        continue;
      }
      this.#start(ref, signal);
    }
  }

  /**
   * Of streams that would share a target stream no loop owns now, puts the
   * one that already has the consumer group first: it wrote that target
   * stream before (before a restart, or before its loop ended), so it must
   * keep it, or the target would mix the entries of two streams. Without
   * such a stream the first found (lowest DB) wins, as on a first start.
   */
  async #previousOwnersFirst(candidates: StreamRef[]): Promise<StreamRef[]> {
    const byTarget = new Map<string, StreamRef[]>();
    for (const ref of candidates) {
      if (this.#loops.has(ref.id) || this.#targets.has(ref.targetId)) continue;
      byTarget.set(ref.targetId, [...(byTarget.get(ref.targetId) ?? []), ref]);
    }
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

  #start(ref: StreamRef, signal: AbortSignal): void {
    const config = this.#config;
    const reader = this.#readerFor(ref);
    const replicator = new StreamReplicator(ref, {
      reader,
      source: this.#control,
      target: this.#targetPool,
      group: config.consumerGroup,
      consumer: config.consumerName,
      // A stream that was deleted and came back is new: copy it whole, whatever STREAM_START_ID
      // says (with "$", entries written before the next discovery pass would be skipped).
      startId: this.#goneBefore.has(ref.id) ? "0" : config.startId,
      autoCreateGroup: config.autoCreateGroups,
      batchSize: config.batchSize,
      backoffBaseMs: config.target.backoffBase * 1000,
      backoffMaxMs: config.target.backoffMax * 1000,
      maxRetries: config.target.maxRetries,
      once: this.#once,
      hardSignal: this.#hardSignal,
      pendingCheckIntervalMs: config.pendingCheckInterval * 1000,
      targetMaxlen: config.targetStreamMaxlen,
      consumerIdleMs: config.consumerIdleTimeout * 1000,
      onBatch: this.#hooks.onBatch,
      onError: this.#hooks.onError,
    });
    this.#targets.set(ref.targetId, ref.id);
    this.#ended.delete(ref.id);
    log.debug("Replicating {stream} to {target}", { stream: ref.label, target: ref.targetLabel });
    const promise = replicator.run(signal).then((outcome) => {
      this.#loops.delete(ref.id);
      if (this.#targets.get(ref.targetId) === ref.id) this.#targets.delete(ref.targetId);
      reader.release(ref);
      const entry = this.#readers.find((r) => r.reader === reader);
      if (entry) {
        const n = (entry.dbs.get(ref.db) ?? 1) - 1;
        if (n <= 0) entry.dbs.delete(ref.db);
        else entry.dbs.set(ref.db, n);
      }
      // A stream that is gone disappears from status and metrics; others stay visible.
      if (outcome === "gone") {
        this.#stats.delete(ref.id);
        this.#goneBefore.add(ref.id);
      } else this.#ended.set(ref.id, { ref, status: replicator.status });
      this.#outcomes.set(ref.id, outcome);
      this.#reportOutcome(ref, outcome, replicator.status);
      this.#hooks.onStreamEnd?.(ref, outcome);
      return outcome;
    });
    this.#loops.set(ref.id, { stream: ref, replicator, reader, promise });
  }

  #reportOutcome(ref: StreamRef, outcome: StreamOutcome, status: StreamStatus): void {
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
      log.warning("Stream {stream} is gone ({reason}); its loop ended", {
        stream: ref.label,
        reason: status.lastError,
      });
    } else if (outcome === "caught-up" || outcome === "stopped") {
      this.#warned.delete(ref.id);
    }
  }

  /** The reader for a new stream: a new connection while the pool has room, else the least loaded. */
  #readerFor(ref: StreamRef): StreamReader {
    let best: ReaderSlot | undefined;
    for (const r of this.#readers) {
      const sameDb = r.dbs.has(ref.db) || r.dbs.size === 0;
      if (!sameDb) continue;
      if (!best || r.reader.load < best.reader.load) best = r;
    }
    const needNew = !best || best.reader.load > 0;
    if (needNew && this.#readerPool.canDedicate) {
      const conn = this.#readerPool.dedicate(ref.db, `reader${this.#readers.length}`);
      const reader = new StreamReader(conn, {
        group: this.#config.consumerGroup,
        consumer: this.#config.consumerName,
        batchSize: this.#config.batchSize,
        blockMs: Math.max(1, Math.round(this.#config.pollInterval * 1000)),
        once: this.#once,
        backoffBaseMs: this.#config.source.backoffBase * 1000,
        backoffMaxMs: this.#config.source.backoffMax * 1000,
        maxRetries: this.#config.source.maxRetries,
        onError: this.#hooks.onReadError,
        unblock: (id) => {
          this.#control.send(undefined, ["CLIENT", "UNBLOCK", id]).catch((error) => {
            // The reader wakes up at the end of its block anyway, only later.
            // Only a refusal is worth a word (a lost connection is reported elsewhere).
            if (this.#warnedUnblock || !(error instanceof RedisReplyError)) return;
            this.#warnedUnblock = true;
            log.warning(
              "CLIENT UNBLOCK failed ({error}); new entries may wait up to STREAM_POLL_INTERVAL (the ACL user needs CLIENT UNBLOCK)",
              { error: errorMessage(error) },
            );
          });
        },
      });
      best = { reader, run: reader.run(this.#readerController.signal), dbs: new Map() };
      this.#readers.push(best);
    }
    if (!best) {
      for (const r of this.#readers) if (!best || r.reader.load < best.reader.load) best = r;
    }
    const chosen = best!;
    chosen.reader.assign(ref);
    chosen.dbs.set(ref.db, (chosen.dbs.get(ref.db) ?? 0) + 1);
    return chosen.reader;
  }

  /** `run --once`: every stream that caught up must have nothing pending in its group. */
  async #checkNothingPending(): Promise<void> {
    for (const [id, outcome] of this.#outcomes) {
      const ended = this.#ended.get(id);
      if (outcome !== "caught-up" || !ended) continue;
      const { ref, status } = ended;
      try {
        const reply = await this.#control.send(ref.db, [
          "XPENDING",
          ref.key,
          this.#config.consumerGroup,
        ]);
        const count = Array.isArray(reply) ? Number(reply[0]) : 0;
        if (count > 0) {
          status.state = "error";
          status.lastError =
            `${count} entries still pending in group "${this.#config.consumerGroup}"`;
          this.#outcomes.set(id, "error");
        }
      } catch (error) {
        status.lastError = `Could not check pending entries: ${errorMessage(error)}`;
        this.#outcomes.set(id, "error");
      }
    }
  }

  #result(): RunResult {
    const failures: RunResult["failures"] = [];
    for (const [id, outcome] of this.#outcomes) {
      if (outcome === "caught-up" || outcome === "gone") continue;
      if (outcome === "stopped" && !this.#once) continue;
      const ended = this.#ended.get(id);
      const status = ended?.status;
      const label = ended?.ref.label ?? id;
      const reason = outcome === "skipped"
        ? `no consumer group "${this.#config.consumerGroup}" (STREAM_AUTO_CREATE_CONSUMER_GROUPS=false)`
        : outcome === "stopped"
        ? "interrupted before it was up to date"
        : status?.lastError ?? outcome;
      failures.push({ stream: label, reason });
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

function sleepUntilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/** The smallest stream ID above `id`. */
function nextId(id: string): string {
  const [ms, seq = "0"] = id.split("-");
  return `${ms}-${BigInt(seq) + 1n}`;
}
