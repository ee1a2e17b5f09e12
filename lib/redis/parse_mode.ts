/**
 * How a reply is parsed, named: every value, no bulk string kept, or the
 * arrays at one depth kept as RESP bytes or as stream entries (nested, or
 * flat). The parser
 * asks for a mode at the start of each reply; the send options take one as
 * `parse`.
 *
 * @module
 */

/**
 * How one reply is parsed: one of the named modes below (encoded as a
 * number, so that asking for it per reply costs nothing; the encoding is
 * this module's and the parser's own).
 */
export type ParseMode = number & { readonly __parseMode: true };

/** Modes from here on are {@linkcode entriesAt}(mode - ENTRIES_BASE). */
export const ENTRIES_BASE = 1000;

/** Modes from here on are {@linkcode flatEntriesAt}(mode - FLAT_ENTRIES_BASE). */
export const FLAT_ENTRIES_BASE = 2000;

/** Every value parsed: bulk strings as views of the read buffer. */
export const PARSE_VALUES = -1 as ParseMode;

/**
 * No bulk string kept at all: each one is returned as the same empty array
 * (for replies whose values are not needed, only their errors, such as
 * EXEC's list of new IDs).
 */
export const PARSE_SKIP_BULKS = -2 as ParseMode;

/**
 * Every value parsed, bulk strings as strings of one character per byte
 * (its code point the byte's value: any bytes, nothing decoded), not as
 * views: for replies of many short values kept only as text, such as
 * `SCAN`'s keys (a view costs ~100 bytes, a short string ~40).
 */
export const PARSE_BYTE_STRINGS = -3 as ParseMode;

/**
 * Every value parsed, bulk strings decoded as UTF-8 text right away (what a
 * caller that did not ask for buffers gets), without a view of each first:
 * a start of 100,000 streams made ~450 MB of views only to decode them.
 */
export const PARSE_TEXT = -4 as ParseMode;

/**
 * The arrays at `depth` of a reply (0 = the reply itself) returned as one
 * `RawArray` each: their RESP bytes, not split into values.
 */
export function rawArraysAt(depth: number): ParseMode {
  if (!Number.isInteger(depth) || depth < 0 || depth >= ENTRIES_BASE) {
    throw new RangeError(`A raw depth must be a whole number from 0 to 999: got ${depth}`);
  }
  return depth as ParseMode;
}

/**
 * The arrays at `depth` of a reply returned as `RawEntry`s (stream entries:
 * 3 in an XREADGROUP reply, 2 in an XAUTOCLAIM reply, 1 in an XRANGE reply).
 */
export function entriesAt(depth: number): ParseMode {
  return (ENTRIES_BASE + rawArraysAt(depth)) as ParseMode;
}

/**
 * The arrays at `depth` of a reply read as flat lists of stream entries,
 * `[id, n, field, value, ..., id, n, ...]` (`n` the number of fields and
 * values, -1 for an entry that no longer exists), each returned as an
 * array of `RawEntry`s: what {@linkcode entriesAt}(depth + 1) returns for
 * the same entries nested (`[[id, [field, value, ...]], ...]`). A script
 * returns its entries so: Redis sends a nested array made in Lua as one
 * write per level of every entry, each its own TLS record (two per entry),
 * and a flat one in buffers of 16 KiB.
 */
export function flatEntriesAt(depth: number): ParseMode {
  return (FLAT_ENTRIES_BASE + rawArraysAt(depth)) as ParseMode;
}
