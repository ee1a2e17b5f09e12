/**
 * An incremental RESP2 reply parser that reads straight into its own
 * buffers. Bulk strings are handed out as views of those buffers, which are
 * never written twice (a new buffer is taken when one is full), so a view
 * stays valid for as long as it is kept: copy what you keep for long, or it
 * pins its buffer (64 KiB or the size of a big reply).
 *
 * Stream entries can be kept as they came: with a `rawDepth`, the arrays at
 * that depth of a reply (the field/value lists of entries) are returned as
 * one {@linkcode RawArray} of RESP bytes, which can be written back into an
 * XADD without being split into values at all.
 *
 * @module
 */
import { RedisReplyError } from "../errors.ts";

const CR = 13;
const READ_SIZE = 64 * 1024;
/** Free space below which a new read buffer is started. */
const MIN_FREE = 4 * 1024;
const LATIN1 = new TextDecoder("latin1");
/** What a bulk string is parsed as in a reply read with {@linkcode SKIP_BULKS}. */
const SKIPPED = new Uint8Array(0);

/**
 * A `rawDepth` that keeps no bulk string at all: each one is returned as the
 * same empty array (for replies whose values are not needed, only their
 * errors, such as EXEC's list of new IDs).
 */
export const SKIP_BULKS = -2;
const UTF8 = new TextDecoder();

/**
 * An array of bulk strings kept as its RESP encoding (`$3\r\nabc\r\n...`,
 * without the `*n` header): the fields and values of a stream entry.
 */
export class RawArray {
  /** The RESP bytes of the elements. */
  readonly bytes: Uint8Array;
  /** How many elements. */
  readonly count: number;

  constructor(bytes: Uint8Array, count: number) {
    this.bytes = bytes;
    this.count = count;
  }

  /** The elements, as views of {@linkcode RawArray.bytes}. */
  items(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const b = this.bytes;
    let p = 0;
    while (p < b.length) {
      // `$<len>\r\n<bytes>\r\n`
      let n = 0;
      let q = p + 1;
      while (b[q] !== CR) n = n * 10 + (b[q++] - 48);
      q += 2;
      out.push(b.subarray(q, q + n));
      p = q + n + 2;
    }
    return out;
  }
}

/** A reply value: string (status), number, Uint8Array (bulk), null, array, RawArray or an error reply. */
export type RespValue =
  | string
  | number
  | Uint8Array
  | null
  | RespValue[]
  | RawArray
  | RedisReplyError;

interface Frame {
  /** Elements so far (undefined for a raw frame). */
  items: RespValue[] | undefined;
  /** Elements still to come. */
  remaining: number;
  /** Raw frame: offset in the buffer where its elements start, and their count. */
  rawStart: number;
  rawCount: number;
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
  #skip = false;
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
   * each, in order. `rawDepth` is asked at the start of each reply: the
   * depth (0 = the reply itself) of arrays to keep raw, -1, or
   * {@linkcode SKIP_BULKS}.
   *
   * @throws {ProtocolError} on bytes that are not RESP2.
   */
  parse(rawDepth: () => number, onReply: (value: RespValue) => void): void {
    const buf = this.#buf;
    while (true) {
      if (!this.#inReply) {
        if (this.#pos >= this.#end) return;
        this.#rawDepth = rawDepth();
        this.#skip = this.#rawDepth === SKIP_BULKS;
        this.#inReply = true;
      }
      const top = this.#stack.length > 0 ? this.#stack[this.#stack.length - 1] : undefined;
      const raw = top !== undefined && top.items === undefined;
      if (this.#bulkLen >= 0) {
        const n = this.#bulkLen;
        if (this.#end - this.#pos < n + 2) return;
        const start = this.#pos;
        this.#pos += n + 2;
        this.#bulkLen = -1;
        if (raw) this.#rawElement(onReply);
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
      if (raw && type !== 36) {
        throw new ProtocolError(
          `Expected a bulk string in a stream entry, got "${String.fromCharCode(type)}"`,
        );
      }
      this.#pos = lineEnd + 2;
      switch (type) {
        case 36: { // $ bulk string
          const n = this.#integer(lineStart, lineEnd);
          if (n < 0) {
            if (raw) throw new ProtocolError("Null bulk string in a stream entry");
            this.#emit(null, onReply);
          } else this.#bulkLen = n;
          break;
        }
        case 42: { // * array
          const n = this.#integer(lineStart, lineEnd);
          if (n < 0) this.#emit(null, onReply);
          else if (this.#stack.length === this.#rawDepth) {
            if (n === 0) this.#emit(new RawArray(buf.subarray(this.#pos, this.#pos), 0), onReply);
            else {this.#stack.push({
                items: undefined,
                remaining: n,
                rawStart: this.#pos,
                rawCount: n,
              });}
          } else if (n === 0) this.#emit([], onReply);
          else this.#stack.push({ items: [], remaining: n, rawStart: 0, rawCount: 0 });
          break;
        }
        case 43: // + status
          this.#emit(status(buf, lineStart, lineEnd), onReply);
          break;
        case 45: // - error
          this.#emit(new RedisReplyError(UTF8.decode(buf.subarray(lineStart, lineEnd))), onReply);
          break;
        case 58: // : integer
          this.#emit(this.#integer(lineStart, lineEnd), onReply);
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
    this.#emit(new RawArray(this.#buf.subarray(top.rawStart, this.#pos), top.rawCount), onReply);
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
    for (const frame of this.#stack) {
      if (frame.items === undefined && frame.rawStart < keep) keep = frame.rawStart;
    }
    const carried = this.#end - keep;
    // Doubling: a raw array far bigger than a read is copied O(log n) times, not once per read.
    const next = new Uint8Array(Math.max(READ_SIZE, 2 * carried + need + MIN_FREE));
    next.set(this.#buf.subarray(keep, this.#end));
    for (const frame of this.#stack) if (frame.items === undefined) frame.rawStart -= keep;
    this.#buf = next;
    this.#pos -= keep;
    this.#end -= keep;
  }
}

const OK = "OK";
const QUEUED = "QUEUED";
const PONG = "PONG";

/** A status reply as text; the common ones without decoding. */
function status(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 2 && buf[start] === 79 && buf[start + 1] === 75) return OK;
  if (n === 6 && equals(buf, start, QUEUED)) return QUEUED;
  if (n === 4 && equals(buf, start, PONG)) return PONG;
  return UTF8.decode(buf.subarray(start, end));
}

function equals(buf: Uint8Array, start: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}
