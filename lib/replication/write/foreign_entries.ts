/**
 * A look at what else a target stream holds, at start: its first entry must
 * be one the source holds with the same bytes (or one the source trimmed
 * since: older than the source's first entry). Anything else was written by
 * something else (or deleted from the source after it was copied), and is
 * said at WARNING: the tool never removes it, `verify` shows every difference.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import {
  compareIds,
  parseFlatMap,
  parseRawEntries,
  RANGE_REPLY,
  type RawEntry,
  type RedisClient,
  text,
} from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { sameBytes } from "./target_check.ts";

const log = getLog("replicator");

/** A target stream's first entry, as the source holds it (or not). */
export interface ForeignHead {
  /** The stream. */
  stream: ReplicatedStream;
  /** The target's first entry ID. */
  id: string;
  /** "missing": the source does not hold it; "different": it holds it with other bytes. */
  found: "missing" | "different";
}

/** The streams of `streams` (their target stream not empty) whose target begins with an entry the source lacks. */
export async function foreignHeads(
  connections: { source: RedisClient; target: RedisClient },
  streams: readonly ReplicatedStream[],
): Promise<ForeignHead[]> {
  const heads = new Map<ReplicatedStream, RawEntry>();
  for (const [db, list] of byDb(streams, (s) => s.ref.targetDb)) {
    const replies = await connections.target.pipeline(
      db,
      list.map((s) => ["XRANGE", s.ref.targetKey, "-", "+", "COUNT", "1"]),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((s, i) => {
      const r = replies[i];
      const head = r.status === "fulfilled" ? parseRawEntries(r.value).entries[0] : undefined;
      if (head) heads.set(s, head);
    });
  }
  const out: ForeignHead[] = [];
  for (const [db, list] of byDb([...heads.keys()], (s) => s.ref.db)) {
    const replies = await connections.source.pipeline(
      db,
      list.flatMap((s) => {
        const id = heads.get(s)!.idText();
        return [["XRANGE", s.ref.key, id, id], ["XINFO", "STREAM", s.ref.key]];
      }),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((s, i) => {
      const [same, info] = [replies[2 * i], replies[2 * i + 1]];
      if (same.status === "rejected" || info.status === "rejected") return;
      const head = heads.get(s)!;
      const there = parseRawEntries(same.value).entries[0];
      if (there) {
        if (!sameBytes(there.fields, head.fields)) {
          out.push({ stream: s, id: head.idText(), found: "different" });
        }
        return;
      }
      // Not in the source: trimmed or deleted there since it was copied, unless the source
      // never removed an entry (entries-added = length), or removed none that far: its first
      // entry is older (no trim reached it) and no XDEL went up to it (Redis >= 7 tells).
      const map = parseFlatMap(info.value);
      const added = map.get("entries-added");
      const length = Number(map.get("length") ?? 0);
      const first = map.get("first-entry") as RawEntry | undefined;
      const deleted = map.get("max-deleted-entry-id");
      const id = head.idText();
      const neverRemoved = added !== undefined && Number(added) === length;
      const notTrimmed = first !== undefined && compareIds(first.idText(), id) < 0;
      const notDeleted = deleted !== undefined && compareIds(text(deleted), id) < 0;
      if (neverRemoved || (notTrimmed && notDeleted)) out.push({ stream: s, id, found: "missing" });
    });
  }
  for (const { stream, id, found } of out) {
    log.warning(
      found === "missing"
        ? "Target stream {target} begins with entry {id}, which source stream {stream} does not hold: something else wrote it into the target, or it was deleted from the source after it was copied (the tool leaves it; verify shows every difference)"
        : "Target stream {target} begins with entry {id} with other fields or values than source stream {stream} holds: something else wrote into the target stream (the tool leaves it; verify shows every difference)",
      { target: stream.ref.targetLabel, stream: stream.ref.label, id },
    );
  }
  return out;
}

function byDb(
  streams: readonly ReplicatedStream[],
  db: (s: ReplicatedStream) => number,
): Map<number, ReplicatedStream[]> {
  const out = new Map<number, ReplicatedStream[]>();
  for (const s of streams) {
    const list = out.get(db(s));
    if (list) list.push(s);
    else out.set(db(s), [s]);
  }
  return out;
}
