/**
 * What the replies of one stream's MULTI/XADD.../EXEC say: how many entries
 * were written and the last of them, those the target refused as not above
 * its top (checked carefully next), or the error that ends the write; and
 * the highest ID a batch acknowledges.
 * Internal to the writer.
 *
 * @module
 */
import { RedisReplyError, StreamStoppedError } from "../../errors.ts";
import {
  compareIds,
  entryId,
  execReplies,
  type RawEntry,
  type RespValue,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { DUPLICATE_ID, targetLost, wrongTypeMessage } from "./target_check.ts";

/** What a write did, or why it failed. */
export type WriteOutcome =
  | { error: unknown }
  | { written: number; last: RawEntry | undefined; duplicates: RawEntry[] };

/** Reads the replies of the write of `entries` (ID order) to `stream`'s target. */
export function writeOutcome(
  stream: ReplicatedStream,
  entries: readonly RawEntry[],
  replies: RespValue[],
): WriteOutcome {
  let results: RespValue[];
  try {
    results = execReplies(replies, "the target");
  } catch (error) {
    return { error };
  }
  let written = 0;
  let last: RawEntry | undefined;
  const duplicates: RawEntry[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    // NOMKSTREAM: the target stream is gone (deleted, flushed); nothing was written.
    if (r === null) return { error: targetLost(stream, "0-0") };
    if (!(r instanceof RedisReplyError)) {
      written++;
      last = entries[i]; // entries are in ID order: the last written one is the top
      continue;
    }
    if (DUPLICATE_ID.test(r.message)) {
      duplicates.push(entries[i]);
      continue;
    }
    return {
      error: r.code === "WRONGTYPE"
        ? new StreamStoppedError(wrongTypeMessage(stream.ref), { cause: r })
        : r,
    };
  }
  return { written, last, duplicates };
}

/** The highest ID of a batch (deleted IDs included: they are acked with it). */
export function highestId(entries: readonly RawEntry[], deleted: readonly string[]): string {
  let high = entries.length > 0 ? entryId(entries[entries.length - 1]) : deleted[0];
  for (const id of deleted) if (compareIds(id, high) > 0) high = id;
  return high;
}
