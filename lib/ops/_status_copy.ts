/**
 * What `status` finds by looking at both servers, for each stream: whether
 * the target's last entry is one the source holds with the same bytes
 * (else something else wrote into the target stream: the same rule as the
 * warning of a run's start, `write/foreign_entries.ts`), which entry was
 * really copied last, and the time of the oldest source entry above it
 * (the oldest uncopied one), with the source's clock (TIME). A few
 * pipelines per DB and thousand streams; the streams with foreign entries
 * cost two more.
 *
 * @module
 */
import {
  compareIds,
  parseRawEntries,
  RANGE_REPLY,
  type RawEntry,
  type RedisClient,
} from "../redis/mod.ts";
import {
  foreignVerdict,
  oldestUncopied,
  serverNowMs,
  type StreamRef,
  type StreamStats,
} from "../replication/mod.ts";

/** What `status` found of one stream's copy. */
export interface CopyLook {
  /**
   * The last entry copied: the target's last one, unless that one is
   * foreign; then the target's last entry below it that the source holds
   * with the same bytes ("" when the target holds none, null when one look
   * cannot tell).
   */
  copiedId: string | null;
  /** Why the target stream is wrong ("" when it is not): it holds entries the source does not. */
  error: string;
  /**
   * The millisecond time (from its ID) of the oldest source entry above
   * `copiedId` that the tool copies; null when there is none, or when
   * `copiedId` is null.
   */
  oldestUncopiedMs: number | null;
}

/** Options for {@linkcode lookAtCopies}. */
export interface LookOptions {
  /** Each stream's stats, by stream id (both sides read). */
  stats: ReadonlyMap<string, StreamStats>;
  /** The consumer group (STREAM_CONSUMER_GROUP). */
  group: string;
  /** STREAM_START_ID: entries a group made there skips are not counted as uncopied. */
  startId: string;
}

/** Streams per pipeline. */
const CHUNK = 1000;

/** Looks at each stream of `refs` on both servers; `nowMs` is the source's clock. */
export async function lookAtCopies(
  connections: { source: RedisClient; target: RedisClient },
  refs: readonly StreamRef[],
  options: LookOptions,
): Promise<{ nowMs: number; looks: Map<string, CopyLook> }> {
  const { source } = connections;
  const looks = new Map<string, CopyLook>();
  for (const ref of refs) {
    looks.set(ref.id, {
      copiedId: options.stats.get(ref.id)!.lastCopiedId,
      error: "",
      oldestUncopiedMs: null,
    });
  }
  const topped = refs.filter((r) => options.stats.get(r.id)!.lastCopiedId !== "");
  const foreign = await foreignTops(connections, topped, options.stats);
  for (const [ref, found] of foreign) looks.get(ref.id)!.error = foreignMessage(ref, found);
  const below = await copiedBelow(connections, [...foreign.keys()], options.stats);
  for (const [ref, id] of below) looks.get(ref.id)!.copiedId = id;
  const asks = refs.flatMap((ref) => {
    const copiedId = looks.get(ref.id)!.copiedId;
    const stats = options.stats.get(ref.id)!;
    return copiedId === null ? [] : [{ ref, copiedId, stats, startId: options.startId }];
  });
  const [nowMs, oldest] = await Promise.all([
    serverNowMs(source),
    oldestUncopied(source, asks, options),
  ]);
  for (const [id, ms] of oldest) looks.get(id)!.oldestUncopiedMs = ms;
  return { nowMs, looks };
}

/** How a target's entry differs from the source: not there (never removed), or other bytes. */
type Found = { id: string; how: "missing" | "different" };

/**
 * The streams of `refs` whose target's last entry the source does not hold
 * (and never removed: no trim reached it, no XDEL went up to it, or it
 * never removed an entry at all), or holds with other bytes.
 */
