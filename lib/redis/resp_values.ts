/**
 * Reply values that keep stream entries as the bytes they arrived in: an
 * array of bulk strings as its RESP encoding ({@linkcode RawArray}), and a
 * whole entry, its ID and its fields, as positions in the read buffer
 * ({@linkcode RawEntry}: one small object per entry, no view of its own
 * until one is asked for). Both point into the parser's buffer: they pin it
 * for as long as they are kept.
 *
 * @module
 */

const CR = 13;

/** Splits RESP bulk strings (`$3\r\nabc\r\n...`) of `b` from `start` to `end` into views. */
function splitBulks(b: Uint8Array, start: number, end: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = start;
  while (p < end) {
    let n = 0;
    let q = p + 1;
    while (b[q] !== CR) n = n * 10 + (b[q++] - 48);
    q += 2;
    out.push(b.subarray(q, q + n));
    p = q + n + 2;
  }
  return out;
}

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
    return splitBulks(this.bytes, 0, this.bytes.length);
  }
}

/**
 * One stream entry (`[id, [field, value, ...]]` in a reply) as positions in
 * the buffer it was read into: the ID's bytes, and its fields and values as
 * their RESP encoding, ready to be written back into an XADD.
 */
export class RawEntry {
  /** The buffer the entry lies in. */
  readonly buffer: Uint8Array;
  /** Where the ID's bytes start and end. */
  readonly idStart: number;
  readonly idEnd: number;
  /** Where the RESP bytes of the fields and values start and end. */
  readonly fieldsStart: number;
  readonly fieldsEnd: number;
  /** Fields and values (twice the number of fields); -1 for an entry that no longer exists. */
  readonly count: number;

  /** Positions in `buffer`: the ID's, and the fields' (`count` of them, -1: none). */
  constructor(
    buffer: Uint8Array,
    idStart: number,
    idEnd: number,
    fieldsStart: number,
    fieldsEnd: number,
    count: number,
  ) {
    this.buffer = buffer;
    this.idStart = idStart;
    this.idEnd = idEnd;
    this.fieldsStart = fieldsStart;
    this.fieldsEnd = fieldsEnd;
    this.count = count;
  }

  /** The ID's bytes (a new view each time). */
  get id(): Uint8Array {
    return this.buffer.subarray(this.idStart, this.idEnd);
  }

  /** The ID as text (`ms-seq`). */
  idText(): string {
    return String.fromCharCode.apply(
      null,
      this.buffer.subarray(this.idStart, this.idEnd) as unknown as number[],
    );
  }

  /** Whether the entry no longer exists (a pending ID whose entry was deleted). */
  get deleted(): boolean {
    return this.count < 0;
  }

  /** Bytes of the RESP encoding of the fields and values. */
  get size(): number {
    return this.fieldsEnd - this.fieldsStart;
  }

  /** The RESP encoding of the fields and values (a new view each time). */
  get fields(): Uint8Array {
    return this.buffer.subarray(this.fieldsStart, this.fieldsEnd);
  }

  /** The fields and values, as views. */
  items(): Uint8Array[] {
    return splitBulks(this.buffer, this.fieldsStart, this.fieldsEnd);
  }
}

/** Reused for the bytes of a short bulk string read with `PARSE_BYTE_STRINGS`. */
const CODES: number[] = [];

/** `n` bytes of `buf` from `start` as a string of one character per byte. */
export function byteString(buf: Uint8Array, start: number, n: number): string {
  return n <= 64 ? shortByteString(buf, start, n) : longByteString(buf, start, n);
}

const UTF8 = new TextDecoder();

/**
 * The bytes `buf[start, start + n)` decoded as UTF-8 (malformed sequences
 * replaced, as `TextDecoder` does): short ASCII ones without the decoder
 * (the same text).
 */
export function utf8String(buf: Uint8Array, start: number, n: number): string {
  if (n <= 64) {
    let ascii = true;
    for (let i = start; i < start + n; i++) {
      if (buf[i] > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return shortByteString(buf, start, n);
  }
  return UTF8.decode(buf.subarray(start, start + n));
}

function shortByteString(buf: Uint8Array, start: number, n: number): string {
  CODES.length = n;
  for (let i = 0; i < n; i++) CODES[i] = buf[start + i];
  return String.fromCharCode.apply(null, CODES);
}

function longByteString(buf: Uint8Array, start: number, n: number): string {
  let out = "";
  for (let i = start; i < start + n; i += 4096) {
    const part = buf.subarray(i, Math.min(start + n, i + 4096));
    out += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return out;
}
