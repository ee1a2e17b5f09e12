/**
 * The target writer: writes what the streams read, with the original IDs,
 * one MULTI/EXEC per stream (atomic: a target out of memory or read-only
 * refuses it whole), and the writes of every stream ready in the same tick
 * in one pipeline. Each stream has at most one write in flight; the entries
 * read meanwhile go into its next write (coalescing, capped in entries and
 * bytes), so throughput does not depend on the round trip and no fence is
 * needed. Entries at or below the target's last ID are re-deliveries:
 * confirmed on the target and only acknowledged. A write that does not
 * directly follow the target's top is proven against the source first
 * (`_continuity.ts`): nothing is ever written above a hole. An entry above
 * the target's `proto-max-bulk-len` stops its stream (`_entry_limit.ts`).
 *
 * @module
 */
import { ConnectionError, errorMessage, RedisReplyError, TargetLostError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import {
  type TargetWriterOptions,
  WRITE_MAX_BYTES,
  WRITE_MAX_ENTRIES,
  type WriterHooks,
} from "./write_hooks.ts";

import {
  compareIds,
  entryId,
  type RawEntry,
  type RespValue,
  type ServerPool,
  WRITE_REPLY,
  writeReplies,
} from "../../redis/mod.ts";
import { LogDigest } from "../_log_digest.ts";
import { confirmReplicas, type ReplicaWait, waitShortfall } from "./_replica_wait.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { writeChecked } from "./target_check.ts";
import { highestId, writeOutcome } from "./_write_outcome.ts";
import { type ContinuityCheck, continuityChecks, passedEntries } from "./_continuity.ts";
import { encodeWrites, pipelineSize, pipelinesOf, type Write } from "./_write_pipeline.ts";
import { firstTooLarge, refusedWrite, TargetBulkLimit } from "./_entry_limit.ts";
import { requeue, retryDelay, stopsStream } from "./_retry.ts";

const log = getLog("replicator");
type Unproven = { write: Write; careful: boolean; checks: ContinuityCheck[] };

/** Writes the streams' entries to the target; see the module doc. */
export class TargetWriter {
  readonly #pool: ServerPool;
  readonly #hooks: WriterHooks;
  readonly #options: TargetWriterOptions;
  readonly #ready = new Set<ReplicatedStream>();
  readonly #maxlen: string[];
  readonly #wait: ReplicaWait | undefined;
  /** The target's connection generation now (see {@linkcode TargetWriterOptions.targetGeneration}). */
  readonly #generation: () => number;
  /** The target's proto-max-bulk-len. */
  readonly #limit: TargetBulkLimit;
  #flushQueued = false;
  #inflight = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #retryLog = new LogDigest(
    log,
    "warning",
    (streams, error) => `Batch of ${streams} not acknowledged yet: ${error}; retrying`,
  );
  readonly #resumedLog = new LogDigest(
    log,
    "info",
    (streams) => `Replication of ${streams} resumed`,
    0,
  );

  constructor(pool: ServerPool, hooks: WriterHooks, options: TargetWriterOptions) {
    this.#pool = pool;
    this.#hooks = hooks;
    this.#options = options;
    this.#generation = options.targetGeneration ?? (() => 0);
    this.#limit = new TargetBulkLimit(pool, this.#generation);
    this.#maxlen = options.targetMaxlen ? ["MAXLEN", "~", String(options.targetMaxlen)] : [];
    const replicas = options.waitReplicas ?? 0;
    this.#wait = replicas > 0 ? { replicas, timeoutMs: options.waitTimeoutMs ?? 1000 } : undefined;
  }

  /** Writes in flight. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Resolves once no write is in flight. */
  whenIdle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** `stream` has something to write (or may have): write it in this tick's pipeline. */
  schedule(stream: ReplicatedStream): void {
    if (stream.writing) return;
    this.#ready.add(stream);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    // The target's limit, read again after each reconnect, before anything is written.
    const first = this.#ready.values().next().value;
    const limit = first && this.#limit.known(first.ref.targetDb, () => this.#flush());
    if (limit === undefined) return;
    const now = Date.now();
    const together: Write[] = [];
    const unproven: Unproven[] = [];
    for (const stream of this.#ready) {
      if (stream.writing || stream.retryAt > now) continue; // its retry schedules it again
      this.#ready.delete(stream);
      if (!this.#hooks.canWrite(stream)) continue;
      if (stream.buffered === 0 && stream.deleted.length === 0) continue;
      if (stream.writeCap === 0) stream.writeCap = WRITE_MAX_ENTRIES;
      const cap = stream.writeCap;
      // Bytes shrink with the entries after OOM, down to a write of STREAM_BATCH_SIZE entries
      // whatever their size (the smallest write is a batch, as docs/design.md says).
      const entries = stream.take(
        cap,
        cap <= this.#options.minWriteEntries
          ? Number.MAX_SAFE_INTEGER
          : Math.max(1, Math.floor(WRITE_MAX_BYTES * cap / WRITE_MAX_ENTRIES)),
      );
      // Written up to an entry the target cannot take; it stops the stream: nothing after it.
      const large = firstTooLarge(stream, entries, limit);
      if (large && large.at > 0) stream.unshift(entries.splice(large.at));
      const deleted = stream.takeDeleted();
      let bytes = 0;
      for (const e of entries) bytes += e.size;
      const write: Write = { stream, entries, deleted, bytes };
      stream.writing = true;
      this.#inflight++;
      if (large?.at === 0) {
        this.#tooLarge(write);
        continue;
      }
      const careful = entries.length === 0 ||
        compareIds(entryId(entries[0]), stream.targetTop) <= 0 ||
        this.#hooks.staleReadsPossible(stream) ||
        // The target reconnected since its top was last known: it may hold less now.
        stream.targetGeneration !== this.#generation();
      const checks = continuityChecks(stream, entries);
      if (checks.length > 0) unproven.push({ write, careful, checks });
      else if (careful) this.#writeCarefully(write);
      else together.push(write);
    }
    this.#writeInPipelines(together);
    if (unproven.length > 0) this.#prove(unproven);
  }

  /**
   * Writes whose first entry does not directly follow the target's top are
   * written once the source holds nothing between the two; one that would
   * leave a hole is dropped (its entries stay pending) and the stream's
   * recovery copies what was passed by first.
   */
  async #prove(unproven: Unproven[]) {
    const checks = unproven.flatMap((u) => u.checks);
    const passed = await passedEntries(this.#options.source, checks).catch((error) => {
      for (const { write } of unproven) this.#failed(write, error);
    });
    if (!passed) return;
    const together: Write[] = [];
    for (const { write, careful, checks } of unproven) {
      const check = checks.find((c) => passed.has(c));
      const to = check && passed.get(check);
      if (check === undefined || to === undefined) {
        if (careful) this.#writeCarefully(write);
        else together.push(write);
        continue;
      }
      this.#drop(write, () => this.#hooks.passedBy(write.stream, check.after, to));
    }
    this.#writeInPipelines(together);
  }

  /** Writes on the normal path (see `_write_pipeline.ts`). */
  #writeInPipelines(writes: Write[]): void {
    for (const p of pipelinesOf(writes, (key) => this.#pool.nodeOf(key))) {
      this.#writeTogether(p.db, p.writes);
    }
  }

  /** The normal path: one MULTI/EXEC per stream, all in one pipeline. */
  async #writeTogether(db: number, writes: Write[]): Promise<void> {
    const started = performance.now();
    const diverted = new Set<Write>();
    let replies: RespValue[];
    try {
      const conn = this.#pool.pick(db, writes[0].stream.ref.targetKey);
      const wait = this.#wait;
      const size = pipelineSize(writes, wait);
      replies = await conn.batch(db, size.replies, (out) => {
        out.reserve(size.bytes);
        // Asked again as the bytes go out (a restarted target's connection may be new): such a
        // stream's top is checked first, on the careful path; PINGs hold its place.
        const generation = this.#generation();
        encodeWrites(out, writes, {
          maxlen: this.#maxlen,
          wait,
          divert: (w) => w.stream.targetGeneration !== generation,
          diverted,
        });
        // The new IDs EXEC returns are not needed, only its errors.
      }, {
        buffers: true,
        parse: WRITE_REPLY,
        name: wait ? "MULTI/XADD/EXEC/WAIT" : "MULTI/XADD/EXEC",
        blockMs: wait?.timeoutMs ?? 0,
      });
    } catch (error) {
      // An entry refused with a protocol error (the limit changed, or was not readable).
      const refused = refusedWrite(writes, error);
      for (const w of writes) this.#failed(w, w === refused?.write ? refused.error : error);
      return;
    }
    const shortfall = this.#wait
      ? waitShortfall(replies[replies.length - 1], this.#wait)
      : undefined;
    let at = 0;
    for (const w of writes) {
      const slice = replies.slice(at, at + writeReplies(w.entries.length));
      at += writeReplies(w.entries.length);
      if (diverted.has(w)) this.#writeCarefully(w);
      else this.#settle(w, slice, { started, shortfall });
    }
  }

  /**
   * The replies of one stream's MULTI/XADD.../EXEC; `shortfall`: fewer
   * replicas than TARGET_WAIT_REPLICAS confirmed the pipeline.
   */
  #settle(
    w: Write,
    replies: RespValue[],
    { started, shortfall }: { started: number; shortfall: Error | undefined },
  ): void {
    const stream = w.stream;
    const outcome = writeOutcome(stream, w.entries, replies);
    if ("error" in outcome) return this.#failed(w, outcome.error);
    const { written, last, duplicates } = outcome;
    if (last !== undefined) stream.advance(entryId(last), compareIds);
    // Written, not confirmed by enough replicas: retried, the next write finds the entries
    // on the target and waits for the replicas again before they are acknowledged.
    if (shortfall) return this.#failed(w, shortfall);
    if (duplicates.length > 0) {
      // The target's top moved behind our back (an earlier delivery of these entries was
      // written after all, or another writer): check those entries carefully.
      this.#writeCarefully(w, { entries: duplicates, written, reload: true });
      return;
    }
    this.#done(w, written, 0, performance.now() - started);
  }

  /**
   * The careful path: entries at or below the target's top are confirmed
   * on the target, the rest written in one transaction; repeated while the
   * target refuses IDs as not above its top (it moved: reload it).
   */
  async #writeCarefully(
    w: Write,
    from: { entries: RawEntry[]; written: number; reload: boolean } = {
      entries: w.entries,
      written: 0,
      reload: false,
    },
  ): Promise<void> {
    const started = performance.now();
    const stream = w.stream;
    try {
      if (!from.reload && w.entries.length > 0 && this.#hooks.staleReadsPossible(stream)) {
        const ids = new Set<string>(w.deleted);
        for (const e of w.entries) ids.add(entryId(e));
        const batch = { highest: highestId(w.entries, w.deleted), ids };
        if (await this.#hooks.deliveredElsewhere(stream, batch)) {
          // First: the released stream is not caught up.
          return this.#drop(w, () => this.#hooks.rewind(stream));
        }
      }
      // One connection, one socket for the check and the WAIT after it: a WAIT only
      // vouches for the server it ran on.
      const target = this.#pool.pick(stream.ref.targetDb, stream.ref.targetKey);
      await target.connect();
      const socket = target.generation;
      const generation = this.#generation();
      const reconnected = stream.targetGeneration !== generation;
      const written = await writeChecked(stream, from.entries, {
        target,
        source: this.#options.source,
        maxlen: this.#maxlen,
        targetTrims: this.#options.targetTrims ?? this.#maxlen.length > 0,
        // After a failure the top is reloaded: the target may have lost entries meanwhile (a
        // failover to a replica that lacked them, a restart without persistence).
        reload: from.reload || stream.failures > 0 || reconnected,
      }) + from.written;
      stream.targetGeneration = generation;
      if (this.#wait) {
        await confirmReplicas(target, stream.ref.targetDb, this.#wait);
        if (target.generation !== socket) {
          throw new ConnectionError("The target connection was reopened during a checked write");
        }
      }
      this.#done(w, written, w.entries.length - written, performance.now() - started);
    } catch (error) {
      this.#failed(w, error);
    }
  }

  #done(w: Write, written: number, skipped: number, ms: number): void {
    const stream = w.stream;
    stream.failures = 0;
    stream.writeCap = Math.min(WRITE_MAX_ENTRIES, stream.writeCap * 2);
    if (!stream.ended && stream.life.on("write-succeeded")) {
      this.#resumedLog.add(stream.ref.label, "");
    }
    const ids: Array<string | RawEntry> = w.entries.slice();
    for (const id of w.deleted) ids.push(id);
    this.#release(w);
    this.#hooks.written(stream, { ids, written, skipped, deleted: w.deleted.length, ms });
    if (stream.buffered > 0 || stream.deleted.length > 0) this.schedule(stream);
  }

  #failed(w: Write, error: unknown): void {
    const stream = w.stream;
    if (stream.ended) {
      this.#release(w); // nothing more of it is written: its entries stay pending
      return;
    }
    if (error instanceof TargetLostError) {
      // The range the target lost is copied again first, then what is pending, in order.
      return this.#drop(w, () => this.#hooks.targetLost(stream, error));
    }
    const stop = stopsStream(stream, error);
    if (stop) {
      this.#hooks.stopped(stream, stop); // ended first: nothing takes it as caught up
      this.#release(w);
      return;
    }
    requeue(w, error, this.#options.minWriteEntries); // retried, in front of what was read since
    this.#release(w);
    const message = errorMessage(error);
    stream.status.errors++;
    stream.status.lastError = message;
    this.#options.onError?.(stream, error instanceof RedisReplyError ? error.code : "connection");
    stream.life.on("write-failed");
    this.#retryLog.add(stream.ref.label, message);
    const delay = retryDelay(stream.failures++, error, this.#options);
    stream.retryAt = Date.now() + delay;
    this.#options.scheduler.after(delay, () => {
      stream.retryAt = 0;
      this.schedule(stream);
    });
  }

  /**
   * A write whose first entry is above the target's limit: the limit is read
   * again (it may have been raised: the write goes then), else it stops the stream.
   */
  async #tooLarge(w: Write): Promise<void> {
    const still = firstTooLarge(w.stream, w.entries, await this.#limit.read(w.stream.ref.targetDb));
    if (still?.at === 0 || w.stream.ended) return this.#failed(w, still?.error);
    requeue(w, undefined, this.#options.minWriteEntries);
    this.#release(w);
    this.schedule(w.stream);
  }

  /** Drops a write (its entries stay pending: the recovery `then` starts claims them, in order). */
  #drop(w: Write, then: () => void): void {
    const stream = w.stream;
    stream.outstanding = Math.max(0, stream.outstanding - w.entries.length - w.deleted.length);
    then();
    this.#release(w);
  }

  #release(w: Write): void {
    w.stream.writing = false;
    this.#hooks.released(w.stream);
    if (--this.#inflight === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
