/**
 * How a reader's XREADGROUP goes to the server: plainly, or fenced (inside
 * the FENCED_READ script, which checks the streams' leases and takes their
 * entries in one step). The bytes themselves are encoded by the stream
 * commands' codec of `lib/redis`. Internal to the reader.
 *
 * @module
 */
import {
  encodeFencedRead,
  encodeGroupRead,
  encodeStreamsTail,
  FENCED_READ_REPLY,
  fencedReadReply,
  type GroupRead,
  leaseLostPositions,
  type ParseMode,
  READ_REPLY,
  type RespValue,
  type RespWriter,
} from "../../redis/mod.ts";
import { FENCED_READ } from "../sharing/_lease_scripts.ts";
import type { ReadFence } from "../sharing/read_fence.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const FENCED_READ_BYTES = new TextEncoder().encode(FENCED_READ);

/** What one read needs besides its streams. */
export interface ReadCommandOptions {
  /** Consumer group. */
  group: string;
  /** Consumer name. */
  consumer: string;
  /** COUNT per stream. */
  count: number;
  /** BLOCK milliseconds (0: the read does not block). */
  blockMs: number;
  /** The `STREAMS ...` part, encoded before for these streams (see {@linkcode TailCache}). */
  tail?: Uint8Array;
}

/** Appends one read of some streams to a pipeline (one reply), and reads its reply. */
export interface ReadCommand {
  /** How its reply is parsed. */
  readonly parse: ParseMode;
  /** Appends one read of `streams` (`>`, or each one's history ID). */
  encode(w: RespWriter, streams: readonly ReplicatedStream[], options: ReadCommandOptions): void;
  /**
   * XREADGROUP's reply in it, and per stream of that reply the ID of the
   * source entry before its first one delivered, where told.
   */
  split(reply: RespValue): { read: RespValue; before: Array<string | undefined> };
}

/** The plain `XREADGROUP`. */
export const GROUP_READ: ReadCommand = {
  parse: READ_REPLY,
  encode(w, streams, options) {
    encodeGroupRead(w, groupRead(streams, options), options);
  },
  split: (read) => ({ read, before: [] }),
};

/** The fenced read: XREADGROUP inside FENCED_READ, with each stream's lease key and value. */
export function fencedRead(fence: ReadFence): ReadCommand {
  return {
    parse: FENCED_READ_REPLY,
    encode(w, streams, options) {
      encodeFencedRead(w, FENCED_READ_BYTES, {
        ...groupRead(streams, options),
        leaseKeys: streams.map((s) => fence.keyOf(s.ref)),
        values: streams.map((s) => fence.valueOf(s.ref)),
      });
    },
    split: fencedReadReply,
  };
}

function groupRead(streams: readonly ReplicatedStream[], options: ReadCommandOptions): GroupRead {
  return {
    group: options.group,
    consumer: options.consumer,
    count: options.count,
    keys: streams.map((s) => s.ref.key),
    ids: streams.map((s) => s.history ?? ">"),
  };
}

/**
 * The streams of one fenced read whose lease is lost, from its `LEASELOST
 * i,j` error; undefined for any other reply.
 */
export function lostLeases(
  reply: RespValue,
  streams: readonly ReplicatedStream[],
): ReplicatedStream[] | undefined {
  return leaseLostPositions(reply, streams.length)?.map((i) => streams[i]);
}

/**
 * `STREAMS k1 k2 ... > > ...` of a blocking read, encoded once and reused
 * while the streams are the same (an idle reader sends it again every
 * STREAM_POLL_INTERVAL over hundreds of keys).
 */
export class TailCache {
  #streams: readonly ReplicatedStream[] = [];
  #bytes: Uint8Array | null = null;

  /** The encoded tail for `streams` (read with ">"). */
  of(streams: readonly ReplicatedStream[]): Uint8Array {
    const cached = this.#streams;
    if (
      this.#bytes && cached.length === streams.length && cached.every((s, i) => s === streams[i])
    ) return this.#bytes;
    this.#bytes = encodeStreamsTail(
      streams.map((s) => s.ref.key),
      streams.map((s) => s.history ?? ">"),
    );
    this.#streams = streams;
    return this.#bytes;
  }
}
