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
      const verdict = foreignVerdict(head, parseRawEntries(same.value).entries[0], info.value);
      if (verdict === "missing" || verdict === "different") {
        out.push({ stream: s, id: head.idText(), found: verdict });
      }
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

/**
 * Says, at WARNING, each stream of `tops` (its last entry on the target,
 * read at its start) whose target ends with an entry the source does not
 * hold ("missing") or holds with other bytes ("different") while the source
 * holds entries below it: the source's next entries are copied after it,
 * and the target holds entries the source lacks, in the middle, for good.
 * The source lost entries that had been copied (a restart without
 * persistence, a failover), something else wrote into the target, or,
 * failing back, entries written on the old source and never copied before
 * it was lost stand above what the new source holds. Entries the source
 * removed since (trimmed, deleted) are not said, nor a top below all the
 * source holds (a source stream deleted and made again is new: copied
 * after it). Returns the streams said.
 */
export async function foreignTops(
  source: RedisClient,
  tops: ReadonlyMap<ReplicatedStream, RawEntry>,
): Promise<ReplicatedStream[]> {
  const out: ReplicatedStream[] = [];
  for (const [db, list] of byDb([...tops.keys()], (s) => s.ref.db)) {
    const replies = await source.pipeline(
      db,
      list.flatMap((s) => {
        const id = tops.get(s)!.idText();
        return [["XRANGE", s.ref.key, id, id], ["XINFO", "STREAM", s.ref.key]];
      }),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((s, i) => {
      const [same, info] = [replies[2 * i], replies[2 * i + 1]];
      // No source stream (or not a stream): the start says so on its own.
      if (same.status === "rejected" || info.status === "rejected") return;
      const top = tops.get(s)!;
      const verdict = foreignVerdict(top, parseRawEntries(same.value).entries[0], info.value);
      if (verdict !== "missing" && verdict !== "different") return;
      // A source stream all above it (deleted and made again since) is new: copied after it.
      const first = parseFlatMap(info.value).get("first-entry") as RawEntry | null | undefined;
      if (
        verdict === "missing" && (first == null || compareIds(first.idText(), top.idText()) > 0)
      ) {
        return;
      }
      out.push(s);
      log.warning(
        verdict === "missing"
          ? 'Target stream {target} ends with entry {id}, which source stream {stream} does not hold: the source lost entries that had been copied (a restart without persistence, a failover), something else wrote into the target, or (failing back) they were written on the old source and never copied before it was lost. They stay; the source\'s next entries are copied after them; verify shows every difference (see "Failing back" in docs/operating.md)'
          : "Target stream {target} ends with entry {id} with other fields or values than source stream {stream} holds: something else wrote into the target stream. It stays; the source's next entries are copied after it; verify shows every difference",
        { target: s.ref.targetLabel, stream: s.ref.label, id: top.idText() },
      );
    });
  }
  return out;
}

/**
 * What the source says of a target entry, the one rule for every look at a
 * target stream (a run's start, `status`): "same" when the source holds it
 * with the same bytes, "different" with other bytes; when the source does
 * not hold it, "removed" if the source may have held it and removed it
 * since (a trim reached it: the source's first entry is not older, or the
 * source is empty; an XDEL went up to it; or Redis < 7 does not tell),
 * else "missing": something else wrote it into the target.
 *
 * @param onTarget The target's entry.
 * @param onSource The source's entry of that ID (XRANGE id id), if any.
 * @param sourceInfo The source stream's XINFO STREAM reply.
 */
export function foreignVerdict(
  onTarget: RawEntry,
  onSource: RawEntry | undefined,
  sourceInfo: unknown,
): "same" | "different" | "removed" | "missing" {
  if (onSource) return sameBytes(onSource.fields, onTarget.fields) ? "same" : "different";
  const id = onTarget.idText();
  const map = parseFlatMap(sourceInfo);
  const added = map.get("entries-added");
  const length = Number(map.get("length") ?? 0);
  // Never removed an entry: entries-added = length (Redis >= 7 tells).
  if (added !== undefined && Number(added) === length) return "missing";
  // An empty source (first-entry nil) may have trimmed it away.
  const first = map.get("first-entry") as RawEntry | null | undefined;
  const deleted = map.get("max-deleted-entry-id");
  const notTrimmed = first != null && compareIds(first.idText(), id) < 0;
  const notDeleted = deleted !== undefined && compareIds(text(deleted), id) < 0;
  return notTrimmed && notDeleted ? "missing" : "removed";
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
