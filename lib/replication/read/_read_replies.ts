/**
 * A reader's XREADGROUP replies and reads: which reads one round trip
 * carries, the replies handed to their streams, and reads the server
 * refused. Internal to the reader.
 *
 * @module
 */
import type { RedisReplyError } from "../../errors.ts";
import {
  compareIds,
  entryId,
  parseRawMultiRead,
  type RawEntry,
  type RespValue,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { streamId } from "../stream/stream_ref.ts";
import type { ReadBudget } from "./read_hooks.ts";
import type { Turns } from "./_turns.ts";
import { groupBy } from "../_group_by.ts";

/** Keys in one non-blocking XREADGROUP. */
const MAX_KEYS_PER_READ = 500;
/** Reads of the streams with a backlog sent together in one round trip, at most. */
const MAX_READS_PER_ROUND_TRIP = 16;
/** Entries asked for in one round trip, at most (when it repeats reads). */
const ENTRIES_PER_ROUND_TRIP = 20_000;

/**
 * How many reads of `streams` streams go in one round trip: several while
 * few streams have a backlog (throughput), one when many do (memory).
 */
export function readsPerRoundTrip(streams: number, batchSize: number): number {
  const reads = Math.floor(ENTRIES_PER_ROUND_TRIP / (streams * batchSize));
  return Math.max(1, Math.min(MAX_READS_PER_ROUND_TRIP, reads));
}

/**
 * Entries a stream's first read asks for: a full one marks it hot (full
 * batches from then on); a few entries' memory per stream lets thousands
 * of new streams share one round trip where full batches let a hundred.
 */
export const FIRST_READ_COUNT = 10;

/** One XREADGROUP of a round trip: its streams, and whether it re-reads their pending entries. */
export interface PlannedRead {
  /** The streams read. */
  streams: ReplicatedStream[];
  /** With the history ID instead of ">". */
  fromHistory: boolean;
  /** Entries per stream (COUNT) when not STREAM_BATCH_SIZE: a first read. */
  count?: number;
}

/** What {@linkcode planRound} needs. */
export interface PlanRoundOptions {
  /** The read-ahead memory: what the reads may take is set aside there. */
  budget: ReadBudget;
  /** Where each kind of read stands in its turn. */
  turns: Turns<ReplicatedStream>;
  /** The kind of read (its turn). */
  turn: string;
  /** Streams read at most (besides re-reads of pending entries). */
  most: number;
  /** Several reads of each stream in the round trip (a backlog). */
  repeat: boolean;
  /** STREAM_BATCH_SIZE. */
  batchSize: number;
  /** A cluster: the slot of a stream (a read covers one slot). */
  slotOf?: (stream: ReplicatedStream) => number;
}

/**
 * One round trip's reads of `list`: its re-reads of pending entries, first
 * reads (of {@linkcode FIRST_READ_COUNT} entries) of the streams never read,
 * and reads of the others, each kind as many as the memory left allows, in
 * turns. Returns the streams read with ">" and the bytes set aside.
 */
export function planRound(
  list: readonly ReplicatedStream[],
  options: PlanRoundOptions,
): { commands: PlannedRead[]; fresh: ReplicatedStream[]; bytes: number } {
  const { budget, turns, turn, repeat, batchSize, slotOf } = options;
  // Never more than a batch (STREAM_BATCH_SIZE below 10: entries are large).
  const firstCount = Math.min(FIRST_READ_COUNT, batchSize);
  const history: ReplicatedStream[] = [];
  const unread: ReplicatedStream[] = [];
  const known: ReplicatedStream[] = [];
  for (const s of list) (s.history !== undefined ? history : s.probed ? known : unread).push(s);
  let most = Math.min(options.most, unread.length + known.length);
  let bytes = 0;
  let first: ReplicatedStream[] = [];
  if (unread.length > 0 && most > 0) {
    const share = budget.take(Math.min(most, unread.length), 1, firstCount);
    bytes += share.bytes;
    first = turns.next(`${turn} first`, unread, share.streams);
    most -= first.length;
  }
  const times = repeat ? readsPerRoundTrip(Math.max(1, most), batchSize) : 1;
  let fresh: ReplicatedStream[] = [];
  if (known.length > 0 && most > 0) {
    const share = budget.take(Math.min(most, known.length), times);
    bytes += share.bytes;
    fresh = turns.next(turn, known, share.streams);
  }
  // Re-reads alone: one stream's share set aside, as for any read.
  if (history.length > 0 && bytes === 0) bytes += budget.take(0, times).bytes;
  const commands = planReads(history, fresh, { times, ...(slotOf ? { slotOf } : {}) });
  for (const c of planReads([], first, { times: 1, ...(slotOf ? { slotOf } : {}) })) {
    commands.push({ ...c, count: firstCount });
  }
  return { commands, fresh: [...fresh, ...first], bytes };
}

/**
 * The reads of one round trip: the re-reads of `history` first, then
 * `times` reads of `fresh` (each brings the next batch), each of at most
 * 500 keys; with `slotOf` (a cluster), each of the keys of one slot only.
 */
export function planReads(
  history: ReplicatedStream[],
  fresh: ReplicatedStream[],
  options: { times: number; slotOf?: (stream: ReplicatedStream) => number },
): PlannedRead[] {
  const { times, slotOf } = options;
  const split = (streams: ReplicatedStream[]) =>
    slotOf ? [...groupBy(streams, slotOf).values()] : [streams];
  const commands: PlannedRead[] = [];
  for (const group of split(history)) {
    for (let i = 0; i < group.length; i += MAX_KEYS_PER_READ) {
      commands.push({ streams: group.slice(i, i + MAX_KEYS_PER_READ), fromHistory: true });
    }
  }
  const groups = split(fresh);
  for (let r = 0; r < times; r++) {
    for (const group of groups) {
      for (let i = 0; i < group.length; i += MAX_KEYS_PER_READ) {
        commands.push({ streams: group.slice(i, i + MAX_KEYS_PER_READ), fromHistory: false });
      }
    }
  }
  return commands;
}

/** What the dispatch needs of its reader. */
export interface DispatchContext {
  /** Entries per stream per read (STREAM_BATCH_SIZE): a full one means more is there. */
  batchSize: number;
  /** Hands entries (and IDs of pending entries found deleted) to a stream, in ID order. */
  deliver(stream: ReplicatedStream, entries: RawEntry[], deleted: string[], bytes: number): void;
  /**
   * A read found the source holding entries after `after` (the last one
   * delivered) up to `to` that were not delivered: the group was moved past them.
   */
  passedBy?: (stream: ReplicatedStream, after: string, to: string) => void;
}

/**
 * Hands the entries of one XREADGROUP reply of `streams` to them; adds
 * those that got some to `got`. The reply lists the streams that have
 * entries in the order they were asked for, so they are matched in one pass.
 */
export function dispatchInOrder(
  streams: ReplicatedStream[],
  reply: RespValue,
  options: DispatchContext & {
    fromHistory: boolean;
    got: Set<ReplicatedStream>;
    /** Per stream of the reply, the ID of the source entry before its first one (fenced reads). */
    before?: ReadonlyArray<string | undefined>;
  },
): void {
  const { fromHistory, got, batchSize, deliver, before = [] } = options;
  let j = 0;
  const items = parseRawMultiRead(reply);
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    // Streams before this one in the request had nothing.
    let k = j;
    while (k < streams.length && !sameBytes(streams[k].ref.key, item.key)) k++;
    let stream: ReplicatedStream | undefined;
    if (k < streams.length) {
      for (; j < k; j++) nothingFor(streams[j], fromHistory);
      stream = streams[j++];
    } else {
      // Out of the order asked for (Redis keeps it; never relied on blindly).
      stream = streams.slice(0, j).find((s) => sameBytes(s.ref.key, item.key));
      if (stream === undefined) continue; // not asked for
    }
    const n = item.entries.length + item.deleted.length;
    if (fromHistory) {
      // A re-read of this consumer's pending entries: go on from the last one returned
      // (deleted ones included) until none is left.
      stream.history = [...item.entries.map(entryId), ...item.deleted].sort(compareIds).at(-1);
    } else {
      const prev = before[index];
      const last = stream.lastDelivered;
      if (
        item.entries.length > 0 && prev !== undefined && last !== undefined &&
        compareIds(prev, last) > 0
      ) {
        // The source holds entries between the last one delivered and these: the group was
        // moved past them. These stay pending; the recovery looks and copies in order.
        got.add(stream);
        stream.hot = true;
        options.passedBy?.(stream, last, prev);
        continue;
      }
      stream.hot = n >= batchSize;
      if (item.entries.length > 0) stream.lastDelivered = entryId(item.entries.at(-1)!);
    }
    if (n === 0) continue;
    got.add(stream);
    deliver(stream, item.entries, item.deleted, item.bytes);
  }
  for (; j < streams.length; j++) nothingFor(streams[j], fromHistory);
}

