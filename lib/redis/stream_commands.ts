/**
 * The stream commands of the replication, encoded and decoded in one place:
 * `XREADGROUP` (and the fenced read, the same read inside a script that
 * checks the streams' leases first), the `XREAD` that waits for entries
 * without taking them, the `MULTI`/`XADD`.../`EXEC` that writes a batch with
 * its original IDs and bytes, `XAUTOCLAIM` and `XRANGE`; their replies, and
 * the parse mode each reply is read with. The encoders write into the
 * pipeline of a connection ({@linkcode RespWriter}); each says how many
 * replies it adds.
 *
 * @module
 */
import { RedisReplyError } from "../errors.ts";
import {
  entriesAt,
  flatEntriesAt,
  PARSE_SKIP_BULKS,
  type ParseMode,
  rawArraysAt,
} from "./parse_mode.ts";
import { ascii, text } from "./replies.ts";
import type { RespValue } from "./resp_parser.ts";
import { RawEntry } from "./resp_values.ts";
import { RespWriter } from "./resp_writer.ts";

export { RawEntry };

/** An XREADGROUP reply (`[[key, [[id, fields], ...]], ...]`): its entries as {@linkcode RawEntry}. */
export const READ_REPLY: ParseMode = entriesAt(3);
/**
 * A fenced read's reply (`[XREADGROUP's reply, before]`, see
 * {@linkcode fencedReadReply}), each stream's entries flat as the script
 * returns them: as {@linkcode RawEntry}s, the same as {@linkcode READ_REPLY}'s.
 */
export const FENCED_READ_REPLY: ParseMode = flatEntriesAt(3);
/** An XAUTOCLAIM reply (`[cursor, entries, deleted]`): its entries as {@linkcode RawEntry}. */
export const CLAIM_REPLY: ParseMode = entriesAt(2);
/**
 * A fenced claim's reply (`[cursor, [flat entries], deleted]`, see
 * {@linkcode parseFencedClaim}): its entries as {@linkcode RawEntry}, the same as {@linkcode CLAIM_REPLY}'s.
 */
export const FENCED_CLAIM_REPLY: ParseMode = flatEntriesAt(2);
/** An XRANGE or XREVRANGE reply: its entries as {@linkcode RawEntry}. */
export const RANGE_REPLY: ParseMode = entriesAt(1);
/** An XRANGE reply whose entries are only counted: each entry a raw array, nothing decoded. */
export const RANGE_COUNT_REPLY: ParseMode = rawArraysAt(2);
/** The replies of a write (`MULTI`, `QUEUED`s, `EXEC`): the IDs EXEC returns are skipped. */
export const WRITE_REPLY: ParseMode = PARSE_SKIP_BULKS;

const MULTI = encoded(["MULTI"]);
const EXEC = encoded(["EXEC"]);

/** One XREADGROUP, or one fenced read. */
export interface GroupRead {
  /** Consumer group. */
  group: string;
  /** Consumer name. */
  consumer: string;
  /** Entries per stream (COUNT). */
  count: number;
  /** The streams' keys. */
  keys: readonly Uint8Array[];
  /** Per key, `>` for new entries or the ID after which pending entries are read again. */
  ids: readonly string[];
}

/**
 * Appends `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS keys... ids...`
 * (one reply); `tail`, when given, is the `STREAMS ...` part encoded before
 * by {@linkcode encodeStreamsTail} (`keys` and `ids` are then not read).
 */
export function encodeGroupRead(
  w: RespWriter,
  read: GroupRead,
  options: { blockMs: number; tail?: Uint8Array },
): void {
  const { blockMs, tail } = options;
  w.arrayHeader(6 + (blockMs > 0 ? 2 : 0) + 1 + 2 * read.keys.length);
  w.bulk("XREADGROUP");
  w.bulk("GROUP");
  w.bulk(read.group);
  w.bulk(read.consumer);
  w.bulk("COUNT");
  w.bulkInteger(read.count);
  if (blockMs > 0) {
    w.bulk("BLOCK");
    w.bulkInteger(blockMs);
  }
  if (tail) w.raw(tail);
  else writeTail(w, read.keys, read.ids);
}

/** The `STREAMS keys... ids...` part of a read, encoded once to be sent many times. */
export function encodeStreamsTail(keys: readonly Uint8Array[], ids: readonly string[]): Uint8Array {
  const w = new RespWriter(1024);
  writeTail(w, keys, ids);
  return w.take().slice();
}

