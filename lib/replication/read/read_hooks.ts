/**
 * What a reader needs from the rest of the engine (its hooks, the shared
 * read-ahead budget) and its options.
 *
 * @module
 */
import type { StreamGoneError } from "../../errors.ts";
import type { RawEntry } from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { ReadFence } from "../sharing/read_fence.ts";

export type { ReadFence };

/** What the reader tells about the streams it reads. */
export interface ReaderHooks {
  /** Entries (and IDs of pending entries found deleted) read for `stream`, in ID order. */
  deliver(stream: ReplicatedStream, entries: RawEntry[], deleted: string[], bytes: number): void;
  /** once mode: a read found nothing more for `stream`. */
  drained(stream: ReplicatedStream): void;
  /** The stream or its group is gone (NOGROUP, WRONGTYPE). */
  gone(stream: ReplicatedStream, error: StreamGoneError): void;
  /** The lease of `stream` is another instance's now (a fenced read found it): stop it here. */
  lost(stream: ReplicatedStream): void;
  /** Reading `stream` failed for good (e.g. NOPERM). */
  failed(stream: ReplicatedStream, error: unknown): void;
  /**
   * A fenced read found entries after `after` (the last one delivered) up
   * to `to` that the group passed by: the delivered ones stay pending.
   */
  passedBy(stream: ReplicatedStream, after: string, to: string): void;
  /** No read including `stream` is in flight any more. */
  idle(stream: ReplicatedStream): void;
  /** Whether `stream` wants entries now (room in its read-ahead, replicating). */
  wants(stream: ReplicatedStream): boolean;
  /** The memory all streams together may still fill with entries read ahead. */
  budget: ReadBudget;
}

/** Memory for entries read ahead, shared by the readers: reads in flight hold a part of it. */
export interface ReadBudget {
  /**
   * How many of `streams` streams may be read `reads` times over now, `count`
   * entries each a read (default: STREAM_BATCH_SIZE; at least one stream
   * while anything is left), and the bytes set aside for what they may bring.
   */
  take(streams: number, reads: number, count?: number): { streams: number; bytes: number };
  /** The reads are in (the streams now count what they brought): give back `bytes`. */
  give(bytes: number): void;
  /**
   * Whether all streams together may read more now; when not, the caller
   * is told through `onRoom` (its reader is woken) once there is room again.
   */
  roomLeft(): boolean;
}

/** Options for {@linkcode StreamReader}. */
export interface StreamReaderOptions {
  /** Consumer group name. */
  group: string;
  /** Consumer name. */
  consumer: string;
  /** Entries per stream per read (COUNT, STREAM_BATCH_SIZE). */
  batchSize: number;
  /** Milliseconds a read blocks when nothing is ready (BLOCK). */
  blockMs: number;
  /**
   * `run --once`: never block; a stream with nothing to read is drained.
   * @default {false}
   */
  once?: boolean;
  /** First backoff delay after a failed read, milliseconds. */
  backoffBaseMs: number;
  /** Largest backoff delay after failed reads, milliseconds. */
  backoffMaxMs: number;
  /**
   * Failed reads retried at once before backing off (SOURCE_REDIS_MAX_RETRIES).
   * @default {0}
   */
  maxRetries?: number;
  /**
   * Called for each failed read, with the error's kind (reply code or "connection").
   * @default {undefined}
   */
  onError?: (kind: string) => void;
  /**
   * With leases: every read checks the streams' leases in the same script,
   * and waits for entries with XREAD (which takes nothing) instead of a
   * blocking XREADGROUP.
   * @default {undefined}
   */
  fence?: ReadFence;
  /**
   * Sends CLIENT UNBLOCK for the reader's connection (from another
   * connection); resolves with whether a blocked read was woken.
   */
  unblock: (clientId: string) => Promise<boolean>;
  /**
   * Whether CLIENT UNBLOCK works (it was never refused): only then may a
   * wait over many streams block longer than `blockMs`.
   * @default {() => false}
   */
  canUnblock?: () => boolean;
  /**
   * How many streams all readers of this instance serve: a fenced reader's
   * sweep takes its share of the sweeps' rate by it (`fenced_reader.ts`).
   * @default {undefined} (this reader's own streams: the whole rate)
   */
  placed?: () => number;
  /**
   * Whether the source's notifications of new entries (`xadd` keyspace
   * events, see `source_events.ts`) reach this reader now: its waits then
   * sleep here, not on the server (one server; a cluster's reader never
   * blocks anyway).
   * @default {() => false}
   */
  notifications?: () => boolean;
}

/** Options for `StreamReader.readNow`. */
export interface ReadNowOptions {
  /**
   * The turn the streams are taken in when not all may be read (each kind
   * of read keeps its own).
   * @default {"backlog" with repeat, else "look"}
   */
  turn?: string;
  /**
   * Streams read at most (the next ones in that turn).
   * @default {Infinity}
   */
  most?: number;
}
