/**
 * How a stream is named: by `(db, key bytes)` on the source and
 * `(targetDb, prefix + key bytes)` on the target. Keys are bytes, never
 * assumed to be UTF-8.
 *
 * @module
 */
import { escapeBytes } from "../../log.ts";

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
  const keyBytes = typeof key === "string" ? ENCODER.encode(key) : new Uint8Array(key);
  const prefixBytes = ENCODER.encode(prefix);
  const targetKey = new Uint8Array(prefixBytes.length + keyBytes.length);
  targetKey.set(prefixBytes, 0);
  targetKey.set(keyBytes, prefixBytes.length);
  const tdb = targetDb === "same" ? db : targetDb;
  const keyLabel = escapeBytes(keyBytes);
  const targetKeyLabel = escapeBytes(targetKey);
  return {
    db,
    key: keyBytes,
    targetDb: tdb,
    targetKey,
    id: streamId(db, keyBytes),
    targetId: streamId(tdb, targetKey),
    label: `db${db}:${keyLabel}`,
    targetLabel: `db${tdb}:${targetKeyLabel}`,
    keyLabel,
    targetKeyLabel,
    manual,
  };
}

/**
 * The id of the stream `key` in DB `db`, as {@linkcode StreamRef.id}: the
 * DB and the key's bytes as one character each (latin1), unique for every
 * byte sequence, made in one call (discovery makes one per key and pass).
 */
export function streamId(db: number, key: Uint8Array): string {
  return `${db}:${LATIN1.decode(key)}`;
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}
