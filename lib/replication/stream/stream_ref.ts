/**
 * How a stream is named: by `(db, key bytes)` on the source and
 * `(targetDb, prefix + key bytes)` on the target. Keys are bytes, never
 * assumed to be UTF-8.
 *
 * @module
 */
import { escapeBytes } from "../../log.ts";
import { clusterSlot } from "../../redis/mod.ts";

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");

/** One source stream and where it goes. */
export interface StreamRef {
  /** Source DB number. */
  readonly db: number;
  /** Source key, raw bytes. */
  readonly key: Uint8Array;
  /** Target DB number. */
  readonly targetDb: number;
  /** Target key, raw bytes (prefix + key). */
  readonly targetKey: Uint8Array;
  /** Unique id of the source stream: the DB and the key bytes (see {@linkcode streamId}). */
  readonly id: string;
  /** Unique id of the target stream, made the same way from `targetDb` and `targetKey`. */
  readonly targetId: string;
  /** `db0:orders` with unprintable bytes escaped, for logs and status. */
  readonly label: string;
  /** `db0:` + the target key, escaped like `label`, for logs and status. */
  readonly targetLabel: string;
  /** The source key, escaped like `label`, without the `dbN:` prefix. */
  readonly keyLabel: string;
  /** The target key, escaped like `label`, without the `dbN:` prefix. */
  readonly targetKeyLabel: string;
  /** Whether the stream was named in REDIS_STREAMS. */
  readonly manual: boolean;
  /**
   * The source key's cluster slot (CRC16 of its hash tag, or of the whole
   * key, modulo 16384), computed once: where it lives in a Redis Cluster,
   * and its lease bucket (asked at every fenced read).
   */
  readonly slot: number;
}

/** Options for {@linkcode makeStreamRef}. */
export interface StreamRefOptions {
  /**
   * TARGET_REDIS_DB: a number, or "same" for the source's DB number.
   * @default {0}
   */
  targetDb?: number | "same";
  /**
   * TARGET_STREAM_PREFIX.
   * @default {""}
   */
  prefix?: string;
  /**
   * Whether the stream comes from REDIS_STREAMS.
   * @default {false}
   */
  manual?: boolean;
}

/** Builds the reference of source stream `key` in DB `db`. */
export function makeStreamRef(
  db: number,
  key: Uint8Array | string,
  options: StreamRefOptions = {},
): StreamRef {
  const { targetDb = 0, prefix = "", manual = false } = options;
  // Copied out of the reply it came in; packKeys moves it into a shared block if it starts.
  const keyBytes = keepBytes(typeof key === "string" ? ENCODER.encode(key) : key);
  const tdb = targetDb === "same" ? db : targetDb;
  const keyLabel = escapeBytes(keyBytes);
  const id = streamId(db, keyBytes);
  const label = joined("db", db, ":", keyLabel);
  // Without a prefix the target key is the same bytes and names (shared: ~400 bytes a stream).
  const targetKey = prefix === "" ? keyBytes : keepBytes(concat(ENCODER.encode(prefix), keyBytes));
  const targetKeyLabel = prefix === "" ? keyLabel : escapeBytes(targetKey);
  const same = prefix === "" && tdb === db;
  return {
    db,
    key: keyBytes,
    targetDb: tdb,
    targetKey,
    id,
    targetId: same ? id : streamId(tdb, targetKey),
    label,
    targetLabel: same ? label : joined("db", tdb, ":", targetKeyLabel),
    keyLabel,
    targetKeyLabel,
    manual,
    slot: clusterSlot(keyBytes),
  };
}

/**
 * A copy of `bytes` of its own (not a view of the reply it came in). Not a
 * view into a block shared by many keys: discovery makes refs of streams
 * that never start here each pass, and one kept key would keep its whole
 * block, full of those, alive ({@linkcode packKeys} packs only the keys of
 * streams that start).
 */
function keepBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Bytes of a block of {@linkcode packKeys}. */
const BLOCK_BYTES = 4096;
/** Keys longer than this keep their own copy. */
const MOST_PACKED = 256;
/** Every block of packed keys (a block is kept by its keys' views; this set keeps none). */
const BLOCKS = new WeakSet<ArrayBuffer>();
let block = new Uint8Array(0);
let blockUsed = 0;

/**
 * Moves the key bytes of `ref`, a stream that starts here (kept for as long
 * as it runs), into a block shared with other such keys: a key's own copy
 * costs ~400 bytes (its view, its ArrayBuffer and the backing store), a
 * view of a block ~110. The same bytes; a block is filled once and never
 * written again, so a view made before (a command being sent) stays right.
 * A block lives while one of its keys does: what ended streams leave there
 * (a stream gone, released) is kept with it, at most a block a stream in
 * the worst case. Refs that never start (discovery makes them each pass)
 * keep their own copy and leave nothing in a block.
 */
export function packKeys(ref: StreamRef): void {
  const key = ref.key;
  if (BLOCKS.has(key.buffer as ArrayBuffer) || key.length > MOST_PACKED) return;
  const kept = ref as { key: Uint8Array; targetKey: Uint8Array };
  const targetKey = ref.targetKey;
  kept.key = packed(key);
  if (targetKey === key) kept.targetKey = kept.key;
  else if (targetKey.length <= MOST_PACKED) kept.targetKey = packed(targetKey);
}

function packed(bytes: Uint8Array): Uint8Array {
  if (blockUsed + bytes.length > block.length) {
    block = new Uint8Array(BLOCK_BYTES);
    BLOCKS.add(block.buffer);
    blockUsed = 0;
  }
  const view = block.subarray(blockUsed, blockUsed + bytes.length);
  view.set(bytes);
  blockUsed += bytes.length;
  return view;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * `parts` as one flat string: a template literal or `+` makes a rope (an
 * object per part, ~30 bytes each, kept for as long as the stream is; a
 * rope flattened in place keeps its wrapper), `join` makes one string.
 */
function joined(...parts: Array<string | number>): string {
  return parts.join("");
}

/** Keys up to this many bytes are made into ids in JavaScript (a decoder call costs more). */
const SHORT_KEY = 64;

/**
 * The id of the stream `key` in DB `db`, as {@linkcode StreamRef.id}: the
 * DB and the key's bytes as one character each, unique for every byte
 * sequence (a short key's characters are its bytes' code points, a longer
 * one's latin1: the two never meet, their lengths differ). Discovery makes
 * one per key and pass: at 100,000 keys, 41-46 ms a pass with a lookup in a
 * map of 100,000 ids, against 92-141 ms through the decoder (measured).
 */
export function streamId(db: number, key: Uint8Array): string {
  if (key.length <= SHORT_KEY) {
    return `${db}:${String.fromCharCode.apply(null, key as unknown as number[])}`;
  }
  return `${db}:${LATIN1.decode(key)}`;
}

/**
 * {@linkcode streamId} of a key given as a string of one character per
 * byte (a reply read with `PARSE_BYTE_STRINGS`): the same id, without the
 * key's bytes for a short key.
 */
export function streamIdOfByteString(db: number, key: string): string {
  return key.length <= SHORT_KEY ? `${db}:${key}` : streamId(db, bytesOfByteString(key));
}

/** The bytes of a string of one character per byte. */
export function bytesOfByteString(key: string): Uint8Array {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

/** The labels of the first `most` of `refs`, and how many more: `db0:a, db0:b and 3 more`. */
export function someLabels(refs: readonly StreamRef[], most = 5): string {
  const shown = refs.slice(0, most).map((ref) => ref.label).join(", ");
  return refs.length > most ? `${shown} and ${refs.length - most} more` : shown;
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}
