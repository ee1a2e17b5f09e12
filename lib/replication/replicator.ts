/**
 * The replication loop of one stream: make sure the consumer group exists,
 * take over entries left pending by earlier runs, then read, write, ack,
 * one batch at a time, for as long as it runs.
 *
 * One batch, safely (see DESIGN.md): entries whose ID is not above the
 * target's last ID were copied before (a crash between write and ack) and
 * are only acked, after checking that the target really holds them; the
 * rest are written in one pipeline with their original IDs; only when the
 * target confirmed every write is the whole batch acked. A batch that is
 * re-delivered therefore leaves the target unchanged.
 *
 * @module
 */
import { Backoff, sleep } from "../backoff.ts";
import type { ConnectionPool } from "../redis/pool.ts";
import {
  ConnectionError,
  errorMessage,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
  StreamStoppedError,
} from "../errors.ts";
import { getLog } from "../log.ts";
import type { RedisArg, RedisConnection } from "../redis/connection.ts";
import {
  compareIds,
  parseAutoClaim,
  parseEntries,
  parseFlatMap,
  type ReadBatch,
  type StreamEntry,
  text,
} from "../redis/replies.ts";
import type { StreamReader } from "./reader.ts";
import type { StreamRef } from "./stream_ref.ts";
import type { StreamStats } from "./stats.ts";

const log = getLog("replicator");

/** Where a stream's loop is. */
export type StreamState =
  | "starting"
  | "recovering"
  | "replicating"
  | "retrying"
  | "caught-up"
  | "stopped"
  | "error"
  | "gone"
  | "skipped";

/** A stream loop's small status object, read by metrics and `status`. */
export interface StreamStatus {
  /** Source DB. */
  db: number;
  /** Source key, escaped. */
  key: string;
  /** Target DB. */
  targetDb: number;
  /** Target key, escaped. */
  target: string;
  /** Where the loop is. */
  state: StreamState;
  /** Entries written to the target by this process. */
  copied: number;
  /** Entries found already on the target (re-deliveries) and acked. */
  skipped: number;
  /** Entries deleted from the source while pending, acked without copying. */
  deleted: number;
  /** Batches written. */
  batches: number;
  /** Pending entries taken over from earlier runs or other consumers. */
  recovered: number;
  /** The ID of the last entry known to be on the target. */
  lastCopiedId: string;
  /** Failed attempts so far. */
  errors: number;
  /** The last error, if any. */
  lastError?: string;
  /** Time (ms since epoch) of the last batch written. */
  lastBatchAt?: number;
  /** Lengths, last IDs, pending and lag, refreshed every discovery interval (absent until the first refresh). */
  stats?: StreamStats;
}

/** What a loop needs from the outside. */
export interface StreamReplicatorOptions {
  /** The reader serving this stream. */
  reader: StreamReader;
  /** Source connection for group management, claims and acks. */
  source: RedisConnection;
  /** Target connections. */
  target: ConnectionPool;
  /** Consumer group. */
  group: string;
  /** This process's consumer name. */
  consumer: string;
  /** Where a newly created group starts: "0", "$" or an ID. */
  startId: string;
  /** Create the group when missing. */
  autoCreateGroup: boolean;
  /** Entries per batch. */
  batchSize: number;
  /** Retry backoff, milliseconds. */
  backoffBaseMs: number;
  /** Retry backoff cap, milliseconds. */
  backoffMaxMs: number;
  /**
   * Failed attempts retried at once before backing off (TARGET_REDIS_MAX_RETRIES).
   * @default {0}
   */
  maxRetries?: number;
  /**
   * `run --once`: end when nothing is left to read.
   * @default {false}
   */
  once?: boolean;
  /**
   * Aborted when the batch in flight must be abandoned (it stays pending
   * and is re-delivered safely). Defaults to the run signal.
   * @default {undefined}
   */
  hardSignal?: AbortSignal;
  /**
   * TARGET_STREAM_MAXLEN: cap the target stream at about this many entries; 0 = none.
   * @default {0}
   */
  targetMaxlen?: number;
  /**
   * Milliseconds between group maintenance passes (claim what other
   * consumers left pending, remove dead consumers).
   * @default {60000}
   */
  pendingCheckIntervalMs?: number;
  /**
   * Another consumer idle this long with nothing pending is removed from the group.
   * @default {3600000}
   */
  consumerIdleMs?: number;
  /**
   * Called after each batch written (for metrics).
   * @default {undefined}
   */
  onBatch?: (stream: StreamRef, batch: CopiedBatch) => void;
  /**
   * Called for each failed attempt (for metrics).
   * @default {undefined}
   */
  onError?: (stream: StreamRef, kind: string) => void;
}

