/**
 * Parsers for the RESP2 replies the replicator reads, as the connection returns
 * them with bulk strings as Uint8Array views.
 *
 * @module
 */

import { RawEntry } from "./resp_values.ts";

const DECODER = new TextDecoder();
const LATIN1 = new TextDecoder("latin1");

/** One stream entry: its ID and its raw field/value bytes, alternating. */
export interface StreamEntry {
  /** `ms-seq`. */
  id: string;
  /** Field, value, field, value... as raw bytes. */
  fields: Uint8Array[];
}

/** Text of a bulk string reply (UTF-8). */
export function text(value: unknown): string {
  if (value instanceof Uint8Array) return DECODER.decode(value);
  return String(value);
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

/** A flat `[name, value, name, value...]` reply as a Map with text names. */
export function parseFlatMap(reply: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!Array.isArray(reply)) return map;
  // The names are ASCII (XINFO's fields): no decoder needed.
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(ascii(reply[i]), reply[i + 1]);
  return map;
}

/** Compares two stream IDs `ms-seq` (canonical decimal): negative, 0 or positive. */
export function compareIds(a: string, b: string): number {
  const ai = a.indexOf("-");
  const bi = b.indexOf("-");
  const am = ai < 0 ? a : a.slice(0, ai);
  const bm = bi < 0 ? b : b.slice(0, bi);
  const byMs = compareDecimal(am, bm);
  if (byMs !== 0) return byMs;
  return compareDecimal(ai < 0 ? "0" : a.slice(ai + 1), bi < 0 ? "0" : b.slice(bi + 1));
}

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The millisecond time inside a stream ID. */
export function idTime(id: string): number {
  return Number(id.split("-")[0]);
}

export { RawEntry };

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

/** A raw entry's ID as text. */
export function entryId(entry: RawEntry): string {
  return entry.idText();
}

/** An ASCII bulk string (an ID, a field name) as text, without a decoder for short ones. */
export function ascii(value: unknown): string {
  if (!(value instanceof Uint8Array)) return String(value);
  if (value.length > 64) return LATIN1.decode(value);
  return String.fromCharCode.apply(null, value as unknown as number[]);
}
