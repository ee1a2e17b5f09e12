/**
 * Parsers for the generic RESP2 replies the replicator reads (text, flat maps,
 * IDs), as the connection returns them with bulk strings as Uint8Array views. The
 * stream commands' replies are decoded in `stream_commands.ts`.
 *
 * @module
 */

const DECODER = new TextDecoder();
const LATIN1 = new TextDecoder("latin1");

/** Text of a bulk string reply (UTF-8). */
export function text(value: unknown): string {
  if (value instanceof Uint8Array) return DECODER.decode(value);
  return String(value);
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

/** An ASCII bulk string (an ID, a field name) as text, without a decoder for short ones. */
export function ascii(value: unknown): string {
  if (!(value instanceof Uint8Array)) return String(value);
  if (value.length > 64) return LATIN1.decode(value);
  return String.fromCharCode.apply(null, value as unknown as number[]);
}