/** What one batch did, as passed to {@linkcode StreamReplicatorOptions.onBatch}. */
export interface CopiedBatch {
  /** Entries written to the target. */
  written: number;
  /** Entries found already on the target (re-deliveries) and only acked. */
  skipped: number;
  /** Milliseconds the batch took to write and ack. */
  ms: number;
}

/** How a loop ended. */
export type StreamOutcome = "stopped" | "caught-up" | "gone" | "skipped" | "error";

const DUPLICATE_ID = /equal or smaller than the target stream top item/i;

/** The replication loop of one stream. */
export class StreamReplicator {
  readonly stream: StreamRef;
  readonly status: StreamStatus;
  #o: StreamReplicatorOptions;
  /** The target's last generated ID (XADD refuses anything not above it). */
  #targetTop = "0-0";
  #warnedDeleted = false;
  #warnedCleanup = false;
  /** Extra XADD arguments before the ID (e.g. MAXLEN ~ n). */
  #xaddOptions: string[] = [];

  constructor(stream: StreamRef, options: StreamReplicatorOptions) {
    this.stream = stream;
    this.#o = options;
    if (options.targetMaxlen) this.#xaddOptions = ["MAXLEN", "~", String(options.targetMaxlen)];
    this.status = {
      db: stream.db,
      key: stream.keyLabel,
      targetDb: stream.targetDb,
      target: stream.targetKeyLabel,
      state: "starting",
      copied: 0,
      skipped: 0,
      deleted: 0,
      batches: 0,
      recovered: 0,
      lastCopiedId: "0-0",
      errors: 0,
    };
  }

  /**
   * Runs until `signal` aborts, the stream is gone, it must stop, or (once
   * mode) nothing is left to read. Never throws: the outcome says how it
   * ended, `status.lastError` why.
   */
  async run(signal: AbortSignal): Promise<StreamOutcome> {
    const hard = this.#o.hardSignal ?? signal;
    try {
      const hasGroup = await this.#retrying(() => this.#ensureGroup(), signal);
      if (signal.aborted) return this.#stopped();
      if (!hasGroup) {
        this.status.state = "skipped";
        return "skipped";
      }
      await this.#retrying(() => this.#loadTargetTop(), signal);
      if (signal.aborted) return this.#stopped();
      this.status.state = "recovering";
      await this.#maintain(signal, hard);
      if (signal.aborted) return this.#stopped();
      this.status.state = "replicating";
      const every = this.#o.pendingCheckIntervalMs ?? 60_000;
      let nextMaintenance = Date.now() + every;
      while (!signal.aborted) {
        const batch = await this.#readUntil(signal, nextMaintenance);
        if (batch === null) {
          if (signal.aborted) break;
        } else if (batch.entries.length === 0 && batch.deleted.length === 0) {
          this.status.state = "caught-up";
          return "caught-up";
        } else if (batch.entries.length > 0 && this.#o.reader.staleReadsPossible) {
          // A read whose reply never arrived may have reached the server late,
          // after a reconnect, delivering older entries to this consumer. Below
          // the batch's lowest ID, deleted ones included (they are acked with it).
          const lowest = [batch.entries[0].id, ...batch.deleted].sort(compareIds)[0];
          const earlier = await this.#deliveredEarlier(lowest, signal);
          if (signal.aborted) break; // not checked: leave the batch pending
          if (earlier) {
            log.warning(
              "Entries of {stream} below {id} were delivered by a read whose reply was lost; re-reading them in order",
              { stream: this.stream.label, id: lowest },
            );
            this.#o.reader.rewind(this.stream);
          } else {
            await this.#copyBatch(batch.entries, batch.deleted, hard);
          }
        } else {
          await this.#copyBatch(batch.entries, batch.deleted, hard);
        }
        if (!this.#o.once && Date.now() >= nextMaintenance) {
          await this.#maintain(signal, hard);
          nextMaintenance = Date.now() + every;
        }
      }
      return this.#stopped();
    } catch (error) {
      if (error instanceof StreamGoneError) {
        this.status.state = "gone";
        this.status.lastError = error.message;
        return "gone";
      }
      if (error instanceof AbortedError) return this.#stopped();
      this.status.state = "error";
      this.status.lastError = errorMessage(error);
      return "error";
    }
  }

