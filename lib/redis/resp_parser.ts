/**
 * An incremental RESP2 reply parser that reads straight into its own
 * buffers. Bulk strings are handed out as views of those buffers, which are
 * never written twice (a new buffer is taken when one is full), so a view
 * stays valid for as long as it is kept: copy what you keep for long, or it
 * pins its buffer (64 KiB or the size of a big reply).
 *
 * How each reply is parsed is a named mode (`parse_mode.ts`): every value,
 * no bulk string kept, the arrays at one depth kept as RESP bytes (the
 * field/value lists of entries, written back into an XADD without being
 * split into values at all), or as stream entries, nested or flat.
 *
 * @module
 */
import type { RedisReplyError } from "../errors.ts";
import {
  ENTRIES_BASE,
  FLAT_ENTRIES_BASE,
  PARSE_BYTE_STRINGS,
  PARSE_SKIP_BULKS,
  PARSE_TEXT,
  type ParseMode,
} from "./parse_mode.ts";
import { errorReply, status } from "./_reply_lines.ts";
import { byteString, RawArray, RawEntry, utf8String } from "./resp_values.ts";

export { RawArray, RawEntry };

const CR = 13;
const READ_SIZE = 64 * 1024;
/** Free space below which a new read buffer is started. */
const MIN_FREE = 4 * 1024;
const LATIN1 = new TextDecoder("latin1");
/** What a bulk string is parsed as in a reply read with {@linkcode PARSE_SKIP_BULKS}. */
const SKIPPED = new Uint8Array(0);

/** A reply value: string (status), number, Uint8Array (bulk), null, array, RawArray, RawEntry or an error reply. */
export type RespValue =
  | string
  | number
  | Uint8Array
  | null
  | RespValue[]
  | RawArray
  | RawEntry
  | RedisReplyError;

/** An array being parsed: its values, bulk strings kept raw, a stream entry, or a flat list of them. */
const NORMAL = 0;
const RAW = 1;
const ENTRY = 2;
const FLAT = 3;
/** What a flat list of entries expects next: an entry's ID, its count of fields, its fields. */
const AT_ID = 0;
const AT_COUNT = 1;
const AT_FIELDS = 2;

interface Frame {
  kind: typeof NORMAL | typeof RAW | typeof ENTRY | typeof FLAT;
  /** Elements so far (normal frames; a flat frame's entries). */
  items: RespValue[] | undefined;
  /** Elements still to come. */
  remaining: number;
  /** Raw frame: offset in the buffer where its elements start, and their count. */
  rawStart: number;
  rawCount: number;
  /** Entry frame (and a flat frame's entry): where its ID starts and ends, and its fields start. */
  idStart: number;
  idEnd: number;
  fieldsStart: number;
  /** Flat frame: what comes next (AT_ID, AT_COUNT, AT_FIELDS). */
  next: number;
}

/** Frames no longer in use, taken again (two per stream entry would be garbage otherwise). */
const FREE_FRAMES: Frame[] = [];

function frame(kind: Frame["kind"], remaining: number, start: number): Frame {
  const f = FREE_FRAMES.pop();
  if (f === undefined) {
    return {
      kind,
      items: kind === NORMAL || kind === FLAT ? [] : undefined,
      remaining,
      rawStart: start,
      rawCount: remaining,
      idStart: start,
      idEnd: start,
      fieldsStart: start,
      next: AT_ID,
    };
  }
  f.kind = kind;
  f.items = kind === NORMAL || kind === FLAT ? [] : undefined;
  f.remaining = remaining;
  f.rawStart =
    f.idStart =
    f.idEnd =
    f.fieldsStart =
      start;
  f.rawCount = remaining;
  f.next = AT_ID;
  return f;
}

/** A frame popped for good: kept for reuse (its values were handed on). */
function release(f: Frame): void {
  f.items = undefined;
  if (FREE_FRAMES.length < 64) FREE_FRAMES.push(f);
}

/** Thrown when the bytes are not RESP2: the connection must be closed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Parses a stream of RESP2 bytes into replies. */
export class RespParser {
  #buf = new Uint8Array(READ_SIZE);
  #pos = 0;
  #end = 0;
  #stack: Frame[] = [];
  /** Length of a bulk string whose header is read and whose bytes are not all here yet. */
  #bulkLen = -1;
  #rawDepth = -1;
  #entryDepth = -1;
  #flatDepth = -1;
  #skip = false;
  #byteStrings = false;
  #text = false;
  #inReply = false;

