/**
 * The bytes of one stream's write: `MULTI`, one `XADD key [MAXLEN ~ n] id
 * fields...` per entry (the ID and the fields copied as the bytes they came
 * in), `EXEC`. Internal to the writer.
 *
 * @module
 */
import { compareIds, entryId, type RawEntry, RespWriter } from "../../redis/mod.ts";

const MULTI = encoded(["MULTI"]);
const EXEC = encoded(["EXEC"]);

/** Appends the transaction that writes `entries` to `key` (`maxlen`: `[]` or `MAXLEN ~ n`). */
export function encodeStreamWrite(
  out: RespWriter,
  entries: readonly RawEntry[],
  options: { key: Uint8Array | string; maxlen: readonly string[] },
): void {
  const { key, maxlen } = options;
  out.raw(MULTI);
  for (const e of entries) {
    out.arrayHeader(3 + maxlen.length + e.count);
    out.bulk("XADD");
    out.bulk(key);
    for (const arg of maxlen) out.bulk(arg);
    out.bulkSlice(e.buffer, e.idStart, e.idEnd);
    out.rawSlice(e.buffer, e.fieldsStart, e.fieldsEnd);
  }
  out.raw(EXEC);
}

/** The highest ID of a batch (deleted IDs included: they are acked with it). */
export function highestId(entries: readonly RawEntry[], deleted: readonly string[]): string {
  let high = entries.length > 0 ? entryId(entries[entries.length - 1]) : deleted[0];
  for (const id of deleted) if (compareIds(id, high) > 0) high = id;
  return high;
}

function encoded(args: string[]): Uint8Array {
  const w = new RespWriter(64);
  w.command(args);
  return w.take().slice();
}