  #stopped(): StreamOutcome {
    this.status.state = "stopped";
    return "stopped";
  }

  #sendSource(args: RedisArg[], buffers = false): Promise<unknown> {
    return this.#o.source.send(this.stream.db, args, { buffers });
  }

  #sendTarget(args: RedisArg[], buffers = false): Promise<unknown> {
    return this.#o.target.pick(this.stream.targetDb).send(this.stream.targetDb, args, { buffers });
  }

  /** Creates the group if allowed; false when the stream must be skipped. */
  async #ensureGroup(): Promise<boolean> {
    const { group, startId, autoCreateGroup } = this.#o;
    if (autoCreateGroup) {
      try {
        await this.#sendSource(["XGROUP", "CREATE", this.stream.key, group, startId]);
        log.info("Created consumer group {group} on {stream} at {startId}", {
          group,
          stream: this.stream.label,
          startId,
        });
        return true;
      } catch (error) {
        if (error instanceof RedisReplyError && error.code === "BUSYGROUP") return true;
        if (error instanceof RedisReplyError && /requires the key to exist/i.test(error.message)) {
          throw new StreamGoneError(`Stream ${this.stream.label} does not exist`, { cause: error });
        }
        if (error instanceof RedisReplyError && error.code === "WRONGTYPE") {
          throw new StreamGoneError(`Key ${this.stream.label} is not a stream`, { cause: error });
        }
        throw error;
      }
    }
    let groups: unknown;
    try {
      groups = await this.#sendSource(["XINFO", "GROUPS", this.stream.key]);
    } catch (error) {
      throw this.#gone(error);
    }
    const exists = Array.isArray(groups) &&
      groups.some((g) => parseFlatMap(g).get("name") === group);
    return exists;
  }

  async #loadTargetTop(): Promise<void> {
    try {
      const info = parseFlatMap(await this.#sendTarget(["XINFO", "STREAM", this.stream.targetKey]));
      this.#targetTop = text(info.get("last-generated-id") ?? "0-0");
    } catch (error) {
      if (error instanceof RedisReplyError && /no such key/i.test(error.message)) {
        this.#targetTop = "0-0";
        return;
      }
      if (error instanceof RedisReplyError && error.code === "WRONGTYPE") {
        throw new StreamStoppedError(this.#wrongTypeMessage(), { cause: error });
      }
      throw error;
    }
    if (compareIds(this.#targetTop, this.status.lastCopiedId) > 0) {
      this.status.lastCopiedId = this.#targetTop;
    }
  }

  /** The next batch, or null when `signal` aborts or `deadline` (ms since epoch) passes. */
  async #readUntil(signal: AbortSignal, deadline: number): Promise<ReadBatch | null> {
    if (this.#o.once) return await this.#o.reader.read(this.stream, signal);
    const wake = new AbortController();
    const timer = setTimeout(() => wake.abort(), Math.max(0, deadline - Date.now()));
    const onAbort = () => wake.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#o.reader.read(this.stream, wake.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Whether this consumer has pending entries below `firstId` that it never
   * received: a stale read executed by the server after the replicator had
   * moved on. Writing the batch first would make them impossible to insert.
   * Asked only while the reader had a failed read recently (only a read on
   * an abandoned connection can do this), so it costs nothing normally.
   */
  async #deliveredEarlier(firstId: string, signal: AbortSignal): Promise<boolean> {
    const { group, consumer } = this.#o;
    let reply: unknown;
    try {
      reply = await this.#retrying(
        () =>
          this.#sendSource(["XPENDING", this.stream.key, group, "-", `(${firstId}`, "1", consumer]),
        signal,
      );
    } catch (error) {
      throw this.#gone(error);
    }
    return Array.isArray(reply) && reply.length > 0;
  }

  /**
   * The source stream (or its group) may be deleted or replaced by another
   * type at any time: NOGROUP, WRONGTYPE and "no such key" become
   * {@linkcode StreamGoneError} (the loop ends, discovery picks it up again).
   */
  #gone(error: unknown): unknown {
    if (
      error instanceof RedisReplyError &&
      (error.code === "NOGROUP" || error.code === "WRONGTYPE" || /no such key/i.test(error.message))
    ) {
      return new StreamGoneError(`Stream ${this.stream.label} is gone: ${error.message}`, {
        cause: error,
      });
    }
    return error;
  }

  /** Group maintenance: copy what is pending (any consumer), then remove dead consumers. */
  async #maintain(signal: AbortSignal, hard: AbortSignal): Promise<void> {
    // The source stream (or its group) may be deleted or replaced by another
    // type at any time, also during maintenance: XAUTOCLAIM and XINFO then
    // fail with NOGROUP / no such key / WRONGTYPE, which ends the loop as
    // "gone" (rediscovered later), like the same failure of a read or an ack.
    try {
      await this.#recoverPending(signal, hard);
    } catch (error) {
      throw this.#gone(error);
    }
    if (signal.aborted) return;
    try {
      await this.#removeDeadConsumers();
    } catch (error) {
      const mapped = this.#gone(error);
      if (mapped !== error) throw mapped;
      // Housekeeping only (e.g. the ACL user may not run XGROUP DELCONSUMER):
      // never a reason to stop copying. The next maintenance pass tries again.
      if (!this.#warnedCleanup) {
        this.#warnedCleanup = true;
        log.warning("Could not remove idle consumers of {stream}: {error}", {
          stream: this.stream.label,
          error: errorMessage(error),
        });
      }
    }
  }

  /** Removes other consumers that have nothing pending and were idle longer than the threshold. */
  async #removeDeadConsumers(): Promise<void> {
    const { group, consumer, consumerIdleMs = 3_600_000 } = this.#o;
    const reply = await this.#sendSource(["XINFO", "CONSUMERS", this.stream.key, group]);
    if (!Array.isArray(reply)) return;
    for (const item of reply) {
      const info = parseFlatMap(item);
      const name = text(info.get("name"));
      const pending = Number(info.get("pending") ?? 0);
      const idle = Number(info.get("idle") ?? 0);
      if (name === consumer || pending > 0 || idle < consumerIdleMs) continue;
      await this.#sendSource(["XGROUP", "DELCONSUMER", this.stream.key, group, name]);
      log.info(
        "Removed consumer {name} from group {group} of {stream}: idle {seconds} s, nothing pending",
        {
          name,
          group,
          stream: this.stream.label,
          seconds: Math.round(idle / 1000),
        },
      );
    }
  }

  /** Takes over every pending entry of the group (ours and other consumers'), oldest first, and copies it. */
  async #recoverPending(signal: AbortSignal, hard: AbortSignal): Promise<void> {
    const { group, consumer, batchSize } = this.#o;
    let cursor = "0-0";
    let recovered = 0;
    do {
      if (signal.aborted) return;
      const reply = await this.#retrying(
        () =>
          this.#sendSource(
            [
              "XAUTOCLAIM",
              this.stream.key,
              group,
              consumer,
              "0",
              cursor,
              "COUNT",
              String(batchSize),
            ],
            true,
          ),
        signal,
      );
      if (reply === undefined) return;
      const claimed = parseAutoClaim(reply);
      cursor = claimed.cursor;
      if (claimed.entries.length > 0 || claimed.deleted.length > 0) {
        recovered += claimed.entries.length;
        await this.#copyBatch(claimed.entries, claimed.deleted, hard);
      }
    } while (cursor !== "0-0");
    if (recovered > 0) {
      this.status.recovered += recovered;
      log.info("Recovered {count} pending entries of {stream}", {
        count: recovered,
        stream: this.stream.label,
      });
    }
  }

  /**
   * Writes `entries` (ID order) to the target and acks them, plus `deleted`
   * IDs (pending entries deleted from the source). Retries retriable
   * failures with backoff until it succeeds or `hard` aborts.
   */
  async #copyBatch(entries: StreamEntry[], deleted: string[], hard: AbortSignal): Promise<void> {
    const backoff = new Backoff({
      baseMs: this.#o.backoffBaseMs,
      maxMs: this.#o.backoffMaxMs,
      immediateRetries: this.#o.maxRetries,
    });
    let lastLogged = "";
    let lastLoggedAt = 0;
    while (true) {
      if (hard.aborted) throw new AbortedError();
      try {
        const started = performance.now();
        const { written, skipped } = await this.#writeBatch(entries);
        const ids = [...entries.map((e) => e.id), ...deleted];
        if (ids.length > 0) {
          try {
            await this.#sendSource(["XACK", this.stream.key, this.#o.group, ...ids]);
          } catch (error) {
            throw this.#gone(error);
          }
        }
        this.status.copied += written;
        this.status.skipped += skipped;
        if (deleted.length > 0) {
          this.status.deleted += deleted.length;
          if (!this.#warnedDeleted) {
            this.#warnedDeleted = true;
            log.warning(
              "{count} pending entries of {stream} were deleted from the source before they were copied; acked",
              {
                count: deleted.length,
                stream: this.stream.label,
                ids: deleted.slice(0, 5),
              },
            );
          }
        }
        if (written > 0) {
          this.status.batches++;
          this.status.lastBatchAt = Date.now();
        }
        if (this.status.state === "retrying") {
          this.status.state = "replicating";
          log.info("Replication of {stream} resumed", { stream: this.stream.label });
        }
        this.#o.onBatch?.(this.stream, { written, skipped, ms: performance.now() - started });
        return;
      } catch (error) {
        if (error instanceof StreamStoppedError || error instanceof StreamGoneError) throw error;
        // Abandoned at shutdown: the batch stays pending and is skipped as copied next time.
        if (hard.aborted) throw new AbortedError();
        if (!isRetriableError(error)) {
          throw new StreamStoppedError(
            `Copy of a batch of ${this.stream.label} to ${this.stream.targetLabel} failed: ${
              errorMessage(error)
            }`,
            { cause: error },
          );
        }
        this.status.errors++;
        this.status.lastError = errorMessage(error);
        this.#o.onError?.(
          this.stream,
          error instanceof RedisReplyError ? error.code : "connection",
        );
        if (this.status.state !== "recovering") this.status.state = "retrying";
        const message = errorMessage(error);
        if (message !== lastLogged || Date.now() - lastLoggedAt > 60_000) {
          lastLogged = message;
          lastLoggedAt = Date.now();
          log.warning("Batch of {stream} not acknowledged yet: {error}; retrying", {
            stream: this.stream.label,
            error: message,
          });
        }
        await sleep(backoff.next(error instanceof ConnectionError), hard);
      }
    }
  }

  /**
   * Steps 2 and 3 of a batch: skip what the target already holds, write
   * the rest in one transaction. Returns how many entries were written and
   * how many were found already copied.
   */
  async #writeBatch(entries: StreamEntry[]): Promise<{ written: number; skipped: number }> {
    let written = 0;
    for (let round = 0;; round++) {
      let split = 0;
      while (split < entries.length && compareIds(entries[split].id, this.#targetTop) <= 0) split++;
      if (split > 0) await this.#confirmOnTarget(entries.slice(0, split));
      const fresh = entries.slice(split);
      if (fresh.length === 0) return { written, skipped: entries.length - written };
      const results = await this.#o.target.pick(this.stream.targetDb).transaction(
        this.stream.targetDb,
        fresh.map((e) => ["XADD", this.stream.targetKey, ...this.#xaddOptions, e.id, ...e.fields]),
      );
      let duplicate = false;
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        if (r.status === "fulfilled") {
          written++;
          this.#advance(fresh[i].id);
          continue;
        }
        const error = r.reason;
        if (error instanceof RedisReplyError && DUPLICATE_ID.test(error.message)) {
          duplicate = true;
          continue;
        }
        if (error instanceof RedisReplyError && error.code === "WRONGTYPE") {
          throw new StreamStoppedError(this.#wrongTypeMessage(), { cause: error });
        }
        throw error;
      }
      if (!duplicate) return { written, skipped: entries.length - written };
      // The target's top moved behind our back (another delivery of these
      // entries, or another writer): reload it and check the rest again.
      if (round >= 3) {
        throw new StreamStoppedError(
          `Target stream ${this.stream.targetLabel} keeps refusing IDs of ${this.stream.label} as not above its top item: something else writes into it`,
        );
      }
      await this.#loadTargetTop();
    }
  }

  #wrongTypeMessage(): string {
    return `Target key ${this.stream.targetLabel} exists and is not a stream (WRONGTYPE); nothing of ${this.stream.label} is copied until it is removed or renamed`;
  }

  #advance(id: string): void {
    if (compareIds(id, this.#targetTop) > 0) this.#targetTop = id;
    if (compareIds(id, this.status.lastCopiedId) > 0) this.status.lastCopiedId = id;
  }

  /**
   * Entries at or below the target's top were copied before, unless
   * something else wrote into the target stream. Confirms the target holds
   * each of them (or trimmed it: older than its first entry); otherwise the
   * stream must stop, because the entry can no longer be inserted.
   */
  async #confirmOnTarget(old: StreamEntry[]): Promise<void> {
    const first = old[0].id;
    const last = old[old.length - 1].id;
    // One XRANGE per ID, in one pipeline: the IDs may lie far apart on a
    // target that holds many entries between them (claimed batches).
    const replies = await this.#o.target.pick(this.stream.targetDb).pipeline(
      this.stream.targetDb,
      old.map((e) => ["XRANGE", this.stream.targetKey, e.id, e.id]),
      { buffers: true },
    );
    const missing = old.filter((_, i) => {
      const r = replies[i];
      if (r.status === "rejected") throw r.reason;
      return parseEntries(r.value).entries.length === 0;
    });
    if (missing.length === 0) {
      log.debug("{count} entries of {stream} are already on the target; acking them", {
        count: old.length,
        stream: this.stream.label,
        ids: [first, last],
      });
      return;
    }
    const head = parseEntries(
      await this.#sendTarget(["XRANGE", this.stream.targetKey, "-", "+", "COUNT", "1"], true),
    );
    const firstOnTarget = head.entries[0]?.id;
    let lost = missing.filter((e) =>
      firstOnTarget !== undefined && compareIds(e.id, firstOnTarget) >= 0
    );
    if (lost.length === 0) {
      // Missing entries older than the target's first entry pass as trimmed
      // only if the target lost at least that many entries (Redis >= 7:
      // entries-added - length); a target that never lost any (e.g. holding
      // only a higher ID someone else wrote) never held them.
      const removed = await this.#removedFromTarget();
      if (removed !== undefined && missing.length > removed) lost = missing;
    }
    if (lost.length > 0) {
      throw new StreamStoppedError(
        `Entry ${
          lost[0].id
        } of ${this.stream.label} is not on target stream ${this.stream.targetLabel}, whose last ID is already ${this.#targetTop}: something else wrote into the target stream, and the entry can no longer be inserted in order. Nothing was acked; fix the target stream (see "Copying a stream again" in the README) and the stream resumes on the next discovery pass`,
      );
    }
  }

  /** How many entries were ever trimmed or deleted from the target stream; undefined before Redis 7. */
  async #removedFromTarget(): Promise<number | undefined> {
    let info: Map<string, unknown>;
    try {
      info = parseFlatMap(await this.#sendTarget(["XINFO", "STREAM", this.stream.targetKey]));
    } catch (error) {
      if (error instanceof RedisReplyError && /no such key/i.test(error.message)) return 0;
      throw error;
    }
    const added = info.get("entries-added");
    if (added === undefined) return undefined;
    return Number(added) - Number(info.get("length") ?? 0);
  }

  /** Runs `op`, retrying retriable failures with backoff until `signal` aborts (then undefined). */
  async #retrying<T>(op: () => Promise<T>, signal: AbortSignal): Promise<T | undefined> {
    const backoff = new Backoff({
      baseMs: this.#o.backoffBaseMs,
      maxMs: this.#o.backoffMaxMs,
      immediateRetries: this.#o.maxRetries,
    });
    while (true) {
      if (signal.aborted) return undefined;
      try {
        return await op();
      } catch (error) {
        if (!isRetriableError(error)) throw error;
        this.status.errors++;
        this.status.lastError = errorMessage(error);
        await sleep(backoff.next(error instanceof ConnectionError), signal);
      }
    }
  }
}

class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortedError";
  }
}