/**
 * The reply of a blocking read (of DB `db`): the few streams that got
 * entries, found by their id (the others had nothing, and were not read
 * with a backlog: nothing to mark). False, delivering nothing, when one of
 * them is not a stream of the read.
 */
export function dispatchWoken(
  reply: RespValue,
  options: DispatchContext & { db: number; byId: ReadonlyMap<string, ReplicatedStream> },
): boolean {
  const { db, byId, batchSize, deliver } = options;
  const items = parseRawMultiRead(reply);
  const found: ReplicatedStream[] = [];
  for (const item of items) {
    const stream = byId.get(streamId(db, item.key));
    if (stream === undefined || stream.readsInFlight === 0) return false;
    found.push(stream);
  }
  items.forEach((item, i) => {
    const n = item.entries.length + item.deleted.length;
    found[i].hot = n >= batchSize;
    if (n > 0) deliver(found[i], item.entries, item.deleted, item.bytes);
  });
  return true;
}

function nothingFor(stream: ReplicatedStream, fromHistory: boolean): void {
  if (fromHistory) {
    stream.history = undefined;
    return;
  }
  // Entries were expected and none came: what the group delivered is not what this reader
  // knows (a reply lost, a SETID): a fenced reader loads it again before it waits.
  if (stream.hot) stream.lastDelivered = undefined;
  stream.hot = false;
}

/** Whether two keys are the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads of a pipeline the server refused (the others were handed over): which streams, and why. */
export class RefusedRead extends Error {
  readonly reply: RedisReplyError;
  readonly streams: ReplicatedStream[];
  constructor(reply: RedisReplyError, streams: ReplicatedStream[]) {
    super(reply.message, { cause: reply });
    this.name = "RefusedRead";
    this.reply = reply;
    this.streams = streams;
  }
}