async function foreignTops(
  connections: { source: RedisClient; target: RedisClient },
  refs: readonly StreamRef[],
  stats: ReadonlyMap<string, StreamStats>,
): Promise<Map<StreamRef, Found>> {
  const top = (ref: StreamRef) => stats.get(ref.id)!.lastCopiedId;
  const onTarget = await entriesAt(connections.target, refs, {
    side: "target",
    upTo: top,
    exact: true,
  });
  const out = new Map<StreamRef, Found>();
  for (const [db, list] of chunks(refs, (r) => r.db)) {
    const replies = await connections.source.pipeline(
      db,
      list.flatMap((r) => [["XRANGE", r.key, top(r), top(r)], ["XINFO", "STREAM", r.key]]),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((ref, i) => {
      const [same, info] = [replies[2 * i], replies[2 * i + 1]];
      const mine = onTarget.get(ref);
      if (!mine || same.status === "rejected" || info.status === "rejected") return;
      const verdict = foreignVerdict(mine, parseRawEntries(same.value).entries[0], info.value);
      if (verdict === "missing" || verdict === "different") {
        out.set(ref, { id: top(ref), how: verdict });
      }
    });
  }
  return out;
}

function foreignMessage(ref: StreamRef, found: Found): string {
  const what = found.how === "missing"
    ? `not on source stream "${ref.label}", which never removed it`
    : `which source stream "${ref.label}" holds with other fields or values`;
  return `Target stream "${ref.targetLabel}" holds entries the source does not: "${found.id}", ${what} (something else wrote into the target stream: see "Copying a stream again" in docs/operating.md)`;
}

/**
 * For streams whose target's last entry is foreign: the target's last
 * entry below it (and at most the source's last ID), when the source holds
 * it with the same bytes ("" when the target holds nothing there, null
 * when that entry is not the source's either: one look cannot tell).
 */
async function copiedBelow(
  connections: { source: RedisClient; target: RedisClient },
  refs: readonly StreamRef[],
  stats: ReadonlyMap<string, StreamStats>,
): Promise<Map<StreamRef, string | null>> {
  const out = new Map<StreamRef, string | null>();
  const end = (ref: StreamRef) => {
    const s = stats.get(ref.id)!;
    return s.lastSourceId !== "" && compareIds(s.lastCopiedId, s.lastSourceId) > 0
      ? s.lastSourceId
      : `(${s.lastCopiedId}`;
  };
  const candidates = await entriesAt(connections.target, refs, { side: "target", upTo: end });
  for (const ref of refs) out.set(ref, candidates.has(ref) ? null : "");
  const found = [...candidates.keys()];
  const onSource = await entriesAt(connections.source, found, {
    side: "source",
    upTo: (ref) => candidates.get(ref)!.idText(),
    exact: true,
  });
  for (const ref of found) {
    const mine = candidates.get(ref)!;
    const theirs = onSource.get(ref);
    if (
      theirs && theirs.idText() === mine.idText() && foreignVerdict(mine, theirs, null) === "same"
    ) {
      out.set(ref, mine.idText());
    }
  }
  return out;
}

/**
 * The last entry at or below `upTo(ref)` (`(id`: below it) of each stream
 * of `refs` on `side`, by XREVRANGE; with `exact`, only the entry of that ID.
 */
async function entriesAt(
  client: RedisClient,
  refs: readonly StreamRef[],
  options: { side: "source" | "target"; upTo: (ref: StreamRef) => string; exact?: boolean },
): Promise<Map<StreamRef, RawEntry>> {
  const out = new Map<StreamRef, RawEntry>();
  const onTarget = options.side === "target";
  for (const [db, list] of chunks(refs, (r) => onTarget ? r.targetDb : r.db)) {
    const replies = await client.pipeline(
      db,
      list.map((r) => {
        const end = options.upTo(r);
        const key = onTarget ? r.targetKey : r.key;
        return ["XREVRANGE", key, end, options.exact ? end : "-", "COUNT", "1"];
      }),
      { buffers: true, parse: RANGE_REPLY },
    );
    list.forEach((ref, i) => {
      const r = replies[i];
      const entry = r.status === "fulfilled" ? parseRawEntries(r.value).entries[0] : undefined;
      if (entry) out.set(ref, entry);
    });
  }
  return out;
}

/** `items` by `db`, in chunks of {@linkcode CHUNK}. */
function chunks<T>(items: readonly T[], db: (item: T) => number): Array<[number, T[]]> {
  const byDb = new Map<number, T[]>();
  for (const item of items) {
    const list = byDb.get(db(item));
    if (list) list.push(item);
    else byDb.set(db(item), [item]);
  }
  const out: Array<[number, T[]]> = [];
  for (const [n, list] of byDb) {
    for (let i = 0; i < list.length; i += CHUNK) out.push([n, list.slice(i, i + CHUNK)]);
  }
  return out;
}
