/**
 * RESP2 command encoding into one growing byte buffer, so that a whole
 * pipeline (hundreds of commands, thousands of arguments) leaves in one
 * socket write without an allocation per argument.
 *
 * @module
 */

/** One argument of a Redis command: text or raw bytes. */
export type RedisArg = string | Uint8Array;

const CR = 13;
const LF = 10;
const DOLLAR = 36;
const STAR = 42;
const INITIAL_SIZE = 16 * 1024;
/**
 * Buffers larger than this (grown for a big pipeline) are let go once
 * taken, not kept for the next pipelines: at 100,000 streams, start-up
 * pipelines of 10,000 commands grew the two buffers of each of 16 sockets
 * to ~1 MB, 18 MB kept for good (heap snapshot).
 */
const MAX_KEPT_SIZE = 64 * 1024;
const ENCODER = new TextEncoder();

/** Appends RESP2 commands to a buffer; {@linkcode RespWriter.take} hands the bytes out. */
export class RespWriter {
  #buf: Uint8Array;
  #len = 0;
  /** A buffer handed out by take() is never written again: the spare one is used instead. */
  #spare: Uint8Array | null = null;

  constructor(initialSize = INITIAL_SIZE) {
    this.#buf = new Uint8Array(Math.max(64, initialSize));
  }

  /** Bytes encoded and not taken yet. */
  get length(): number {
    return this.#len;
  }

  /** Encodes one command: `*N`, then each argument as a bulk string. */
  command(args: readonly RedisArg[]): void {
    this.arrayHeader(args.length);
    for (let i = 0; i < args.length; i++) this.bulk(args[i]);
  }

  /** `*n\r\n`: the header of a command of `n` arguments (each then given with bulk/raw). */
  arrayHeader(n: number): void {
    this.#reserve(24);
    const buf = this.#buf;
    buf[this.#len++] = STAR;
    this.#digits(n);
    buf[this.#len++] = CR;
    buf[this.#len++] = LF;
  }

  /** One argument as a bulk string. Strings are encoded as UTF-8. */
  bulk(arg: RedisArg): void {
    if (typeof arg === "string") {
      if (isAscii(arg)) {
        this.#bulkHeader(arg.length);
        this.#reserve(arg.length + 2);
        const buf = this.#buf;
        let at = this.#len;
        for (let i = 0; i < arg.length; i++) buf[at++] = arg.charCodeAt(i);
        buf[at++] = CR;
        buf[at++] = LF;
        this.#len = at;
        return;
      }
      arg = ENCODER.encode(arg);
    }
    this.#bulkHeader(arg.byteLength);
    this.#reserve(arg.byteLength + 2);
    this.#buf.set(arg, this.#len);
    this.#len += arg.byteLength;
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  /** `buffer[start..end)` as a bulk string, without a view of it. */
  bulkSlice(buffer: Uint8Array, start: number, end: number): void {
    this.#bulkHeader(end - start);
    this.rawSlice(buffer, start, end);
    this.#reserve(2);
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  /** `buffer[start..end)`, already RESP (the fields of a stream entry), copied as it is. */
  rawSlice(buffer: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.#reserve(n);
    const out = this.#buf;
    let at = this.#len;
    if (n <= 32) { for (let i = start; i < end; i++) out[at++] = buffer[i]; }
    else out.set(buffer.subarray(start, end), at);
    this.#len += n;
  }

  /** A decimal integer as a bulk string, without a string in between. */
  bulkInteger(n: number): void {
    this.#bulkHeader(n < 0 ? decimalLength(-n) + 1 : decimalLength(n));
    this.#reserve(24);
    this.#digits(n);
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  /**
   * Bytes that already are RESP bulk strings (e.g. the fields of a stream
   * entry as they came from the server): copied as they are.
   */
  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.byteLength;
  }

  /**
   * The bytes encoded so far; the writer starts empty again. The returned
   * view stays valid until the next take(): two buffers alternate, so write
   * it out before taking the next one.
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    const spare = this.#spare;
    // One that grew for a big pipeline is let go (the view handed out keeps it while it is
    // written): a connection keeps two small buffers at most.
    this.#spare = this.#buf.length <= MAX_KEPT_SIZE ? this.#buf : null;
    this.#buf = spare ?? new Uint8Array(INITIAL_SIZE);
    this.#len = 0;
    return out;
  }

  /** The bytes of the buffers this writer keeps (the one written and the spare). */
  get keptBytes(): number {
    return this.#buf.length + (this.#spare?.length ?? 0);
  }

  /** Makes room for `bytes` more (when the size of what follows is known: one copy, not several). */
  reserve(bytes: number): void {
    this.#reserve(bytes);
  }

  /** Drops what was encoded and not taken (e.g. a pipeline abandoned half way). */
  reset(length = 0): void {
    this.#len = Math.min(length, this.#len);
  }

  #bulkHeader(n: number): void {
    this.#reserve(24);
    this.#buf[this.#len++] = DOLLAR;
    this.#digits(n);
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  #digits(n: number): void {
    const buf = this.#buf;
    if (n < 0) {
      buf[this.#len++] = 45; // "-"
      n = -n;
    }
    if (n < 10) {
      buf[this.#len++] = 48 + n;
      return;
    }
    let end = this.#len + decimalLength(n);
    this.#len = end;
    while (n > 0) {
      buf[--end] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
  }

  #reserve(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

/** Digits of a non-negative integer. */
function decimalLength(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 127) return false;
  return true;
}