function writeTail(w: RespWriter, keys: readonly Uint8Array[], ids: readonly string[]): void {
  w.bulk("STREAMS");
  for (const key of keys) w.bulk(key);
  for (const id of ids) w.bulk(id);
}

/**
 * Appends the fenced read (one reply): `EVAL script 2n lease1..leaseN
 * key1..keyN group consumer count value1..valueN id1..idN`, the argument
 * layout of the FENCED_READ script. Its reply is XREADGROUP's, or a
 * `LEASELOST i,j` error (see {@linkcode leaseLostPositions}).
 */
export function encodeFencedRead(
  w: RespWriter,
  script: Uint8Array,
  read: GroupRead & { leaseKeys: readonly Uint8Array[]; values: readonly string[] },
): void {
  const n = read.keys.length;
  w.arrayHeader(6 + 4 * n);
  w.bulk("EVAL");
  w.bulk(script);
  w.bulkInteger(2 * n);
  for (const key of read.leaseKeys) w.bulk(key);
  for (const key of read.keys) w.bulk(key);
  w.bulk(read.group);
  w.bulk(read.consumer);
  w.bulkInteger(read.count);
  for (const value of read.values) w.bulk(value);
  for (const id of read.ids) w.bulk(id);
}

/**
 * A fenced read's reply split: XREADGROUP's reply, and per stream of it
 * the ID of the source entry before its first one delivered (undefined:
 * not asked, a history read).
 */
export function fencedReadReply(
  reply: RespValue,
): { read: RespValue; before: Array<string | undefined> } {
  if (!Array.isArray(reply) || reply.length !== 2) return { read: reply, before: [] };
  const [read, before] = reply as [RespValue, unknown];
  return {
    read,
    before: Array.isArray(before)
      ? before.map((id) => id instanceof Uint8Array ? ascii(id) : undefined)
      : [],
  };
}

/**
 * The positions (in the read's keys) whose lease a fenced read found lost,
 * from its `LEASELOST i,j` error; all of them when it names none; undefined
 * for any other reply.
 */
export function leaseLostPositions(reply: RespValue, keys: number): number[] | undefined {
  if (!(reply instanceof RedisReplyError) || reply.code !== "LEASELOST") return undefined;
  const positions = reply.message.slice("LEASELOST".length).trim().split(",")
    .filter((s) => s !== "").map(Number)
    .filter((i) => Number.isInteger(i) && i >= 0 && i < keys);
  return positions.length > 0 ? positions : Array.from({ length: keys }, (_, i) => i);
}

/**
 * Appends `XREAD COUNT 1 BLOCK ms STREAMS keys... ids...` (one reply): a wait
 * for entries after `ids` that takes nothing; without `blockMs`, a look
 * that does not wait.
 */
export function encodeWaitRead(
  w: RespWriter,
  keys: readonly Uint8Array[],
  options: { ids: readonly string[]; blockMs?: number },
): void {
  const block = options.blockMs !== undefined;
  w.arrayHeader((block ? 6 : 4) + 2 * keys.length);
  w.bulk("XREAD");
  w.bulk("COUNT");
  w.bulk("1");
  if (block) {
    w.bulk("BLOCK");
    w.bulkInteger(options.blockMs!);
  }
  writeTail(w, keys, options.ids);
}

/** The keys a wait's reply ({@linkcode encodeWaitRead}) names: those with entries to read. */
export function wokenKeys(reply: RespValue): Uint8Array[] {
  if (!Array.isArray(reply)) return [];
  const keys: Uint8Array[] = [];
  for (const item of reply) {
    if (Array.isArray(item) && item[0] instanceof Uint8Array) keys.push(item[0]);
  }
  return keys;
}

/**
 * Appends the transaction that writes `entries` to `key` with their own IDs
 * and field bytes (`maxlen`: `[]` or `["MAXLEN", "~", n]`): `MULTI`, one
 * `XADD` per entry, `EXEC`; {@linkcode writeReplies} replies. With
 * `mustExist`, each XADD has NOMKSTREAM: a stream that is gone is not made
 * again, its XADDs answer nil in EXEC's reply.
 */
