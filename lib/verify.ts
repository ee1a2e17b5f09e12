/**
 * Stream comparison: walks a source stream and its target side by side in
 * windows of IDs (XRANGE with COUNT), in bounded memory whatever the
 * length, and reports missing, extra and changed entries by ID.
 *
 * @module
 */
import type { RedisConnection } from "./redis_connection.ts";
import { compareIds, parseEntries, type StreamEntry } from "./_replies.ts";
import type { StreamRef } from "./stream_ref.ts";

/** Options for {@linkcode compareStream}. */
export interface CompareOptions {
  /**
   * Entries per XRANGE window.
   * @default {1000}
   */
  windowSize?: number;
  /**
   * How many IDs of each kind of difference to keep for the report.
   * @default {10}
   */
  maxIds?: number;
  /**
   * Ignore target entries older than the source's first entry (the source
   * was trimmed and the target keeps history).
   * @default {false}
   */
  ignoreTrimmedHead?: boolean;
  /**
   * Stops the walk early.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** The outcome of comparing one stream with its target. */
export interface StreamComparison {
  /** Whether both sides hold the same entries, IDs and bytes. */
  identical: boolean;
  /** Entries read on the source. */
  sourceEntries: number;
  /** Entries read on the target. */
  targetEntries: number;
  /** Count of source entries absent from the target. */
  missing: number;
  /** Count of target entries absent from the source. */
  extra: number;
  /** Count of entries present on both sides with different fields. */
  changed: number;
  /** The first few IDs of each kind. */
  missingIds: string[];
  /** The first few extra IDs. */
  extraIds: string[];
  /** The first few changed IDs. */
  changedIds: string[];
  /** The first and last ID on each side ("" when empty). */
  sourceFirstId: string;
  /** Last source ID. */
  sourceLastId: string;
  /** First target ID. */
  targetFirstId: string;
  /** Last target ID. */
  targetLastId: string;
}

/** Reads a stream window by window, oldest first. */
class WindowCursor {
  #conn: RedisConnection;
  #db: number;
  #key: Uint8Array;
  #size: number;
  #buffer: StreamEntry[] = [];
  #index = 0;
  #next = "-";
  #done = false;
  count = 0;
  first = "";
  last = "";

  constructor(conn: RedisConnection, db: number, key: Uint8Array, size: number) {
    this.#conn = conn;
    this.#db = db;
    this.#key = key;
    this.#size = size;
  }

  async peek(): Promise<StreamEntry | undefined> {
    if (this.#index < this.#buffer.length) return this.#buffer[this.#index];
    if (this.#done) return undefined;
    const reply = await this.#conn.send(
      this.#db,
      ["XRANGE", this.#key, this.#next, "+", "COUNT", String(this.#size)],
      { buffers: true },
    );
    this.#buffer = parseEntries(reply).entries;
    this.#index = 0;
    if (this.#buffer.length < this.#size) this.#done = true;
    if (this.#buffer.length > 0) this.#next = `(${this.#buffer[this.#buffer.length - 1].id}`;
    return this.#buffer[0];
  }

  take(): void {
    const entry = this.#buffer[this.#index++];
    if (!entry) return;
    this.count++;
    if (this.first === "") this.first = entry.id;
    this.last = entry.id;
  }
}

/**
 * Compares `ref`'s source stream (on `source`) with its target stream (on
 * `target`), reading both in windows of `windowSize` entries.
 */
export async function compareStream(
  source: RedisConnection,
  target: RedisConnection,
  ref: StreamRef,
  options: CompareOptions = {},
): Promise<StreamComparison> {
  const { windowSize = 1000, maxIds = 10, ignoreTrimmedHead = false, signal } = options;
  const src = new WindowCursor(source, ref.db, ref.key, windowSize);
  const dst = new WindowCursor(target, ref.targetDb, ref.targetKey, windowSize);
  const result: StreamComparison = {
    identical: true,
    sourceEntries: 0,
    targetEntries: 0,
    missing: 0,
    extra: 0,
    changed: 0,
    missingIds: [],
    extraIds: [],
    changedIds: [],
    sourceFirstId: "",
    sourceLastId: "",
    targetFirstId: "",
    targetLastId: "",
  };
  const note = (list: string[], id: string) => {
    if (list.length < maxIds) list.push(id);
  };
  while (!signal?.aborted) {
    const [a, b] = await Promise.all([src.peek(), dst.peek()]);
    if (!a && !b) break;
    const order = !a ? 1 : !b ? -1 : compareIds(a.id, b.id);
    if (order === 0) {
      if (!sameFields(a!.fields, b!.fields)) {
        result.changed++;
        note(result.changedIds, a!.id);
      }
      src.take();
      dst.take();
    } else if (order < 0) {
      result.missing++;
      note(result.missingIds, a!.id);
      src.take();
    } else {
      const trimmed = ignoreTrimmedHead && src.count === 0 && a !== undefined;
      if (!trimmed) {
        result.extra++;
        note(result.extraIds, b!.id);
      }
      dst.take();
    }
  }
  result.sourceEntries = src.count;
  result.targetEntries = dst.count;
  result.sourceFirstId = src.first;
  result.sourceLastId = src.last;
  result.targetFirstId = dst.first;
  result.targetLastId = dst.last;
  result.identical = result.missing === 0 && result.extra === 0 && result.changed === 0;
  return result;
}

function sameFields(a: Uint8Array[], b: Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}