  /** Bytes received and not parsed yet. */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  /**
   * Room to read into (at least a few KiB). Call {@linkcode RespParser.commit}
   * with the number of bytes read into it.
   */
  writable(): Uint8Array {
    let need = MIN_FREE;
    if (this.#bulkLen >= 0) need = Math.max(need, this.#bulkLen + 2 - (this.#end - this.#pos));
    if (this.#buf.length - this.#end < need) this.#grow(need);
    return this.#buf.subarray(this.#end);
  }

  /** `n` bytes were read into the last {@linkcode RespParser.writable} view. */
  commit(n: number): void {
    this.#end += n;
  }

  /**
   * Parses every complete reply received so far and calls `onReply` with
   * each, in order. `mode` is asked at the start of each reply.
   *
   * @throws {ProtocolError} on bytes that are not RESP2.
   */
  parse(mode: () => ParseMode, onReply: (value: RespValue) => void): void {
    const buf = this.#buf;
    while (true) {
      if (!this.#inReply) {
        if (this.#pos >= this.#end) return;
        const m = mode();
        this.#flatDepth = m >= FLAT_ENTRIES_BASE ? m - FLAT_ENTRIES_BASE : -1;
        this.#entryDepth = m >= ENTRIES_BASE && m < FLAT_ENTRIES_BASE ? m - ENTRIES_BASE : -1;
        this.#rawDepth = m >= ENTRIES_BASE ? -1 : m;
        this.#skip = m === PARSE_SKIP_BULKS;
        this.#byteStrings = m === PARSE_BYTE_STRINGS;
        this.#text = m === PARSE_TEXT;
        this.#inReply = true;
      }
      const top = this.#stack.length > 0 ? this.#stack[this.#stack.length - 1] : undefined;
      const kind = top === undefined ? NORMAL : top.kind;
      if (this.#bulkLen >= 0) {
        const n = this.#bulkLen;
        if (this.#end - this.#pos < n + 2) return;
        const start = this.#pos;
        this.#pos += n + 2;
        this.#bulkLen = -1;
        if (kind === RAW) this.#rawElement(onReply);
        else if (kind === ENTRY) {
          // The entry's ID: kept as its position, not as a view.
          if (top!.remaining !== 2) {
            throw new ProtocolError("A stream entry's fields are not an array");
          }
          top!.idStart = start;
          top!.idEnd = start + n;
          top!.remaining--;
        } else if (kind === FLAT) {
          if (--top!.remaining === 0) {
            throw new ProtocolError("A stream entry's ID without its count");
          }
          top!.idStart = start;
          top!.idEnd = start + n;
          top!.next = AT_COUNT;
        } else if (this.#byteStrings) this.#emit(byteString(buf, start, n), onReply);
        else if (this.#text) this.#emit(utf8String(buf, start, n), onReply);
        else this.#emit(this.#skip ? SKIPPED : buf.subarray(start, start + n), onReply);
        continue;
      }
      if (this.#pos >= this.#end) return;
      const type = buf[this.#pos];
      let lineEnd = this.#pos + 1;
      const end = this.#end;
      while (lineEnd < end && buf[lineEnd] !== CR) lineEnd++;
      if (lineEnd + 1 >= end) return; // the line is not complete yet
      const lineStart = this.#pos + 1;
      if (kind === RAW && type !== 36) {
        throw new ProtocolError(
          `Expected a bulk string in a stream entry, got "${String.fromCharCode(type)}"`,
        );
      }
      if (kind === ENTRY && (type === 36) !== (top!.remaining === 2)) {
        throw new ProtocolError("A stream entry is not [id, fields]");
      }
      if (kind === FLAT && type !== (top!.next === AT_ID ? 36 : 58)) {
        throw new ProtocolError("A flat list of stream entries is not [id, count, fields, ...]");
      }
      this.#pos = lineEnd + 2;
      switch (type) {
        case 36: { // $ bulk string
          const n = this.#integer(lineStart, lineEnd);
          if (n < 0) {
            if (kind !== NORMAL) throw new ProtocolError("Null bulk string in a stream entry");
            this.#emit(null, onReply);
          } else this.#bulkLen = n;
          break;
        }
        case 42: { // * array
          const n = this.#integer(lineStart, lineEnd);
          const depth = this.#stack.length;
          if (kind === ENTRY) {
            // The entry's fields (or nil: an entry that no longer exists).
            if (n <= 0) this.#entryFields(this.#pos, n < 0 ? -1 : 0, onReply);
            else this.#stack.push(frame(RAW, n, this.#pos));
          } else if (n < 0) this.#emit(null, onReply);
          else if (depth === this.#flatDepth) {
            if (n === 0) this.#emit([], onReply);
            else this.#stack.push(frame(FLAT, n, this.#pos));
          } else if (depth === this.#entryDepth) {
            if (n !== 2) throw new ProtocolError(`A stream entry of ${n} elements`);
            this.#stack.push(frame(ENTRY, 2, this.#pos));
          } else if (depth === this.#rawDepth) {
            if (n === 0) this.#emit(new RawArray(buf.subarray(this.#pos, this.#pos), 0), onReply);
            else this.#stack.push(frame(RAW, n, this.#pos));
          } else if (n === 0) this.#emit([], onReply);
          else this.#stack.push(frame(NORMAL, n, this.#pos));
          break;
        }
        case 43: // + status
          this.#emit(status(buf, lineStart, lineEnd), onReply);
          break;
        case 45: // - error
          this.#emit(errorReply(buf, lineStart, lineEnd), onReply);
          break;
        case 58: // : integer
          if (kind === FLAT) this.#flatCount(top!, this.#integer(lineStart, lineEnd), onReply);
          else this.#emit(this.#integer(lineStart, lineEnd), onReply);
          break;
        default:
          throw new ProtocolError(`Unexpected reply type byte ${type}`);
      }
    }
  }

  /** One more element of the raw frame on top of the stack. */
  #rawElement(onReply: (value: RespValue) => void): void {
    const top = this.#stack[this.#stack.length - 1];
    if (--top.remaining > 0) return;
    this.#stack.pop();
    const { rawStart, rawCount } = top;
    release(top);
    const parent = this.#stack[this.#stack.length - 1];
    if (parent?.kind === ENTRY) {
      parent.fieldsStart = rawStart;
      this.#entryFields(this.#pos, rawCount, onReply);
      return;
    }
    if (parent?.kind === FLAT) return this.#flatEntry(parent, rawStart, rawCount, onReply);
    this.#emit(new RawArray(this.#buf.subarray(rawStart, this.#pos), rawCount), onReply);
  }

  /** The fields of the entry frame on top end at `end` (`count` of them, -1: nil): the entry is done. */
  #entryFields(end: number, count: number, onReply: (value: RespValue) => void): void {
    const entry = this.#stack.pop()!;
    if (count <= 0) entry.fieldsStart = end;
    const value = new RawEntry(
      this.#buf,
      entry.idStart,
      entry.idEnd,
      entry.fieldsStart,
      end,
      count,
    );
    release(entry);
    this.#emit(value, onReply);
  }

  /** The count of fields of a flat frame's entry (-1: deleted): its fields follow, or it is done. */
  #flatCount(top: Frame, count: number, onReply: (value: RespValue) => void): void {
    if (count < -1 || count >= top.remaining) {
      throw new ProtocolError(
        `A stream entry of ${count} fields where ${top.remaining - 1} remain`,
      );
    }
    top.remaining -= 1 + Math.max(count, 0);
    if (count <= 0) return this.#flatEntry(top, this.#pos, count, onReply);
    top.next = AT_FIELDS;
    this.#stack.push(frame(RAW, count, this.#pos));
  }

  /** A flat frame's entry is done, its fields up to here; the frame too after its last one. */
  #flatEntry(top: Frame, start: number, count: number, onReply: (value: RespValue) => void): void {
    top.items!.push(new RawEntry(this.#buf, top.idStart, top.idEnd, start, this.#pos, count));
    top.next = AT_ID;
    if (top.remaining > 0) return;
    this.#stack.pop();
    const entries = top.items!;
    release(top);
    this.#emit(entries, onReply);
  }

  #emit(value: RespValue, onReply: (value: RespValue) => void): void {
    while (true) {
      const top = this.#stack[this.#stack.length - 1];
      if (top === undefined) {
        this.#inReply = false;
        onReply(value);
        return;
      }
      top.items!.push(value);
      if (--top.remaining > 0) return;
      this.#stack.pop();
      value = top.items!;
      release(top);
    }
  }

  #integer(start: number, end: number): number {
    const buf = this.#buf;
    let i = start;
    let negative = false;
    if (buf[i] === 45) {
      negative = true;
      i++;
    }
    let n = 0;
    for (; i < end; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) {
        throw new ProtocolError(`Bad integer "${LATIN1.decode(buf.subarray(start, end))}"`);
      }
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }

  /**
   * Starts a new buffer with the unparsed bytes (and those of a raw array
   * being parsed, which must stay contiguous). The old buffer is left as it
   * is: values handed out keep pointing into it.
   */
  #grow(need: number): void {
    let keep = this.#pos;
    for (const f of this.#stack) {
      if (f.kind === RAW && f.rawStart < keep) keep = f.rawStart;
      if ((f.kind === ENTRY || (f.kind === FLAT && f.next !== AT_ID)) && f.idStart < keep) {
        keep = f.idStart;
      }
    }
    const carried = this.#end - keep;
    // Doubling: a raw array far bigger than a read is copied O(log n) times, not once per read.
    const next = new Uint8Array(Math.max(READ_SIZE, 2 * carried + need + MIN_FREE));
    next.set(this.#buf.subarray(keep, this.#end));
    for (const f of this.#stack) {
      if (f.kind === NORMAL) continue;
      f.rawStart -= keep;
      f.idStart -= keep;
      f.idEnd -= keep;
      f.fieldsStart -= keep;
    }
    this.#buf = next;
    this.#pos -= keep;
    this.#end -= keep;
  }
}
