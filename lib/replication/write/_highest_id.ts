/**
 * The highest ID of a batch written, the one its acknowledgement goes up
 * to. Internal to the writer.
 *
 * @module
 */
import { compareIds, entryId, type RawEntry } from "../../redis/mod.ts";

/** The highest ID of a batch (deleted IDs included: they are acked with it). */
export function highestId(entries: readonly RawEntry[], deleted: readonly string[]): string {
  let high = entries.length > 0 ? entryId(entries[entries.length - 1]) : deleted[0];
  for (const id of deleted) if (compareIds(id, high) > 0) high = id;
  return high;
}
