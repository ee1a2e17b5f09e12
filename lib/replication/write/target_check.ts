/**
 * What the target already holds: its streams' last IDs (loaded for many
 * streams in one pipeline), and the check that entries at or below a
 * stream's last ID really are on the target (re-deliveries) before they are
 * acknowledged without being written again. Never a silent loss: an entry
 * that should be there and is not stops its stream.
 *
 * @module
 */
import { RedisReplyError, StreamStoppedError, TargetLostError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import {
  compareIds,
  parseEntries,
  parseFlatMap,
  parseRawEntries,
  RANGE_COUNT_REPLY,
  RANGE_REPLY,
  type RawEntry,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { refusedWrite } from "./_entry_limit.ts";

const log = getLog("replicator");

/** The target refused an ID as not above its top: another delivery (or writer) was first. */
export const DUPLICATE_ID = /equal or smaller than the target stream top item/i;

/** The message of a stream whose target key is of another type. */
export function wrongTypeMessage(ref: StreamRef): string {
  return `Target key ${ref.targetLabel} exists and is not a stream (WRONGTYPE); nothing of ${ref.label} is copied until it is removed or renamed`;
}

/**
 * Loads the target's last generated ID of each stream (one pipeline per
 * target DB) into `targetTop` and `lastCopiedId`. A stream whose target key
 * is of another type gets a {@linkcode StreamStoppedError} in the result.
 */
export async function loadTargetTops(
  conn: RedisClient,
  streams: readonly ReplicatedStream[],
  options: { tops?: Map<ReplicatedStream, RawEntry> } = {},
): Promise<Map<ReplicatedStream, StreamStoppedError>> {
  const stopped = new Map<ReplicatedStream, StreamStoppedError>();
  for (const [db, chunk] of chunksBy(streams, (s) => s.ref.targetDb, 1000)) {
    // The last entry's ID: a missing key is no error (new streams have none), and a top
    // below the last generated ID (its last entry was deleted) is found by the first
    // write, which the target then refuses, and the exact top is reloaded.
    const replies = await conn.pipeline(
      db,
      chunk.map((s) => ["XREVRANGE", s.ref.targetKey, "+", "-", "COUNT", "1"]),
      { buffers: true, parse: RANGE_REPLY },
    );
    chunk.forEach((s, j) => {
      const r = replies[j];
      if (r.status === "fulfilled") {
        const top = parseRawEntries(r.value).entries[0];
        setTop(s, top?.idText() ?? "0-0");
        if (top) options.tops?.set(s, top);
      } else if (r.reason instanceof RedisReplyError && r.reason.code === "WRONGTYPE") {
        stopped.set(s, new StreamStoppedError(wrongTypeMessage(s.ref), { cause: r.reason }));
      } else {
        throw r.reason;
      }
    });
  }
  return stopped;
}

/**
 * Reloads one stream's target top, exactly (its last generated ID: after
 * the target refused IDs as not above it, after a failed write, after a
 * reconnect). A top below what was confirmed there is not taken: it throws
 * {@linkcode TargetLostError} (the target lost entries; they are copied again).
 */
export async function reloadTargetTop(
  conn: RedisClient,
  stream: ReplicatedStream,
): Promise<void> {
  const top = await readTargetTop(conn, stream);
  if (compareIds(top, stream.targetTop) < 0) throw targetLost(stream, top);
  setTop(stream, top);
}

/** The target stream's last generated ID ("0-0": no stream); WRONGTYPE stops the stream. */
export async function readTargetTop(conn: RedisClient, stream: ReplicatedStream): Promise<string> {
  let top: string;
  try {
    const info = parseFlatMap(
      await conn.send(stream.ref.targetDb, [
        "XINFO",
        "STREAM",
        stream.ref.targetKey,
      ]),
    );
    top = text(info.get("last-generated-id") ?? "0-0");
  } catch (error) {
    if (error instanceof RedisReplyError && /no such key/i.test(error.message)) {
      top = "0-0";
    } else if (error instanceof RedisReplyError && error.code === "WRONGTYPE") {
      throw new StreamStoppedError(wrongTypeMessage(stream.ref), { cause: error });
    } else throw error;
  }
  return top;
}

/** The error that says `stream`'s target holds less than was confirmed (its top is `found`). */
export function targetLost(stream: ReplicatedStream, found: string): TargetLostError {
  const ref = stream.ref;
  return new TargetLostError(
    `Target stream ${ref.targetLabel} holds less than was copied to it: its last ID is ${
      found === "0-0" ? "none (the stream is gone)" : found
    }, ${stream.targetTop} had been written there (the target was flushed, restarted without persistence, failed over to a replica that lacked the last writes, or the stream was deleted)`,
    { found, confirmed: stream.targetTop },
  );
}

function setTop(stream: ReplicatedStream, top: string): void {
  stream.targetTop = top;
  if (compareIds(top, stream.status.lastCopiedId) > 0) stream.status.lastCopiedId = top;
}

/**
 * Entries at or below the target's top were copied before, unless
 * something else wrote into the target stream. Confirms the target holds
 * each of `entries`, byte for byte (or trimmed it: older than its first
 * entry, and the target lost at least that many); otherwise throws
 * {@linkcode StreamStoppedError}, because the entry can no longer be
 * inserted: an entry of the same ID with other fields or values (another
 * writer, a source stream recreated with the same IDs) is never taken as
 * copied.
 */
export async function confirmOnTarget(
  stream: ReplicatedStream,
  entries: readonly RawEntry[],
  options: ConfirmOptions,
): Promise<void> {
  const { target: conn, source } = options;
  const ref = stream.ref;
  const ids = entries.map((e) => e.idText());
  // One XRANGE per ID, in one pipeline: the IDs may lie far apart on a
  // target that holds many entries between them (claimed batches).
  const replies = await conn.pipeline(
    ref.targetDb,
    ids.map((id) => ["XRANGE", ref.targetKey, id, id, "COUNT", "1"]),
    { buffers: true, parse: RANGE_REPLY },
  );
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const r = replies[i];
    if (r.status === "rejected") throw r.reason;
    const found = parseRawEntries(r.value).entries[0];
    if (found === undefined) missing.push(ids[i]);
    else if (!sameBytes(found.fields, entries[i].fields)) {
      throw new StreamStoppedError(
        `Entry ${
          ids[i]
        } of ${ref.label} is on target stream ${ref.targetLabel} with other fields or values (${found.size} bytes there, ${
          entries[i].size
        } in the source): something else wrote that ID into the target stream (another writer, or a source stream deleted and recreated with the same IDs). Nothing was acked; fix the target stream (see "Copying a stream again" in docs/operating.md) and the stream resumes on the next discovery pass`,
      );
    }
  }
  if (missing.length === 0) {
    log.debug("{count} entries of {stream} are already on the target; acking them", {
      count: ids.length,
      stream: ref.label,
      ids: [ids[0], ids[ids.length - 1]],
    });
    return;
  }
  const [head] = await conn.pipeline(ref.targetDb, [[
    "XRANGE",
    ref.targetKey,
    "-",
    "+",
    "COUNT",
    "1",
  ]], { buffers: true });
  if (head.status === "rejected") throw head.reason;
  const firstOnTarget = parseEntries(head.value).entries[0]?.id;
  let lost = missing.filter((id) =>
    firstOnTarget !== undefined && compareIds(id, firstOnTarget) >= 0
  );
  // Only this tool's own trimming (TARGET_STREAM_MAXLEN) can have removed entries it copied:
  // without it, an entry missing below the target's first one was never written there, or
  // was removed by someone else (or lost by the target), and is not taken as copied.
  if (!options.targetTrims) lost = missing;
  if (lost.length === 0) {
    // Missing entries older than the target's first entry (or all of them, on a target
    // stream emptied by trimming) pass as trimmed only if the target lost at least as
    // many entries (Redis >= 7: entries-added - length) as the source holds from the
    // first missing one up to the target's first entry: had they all been copied, all of
    // those would have been trimmed. A target that lost fewer (e.g. one holding entries
    // someone else wrote, trimmed a little) never held some of them.
    const removed = await removedFromTarget(conn, ref);
    if (removed !== undefined) {
      const older = await countBetween(source, ref, {
        from: missing[0],
        to: firstOnTarget === undefined ? stream.targetTop : `(${firstOnTarget}`,
        limit: removed + 1,
      });
      if (older > removed) lost = missing;
    }
  }
  if (lost.length > 0) {
    const first = firstOnTarget === undefined ? "none left" : `the first is ${firstOnTarget}`;
    throw new StreamStoppedError(
      `Entry ${
        lost[0]
      } of ${ref.label} is not on target stream ${ref.targetLabel}, whose last ID is already ${stream.targetTop} (${first}): it was never written there (something else wrote into the target stream, or the source stream was deleted and recreated with lower IDs) or it was removed from the target by someone else, and it can no longer be inserted in order. Nothing was acked; fix the target stream (see "Copying a stream again" in docs/operating.md) and the stream resumes on the next discovery pass`,
    );
  }
}

/** Whether two byte ranges are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Options for {@linkcode confirmOnTarget}. */
export interface ConfirmOptions {
  /** A connection to the target. */
  target: RedisClient;
  /** A connection to the source (to count what it holds below the target's first entry). */
  source: RedisClient;
  /**
   * This tool trims the target (TARGET_STREAM_MAXLEN): an entry missing
   * below the target's first one may have been trimmed after it was copied.
   * Without it, such an entry is never taken as copied.
   */
  targetTrims: boolean;
}

/** Most source entries counted to tell a trimmed target from one that never held them. */
const COUNT_LIMIT = 10_000;

/**
 * Source entries from `from` to `to` (an XRANGE end: an ID, or `(ID`),
 * counted up to `limit` (and at most {@linkcode COUNT_LIMIT}: beyond that,
 * no more is claimed, which errs on the side of trimming).
 */
async function countBetween(
  source: RedisClient,
  ref: StreamRef,
  options: { from: string; to: string; limit: number },
): Promise<number> {
  const count = Math.min(options.limit, COUNT_LIMIT);
  // Only the IDs matter, but XRANGE has no way to leave the fields out.
  const reply = await source.send(
    ref.db,
    ["XRANGE", ref.key, options.from, options.to, "COUNT", String(count)],
    { buffers: true, parse: RANGE_COUNT_REPLY },
  );
  return Array.isArray(reply) ? reply.length : 0;
}

/** How many entries were ever trimmed or deleted from the target stream; undefined before Redis 7. */
async function removedFromTarget(
  conn: RedisClient,
  ref: StreamRef,
): Promise<number | undefined> {
  let info: Map<string, unknown>;
  try {
    info = parseFlatMap(await conn.send(ref.targetDb, ["XINFO", "STREAM", ref.targetKey]));
  } catch (error) {
    if (error instanceof RedisReplyError && /no such key/i.test(error.message)) return 0;
    throw error;
  }
  const added = info.get("entries-added");
  if (added === undefined) return undefined;
  return Number(added) - Number(info.get("length") ?? 0);
}

/** Rounds of a careful write while the target's top keeps moving, at most. */
const MAX_CAREFUL_ROUNDS = 50;

/** Options for {@linkcode writeChecked}. */
export interface WriteCheckedOptions extends ConfirmOptions {
  /** Extra XADD arguments before the ID (TARGET_STREAM_MAXLEN: `MAXLEN ~ n`). */
  maxlen: readonly string[];
  /** Reload the target's top first (it moved: the target refused IDs as not above it). */
  reload: boolean;
}

/**
 * The careful write of `entries` (ID order): those at or below the
 * target's top are confirmed on the target, the rest written in one
 * transaction; repeated while the target refuses IDs as not above its top
 * and the top moves (reloaded each time; 50 rounds at most). Returns how many
 * were written; throws {@linkcode StreamStoppedError} when the stream
 * cannot go on, or the failure of a command (retried by the caller).
 */
export async function writeChecked(
  stream: ReplicatedStream,
  entries: readonly RawEntry[],
  options: WriteCheckedOptions,
): Promise<number> {
  const { target: conn, maxlen } = options;
  if (options.reload) await reloadTargetTop(conn, stream);
  let written = 0;
  let pending = entries;
  for (let round = 0;; round++) {
    let split = 0;
    while (split < pending.length && compareIds(pending[split].idText(), stream.targetTop) <= 0) {
      split++;
    }
    if (split > 0) {
      await confirmOnTarget(stream, pending.slice(0, split), options);
    }
    const fresh = pending.slice(split);
    if (fresh.length === 0) return written;
    const before = stream.targetTop;
    // NOMKSTREAM once the target stream holds entries: a stream gone meanwhile (deleted,
    // flushed) is not made again from the middle, the XADD answers nil.
    const exists = stream.targetTop !== "0-0" ? ["NOMKSTREAM"] : [];
    const results = await conn.transaction(
      stream.ref.targetDb,
      fresh.map((e) => ["XADD", stream.ref.targetKey, ...exists, ...maxlen, e.id, ...e.items()]),
    ).catch((error) => {
      // An entry the target refused with a protocol error stops the stream (see `_entry_limit.ts`).
      throw refusedWrite([{ stream, entries: fresh, deleted: [], bytes: 0 }], error)?.error ??
        error;
    });
    if (results.some((r) => r.status === "fulfilled" && r.value === null)) {
      throw targetLost(stream, "0-0");
    }
    let duplicate = false;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.status === "fulfilled") {
        written++;
        stream.advance(fresh[i].idText(), compareIds);
        continue;
      }
      const error = r.reason;
      if (error instanceof RedisReplyError && DUPLICATE_ID.test(error.message)) {
        duplicate = true;
        continue;
      }
      throw error instanceof RedisReplyError && error.code === "WRONGTYPE"
        ? new StreamStoppedError(wrongTypeMessage(stream.ref), { cause: error })
        : error;
    }
    if (!duplicate) return written;
    // Another copy of the same entries may be landing meanwhile (an instance that lost this
    // stream's lease writing what it had read), or the batch held an entry twice: go on while
    // the top moved since this round began and what is below it is confirmed; stop when it did
    // not move, or after many rounds.
    await reloadTargetTop(conn, stream);
    if (round >= MAX_CAREFUL_ROUNDS || compareIds(stream.targetTop, before) <= 0) {
      throw new StreamStoppedError(
        `Target stream ${stream.ref.targetLabel} keeps refusing IDs of ${stream.ref.label} as not above its top item: something else writes into it`,
      );
    }
    pending = fresh;
  }
}
