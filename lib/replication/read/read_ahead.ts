/**
 * The read-ahead budget: how much the streams may read and not write yet,
 * each (twice a write) and all together (16 MiB, the reads in flight
 * included), with the average size of an entry read so far to size the
 * share of a read.
 *
 * @module
 */
import type { RawEntry } from "../../redis/mod.ts";
import type { ReadBudget } from "./read_hooks.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { WRITE_MAX_BYTES, WRITE_MAX_ENTRIES } from "../write/write_hooks.ts";

/** Entries a stream may have read and not written yet. */
const READ_AHEAD_ENTRIES = 2 * WRITE_MAX_ENTRIES;
/** Bytes a stream may have read and not written yet. */
const READ_AHEAD_BYTES = 2 * WRITE_MAX_BYTES;
/** Memory all streams together may hold in entries read and not written yet. */
const READ_AHEAD_TOTAL_BYTES = 16 * 1024 * 1024;

/** Options for {@linkcode ReadAhead}. */
export interface ReadAheadOptions {
  /**
   * Called when room is back after a stream was refused room because all
   * streams together had none: its reader waits for this, and no write may
   * come to wake it (the streams that held the room may have brought
   * nothing).
   * @default {() => {}}
   */
  onRoom?: () => void;
}

/** The memory of the entries read ahead, and the share a read may take of it. */
export class ReadAhead implements ReadBudget {
  /** Bytes read ahead by all streams together (each stream adds and takes away its part). */
  readonly memory = { bytes: 0 };
  readonly #batchSize: number;
  readonly #onRoom: () => void;
  /** Memory set aside for reads in flight. */
  #reserved = 0;
  /** Memory an entry read ahead takes, on average so far (fields and overhead). */
  #entryBytes = 300;
  /** A stream was refused room for lack of it all together, and was not told it is back. */
  #starved = false;

  /** @param batchSize entries per stream per read (STREAM_BATCH_SIZE). */
  constructor(batchSize: number, options: ReadAheadOptions = {}) {
    this.#batchSize = batchSize;
    this.#onRoom = options.onRoom ?? (() => {});
  }

  /**
   * Whether `stream` has room to read more (its own share; what all
   * streams together have left is asked by the readers before they read,
   * see {@linkcode ReadAhead.roomLeft}).
   */
  hasRoom(stream: ReplicatedStream): boolean {
    return stream.buffered < READ_AHEAD_ENTRIES && stream.bufferedBytes < READ_AHEAD_BYTES;
  }

  /** Whether all streams together may read more; if not, `onRoom` is called once they may. */
  roomLeft(): boolean {
    if (this.#anyLeft()) return true;
    this.#starved = true;
    return false;
  }

  /**
   * Tells `onRoom` when a stream was refused room all together and there is
   * room again (after reads in flight gave back their share, or writes
   * freed memory).
   */
  wakeIfRoom(): void {
    if (!this.#starved || !this.#anyLeft()) return;
    this.#starved = false;
    this.#onRoom();
  }

  #anyLeft(): boolean {
    return this.memory.bytes + this.#reserved < READ_AHEAD_TOTAL_BYTES;
  }

  take(
    streams: number,
    reads: number,
    count = this.#batchSize,
  ): { streams: number; bytes: number } {
    const perStream = reads * count * this.#entryBytes;
    const left = READ_AHEAD_TOTAL_BYTES - this.memory.bytes - this.#reserved;
    // Half of it at most: a reader has a second read in flight, and other readers read too
    // (one read taking all of it would leave them none, in turns).
    const most = Math.min(left, READ_AHEAD_TOTAL_BYTES / 2);
    const n = Math.max(left > 0 ? 1 : 0, Math.min(streams, Math.floor(most / perStream)));
    this.#reserved += n * perStream;
    return { streams: n, bytes: n * perStream };
  }

  give(bytes: number): void {
    this.#reserved -= bytes;
    this.wakeIfRoom();
  }

  /** Adds `entries` (of `bytes` field bytes) to `stream`'s buffer, learning their size. */
  push(stream: ReplicatedStream, entries: RawEntry[], bytes: number): void {
    const before = this.memory.bytes;
    stream.push(entries, bytes);
    if (entries.length === 0) return; // deleted IDs only: nothing to learn from
    const each = Math.max(1, (this.memory.bytes - before) / entries.length);
    // In log space: one 20 MB entry among small ones doubles the estimate instead of making it
    // 1.25 MB for the next reads of every stream (which then took one stream a read).
    this.#entryBytes = Math.exp(
      Math.log(this.#entryBytes) + (Math.log(each) - Math.log(this.#entryBytes)) / 16,
    );
  }
}