export function encodeStreamWrite(
  w: RespWriter,
  entries: readonly RawEntry[],
  options: { key: Uint8Array | string; maxlen: readonly string[]; mustExist?: boolean },
): void {
  const { key, maxlen, mustExist = false } = options;
  w.raw(MULTI);
  for (const e of entries) {
    w.arrayHeader(3 + (mustExist ? 1 : 0) + maxlen.length + e.count);
    w.bulk("XADD");
    w.bulk(key);
    if (mustExist) w.bulk("NOMKSTREAM");
    for (const arg of maxlen) w.bulk(arg);
    w.bulkSlice(e.buffer, e.idStart, e.idEnd);
    w.rawSlice(e.buffer, e.fieldsStart, e.fieldsEnd);
  }
  w.raw(EXEC);
}

/** The replies a write of `entries` entries adds to its pipeline (MULTI, a QUEUED each, EXEC). */
export function writeReplies(entries: number): number {
  return entries + 2;
}

function encoded(args: string[]): Uint8Array {
  const w = new RespWriter(64);
  w.command(args);
  return w.take().slice();
}

/** One stream entry: its ID and its raw field/value bytes, alternating. */
export interface StreamEntry {
  /** `ms-seq`. */
  id: string;
  /** Field, value, field, value... as raw bytes. */
  fields: Uint8Array[];
}

/** Entries of one stream from an `[[id, [f, v, ...]], ...]` reply; entries without fields are skipped. */
export function parseEntries(reply: unknown): { entries: StreamEntry[]; deleted: string[] } {
  const entries: StreamEntry[] = [];
  const deleted: string[] = [];
  if (!Array.isArray(reply)) return { entries, deleted };
  for (const item of reply) {
    if (!Array.isArray(item)) continue;
    const id = text(item[0]);
    const fields = item[1];
    if (!Array.isArray(fields)) {
      deleted.push(id);
      continue;
    }
    entries.push({ id, fields: fields as Uint8Array[] });
  }
  return { entries, deleted };
}

/** Entries of a reply read in entries mode (`entriesAt`), and the IDs of those that no longer exist. */
export interface RawEntries {
  /** Entries in ID order. */
  entries: RawEntry[];
  /** IDs whose entry no longer exists. */
  deleted: string[];
  /** Bytes of the entries' fields. */
  bytes: number;
}

/** A list of {@linkcode RawEntry} (XRANGE read with `entriesAt(1)`). */
export function parseRawEntries(reply: unknown): RawEntries {
  const out: RawEntries = { entries: [], deleted: [], bytes: 0 };
  if (!Array.isArray(reply)) return out;
  for (const item of reply) {
    if (!(item instanceof RawEntry)) continue;
    if (item.deleted) out.deleted.push(item.idText());
    else {
      out.entries.push(item);
      out.bytes += item.size;
    }
  }
  return out;
}

/** XREADGROUP's `[[key, entries], ...]` read with `entriesAt(3)`: per key (a view), its entries. */
export function parseRawMultiRead(reply: unknown): Array<{ key: Uint8Array } & RawEntries> {
  if (!Array.isArray(reply)) return [];
  return reply.map((item) => {
    const [key, entries] = item as [Uint8Array, unknown];
    return { key, ...parseRawEntries(entries) };
  });
}

/** XAUTOCLAIM's `[cursor, entries, deletedIds]` read with `entriesAt(2)`. */
export function parseRawAutoClaim(reply: unknown): { cursor: string } & RawEntries {
  const [cursor, entries, deletedIds] = reply as [unknown, unknown, unknown];
  const parsed = parseRawEntries(entries);
  if (Array.isArray(deletedIds)) { for (const id of deletedIds) parsed.deleted.push(ascii(id)); }
  return { cursor: ascii(cursor), ...parsed };
}

/** A fenced claim's `[cursor, [entries], deletedIds]` read with {@linkcode FENCED_CLAIM_REPLY}. */
export function parseFencedClaim(reply: unknown): { cursor: string } & RawEntries {
  const [cursor, wrapped, deletedIds] = reply as [unknown, unknown, unknown];
  const entries = Array.isArray(wrapped) ? wrapped[0] : undefined;
  return parseRawAutoClaim([cursor, entries, deletedIds]);
}

/** A raw entry's ID as text. */
export function entryId(entry: RawEntry): string {
  return entry.idText();
}
