/**
 * The writes of the normal path as pipelines: which writes share one
 * (the same target DB and node, up to a size), and their bytes (one
 * MULTI/XADD.../EXEC per stream, a WAIT after all of them). Internal to
 * the writer.
 *
 * @module
 */
import {
  encodeStreamWrite,
  type RawEntry,
  type RespWriter,
  writeReplies,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { groupBy } from "../_group_by.ts";
import { encodeWait, type ReplicaWait } from "./_replica_wait.ts";

/** Bytes of the writes sent in one pipeline on one connection (more go to other connections). */
const PIPELINE_MAX_BYTES = 2 * 1024 * 1024;

/** One write of one stream. */
export interface Write {
  /** The stream written. */
  stream: ReplicatedStream;
  /** Its entries, in ID order. */
  entries: RawEntry[];
  /** IDs of its pending entries found deleted from the source (acked only). */
  deleted: string[];
  /** Bytes of the entries' fields. */
  bytes: number;
}

/**
 * `writes` in pipelines: per target DB and node (`nodeOf` a key: a
 * cluster's master of it), and at most about 2 MiB each.
 */
export function pipelinesOf(
  writes: Write[],
  nodeOf: (key: Uint8Array) => string,
): Array<{ db: number; writes: Write[] }> {
  const pipelines: Array<{ db: number; writes: Write[] }> = [];
  const byRoute = groupBy(
    writes,
    (w) => `${w.stream.ref.targetDb}/${nodeOf(w.stream.ref.targetKey)}`,
  );
  for (const list of byRoute.values()) {
    const db = list[0].stream.ref.targetDb;
    let chunk: Write[] = [];
    let bytes = 0;
    for (const write of list) {
      if (chunk.length > 0 && bytes + write.bytes > PIPELINE_MAX_BYTES) {
        pipelines.push({ db, writes: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(write);
      bytes += write.bytes;
    }
    if (chunk.length > 0) pipelines.push({ db, writes: chunk });
  }
  return pipelines;
}

/** The replies a pipeline of `writes` gets, and about how many bytes it is. */
export function pipelineSize(
  writes: readonly Write[],
  wait: ReplicaWait | undefined,
): { replies: number; bytes: number } {
  let replies = wait ? 1 : 0;
  let bytes = 0;
  for (const w of writes) {
    replies += writeReplies(w.entries.length);
    bytes += w.bytes + w.entries.length * (48 + w.stream.ref.targetKey.length);
  }
  return { replies, bytes };
}

/**
 * Encodes a pipeline of `writes`; those `divert` says no to get PINGs in
 * their place (as many replies) and are added to `diverted`.
 */
export function encodeWrites(
  out: RespWriter,
  writes: readonly Write[],
  options: {
    maxlen: string[];
    wait: ReplicaWait | undefined;
    divert: (w: Write) => boolean;
    diverted: Set<Write>;
  },
): void {
  const { maxlen, wait, divert, diverted } = options;
  for (const w of writes) {
    if (divert(w)) {
      diverted.add(w);
      for (let i = writeReplies(w.entries.length); i > 0; i--) out.command(["PING"]);
      continue;
    }
    encodeStreamWrite(out, w.entries, {
      key: w.stream.ref.targetKey,
      maxlen,
      mustExist: w.stream.targetTop !== "0-0",
    });
  }
  if (wait) encodeWait(out, wait); // after all of them: it waits for the last
}
