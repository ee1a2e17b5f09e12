/**
 * The stats of the streams a run replicates, for `status`, `/metrics` and
 * the progress line: read every discovery pass (all streams while there are
 * at most 1,000, 1,000 of them a pass beyond; the watchdog looks at the
 * others by `cover_check.ts`), and the entries trimmed on the source before
 * they could be copied reported as they are found.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import { compareIds, type RedisClient, type ServerPool } from "../../redis/mod.ts";
import { readStreamStats, type StreamStats } from "../stream/stats.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { EndedStream } from "../stream/ended_stream.ts";

/** A stream whose stats are kept: running here, or ended (what is kept of it). */
type Shown = ReplicatedStream | EndedStream;

/** Whether `stream` runs here (not ended). */
function running(stream: Shown): stream is ReplicatedStream {
  return !(stream instanceof EndedStream) && !stream.ended;
}
import type { StreamRef } from "../stream/stream_ref.ts";
import { lookBeyondCopies } from "./cover_check.ts";
import { StallWatch, type StallWatchOptions } from "./stall_watch.ts";

const log = getLog("orchestrator");

/**
 * The stats of this many streams are read a discovery pass at most: all of
 * them up to this many, beyond (those that moved first, then the quiet
 * others in turns) so that the cost of a pass stays the same however many
 * streams there are.
 */
const STATS_PER_PASS = 1000;
/**
 * The watchdog's look (`cover_check.ts`) takes this many of the other
 * streams a pass at most, in turns: the source spends about 4 µs per stream
 * of it, so 100,000 streams every pass would cost it 3% of its time.
 */
const COVER_PER_PASS = 10_000;

/** Options for {@linkcode StatsKeeper}. */
export interface StatsKeeperOptions {
  /** The consumer group whose pending count and lag are read. */
  group: string;
  /**
   * STREAM_START_ID of a stream: entries at or below an explicit one are not uncopied.
   * @default {() => "0"}
   */
  startId?: (ref: StreamRef) => string;
  /**
   * `count` more entries of the stream were found trimmed before they could be copied.
   * @default {undefined}
   */
  onTrimmedBeforeCopy?: (stream: StreamRef, count: number) => void;
  /**
   * The target stream was found below what was confirmed on it before the
   * read (its last entry lower, or no stream): it may have lost entries.
   * @default {undefined}
   */
  onTargetBehind?: (stream: ReplicatedStream) => void;
  /**
   * The consumer group has delivered past what the target holds, with
   * nothing pending: entries may have been passed by (XGROUP SETID).
   * @default {undefined}
   */
  onGroupAhead?: (stream: ReplicatedStream, delivered: string) => void;
  /**
   * The watchdog, which looks at every stream whose stats are read.
   * @default {undefined}
   */
  stalls?: StallWatchOptions;
  /**
   * This tool trims the target itself (TARGET_STREAM_MAXLEN, MIRROR_SOURCE_TRIM): entries
   * removed from a target stream are then not someone else's doing.
   * @default {false}
   */
  targetTrims?: boolean;
  /**
   * `count` more entries were found removed from a target stream by something else.
   * @default {undefined}
   */
  onTargetRemoved?: (stream: StreamRef, count: number) => void;
}

/**
 * The ID strings of `stats` made the stream's own where equal, and each
 * other's: kept for every stream (in turns, all of them after streams / 1,000
 * passes), a quiet stream's are then about two strings, not five (~100
 * bytes a stream). The same values, only not copies.
 */
function shareIds(stats: StreamStats, stream: Shown): void {
  const top = stream.targetTop;
  const copied = stream.status.lastCopiedId;
  stats.lastCopiedId = same(stats.lastCopiedId, top, copied);
  stats.lastSourceId = same(stats.lastSourceId, stats.lastCopiedId, top);
  stats.lastDeliveredId = same(stats.lastDeliveredId, stats.lastSourceId, top);
  stats.firstTargetId = same(stats.firstTargetId, stats.firstSourceId, stats.lastCopiedId);
  stats.firstSourceId = same(stats.firstSourceId, stats.firstTargetId, stats.lastSourceId);
  stats.targetRemovedUpTo = same(stats.targetRemovedUpTo, "0-0", stats.lastCopiedId);
}

/** `id`, or the first of `known` equal to it. */
function same(id: string, ...known: string[]): string {
  for (const k of known) if (k === id) return k;
  return id;
}

/** Keeps the streams' stats; see the module doc. */
export class StatsKeeper {
  /** The stats of each stream (by id) as last read. */
  readonly stats = new Map<string, StreamStats>();
  readonly #options: StatsKeeperOptions;
  /** Entries trimmed on the source before they were copied, last known, by stream id. */
  readonly #trimmed = new Map<string, number>();
  /** Entries removed from each target stream by something else, last known, by stream id. */
  readonly #removed = new Map<string, number>();
  /** What each stream's copy had done at its last stats refresh. */
  readonly #marks = new WeakMap<Shown, { mark: number; state: string }>();
  #turn = 0;
  #coverFrom = 0;
  readonly #stalls: StallWatch | undefined;

  constructor(options: StatsKeeperOptions) {
    this.#options = options;
    if (options.stalls) this.#stalls = new StallWatch(options.stalls);
  }

  /** Reads the stats of the streams of `all` whose turn it is. */
  async refresh(
    all: readonly Shown[],
    connections: { source: RedisClient; target: ServerPool },
  ): Promise<void> {
    if (all.length === 0) {
      this.stats.clear();
      return;
    }
    const refresh = this.#due(all);
    // Entries handled so far, taken before the read, so that handled + lag + pending
    // (what progress shows as the total) counts no entry twice.
    const handled = new Map<string, number>();
    for (const s of refresh) handled.set(s.ref.id, s.status.copied + s.status.skipped);
    // What each target stream held for sure before the read: it can only be more after it.
    const confirmed = new Map(refresh.map((s) => [s, s.targetTop]));
    const fresh = await readStreamStats(
      { source: connections.source, target: connections.target.client(all[0].ref.targetDb) },
      refresh.map((s) => s.ref),
      { group: this.#options.group, startId: this.#options.startId },
    );
    for (const [id, st] of fresh) st.handledAtRefresh = handled.get(id) ?? 0;
    this.#reportTrimmed(fresh, new Map(refresh.map((s) => [s.ref.id, s.ref])));
    if (!this.#options.targetTrims) this.#reportRemoved(fresh, refresh);
    for (const [id, st] of fresh) this.stats.set(id, st); // gone streams leave by the caller
    for (const stream of refresh) {
      const st = fresh.get(stream.ref.id);
      if (st) shareIds(st, stream);
    }
    for (const [stream, top] of confirmed) {
      const st = fresh.get(stream.ref.id);
      if (!st || st.targetWrongType || top === "0-0" || !running(stream)) continue;
      if (st.lastCopiedId === "" || compareIds(st.lastCopiedId, top) < 0) {
        this.#options.onTargetBehind?.(stream);
      }
    }
    for (const [stream, top] of confirmed) {
      const st = fresh.get(stream.ref.id);
      if (!st?.groupExists || st.pending !== 0 || !running(stream)) continue;
      if (compareIds(st.lastDeliveredId, top) > 0) {
        this.#options.onGroupAhead?.(stream, st.lastDeliveredId);
      }
    }
    for (const stream of confirmed.keys()) {
      const st = fresh.get(stream.ref.id);
      if (st && running(stream)) {
        this.#stalls?.observe(stream, st.lastSourceId);
      }
    }
    if (this.#stalls && refresh.length < all.length) {
      // The others, whose stats wait their turn: one XREAD per 1,000 of them.
      const others = this.#coverTurn(
        all.filter((s): s is ReplicatedStream => !confirmed.has(s) && running(s) && s.active),
      );
      const now = Date.now();
      const { behind, caughtUp } = await lookBeyondCopies(connections.source, others);
      for (const s of behind) if (!s.ended) this.#stalls.judge(s, true, now);
      for (const s of caughtUp) if (!s.ended) this.#stalls.judge(s, false, now);
    }
  }

  /** The next {@linkcode COVER_PER_PASS} of `others` (all of them when fewer), in turns. */
  #coverTurn(others: ReplicatedStream[]): ReplicatedStream[] {
    if (others.length <= COVER_PER_PASS) return others;
    const from = this.#coverFrom % others.length;
    this.#coverFrom = from + COVER_PER_PASS;
    const share = others.slice(from, from + COVER_PER_PASS);
    if (share.length < COVER_PER_PASS) {
      share.push(...others.slice(0, COVER_PER_PASS - share.length));
    }
    return share;
  }

  /**
   * The streams whose stats are read this pass: all of them while there are
   * at most {@linkcode STATS_PER_PASS}. With more, that many a pass: first
   * those whose copy moved since their last refresh (or that have none
   * yet), then the quiet others in turns; so the pass costs the same at
   * 1,000 or 100,000 streams, a quiet stream is refreshed every
   * streams / 1,000 passes, and ten thousand streams that all moved at once
   * (a backfill) are refreshed over ten passes, not in one.
   */
  #due(all: readonly Shown[]): Shown[] {
    if (all.length <= STATS_PER_PASS) return [...all];
    const cap = STATS_PER_PASS;
    const due: Shown[] = [];
    const quiet: Shown[] = [];
    for (const s of all) {
      const st = s.status;
      // The counters only grow: their sum moves whenever one does.
      const mark = st.copied + st.skipped + st.deleted + st.errors + st.recovered;
      const last = this.#marks.get(s);
      const moved = last === undefined || last.mark !== mark || last.state !== st.state;
      if (moved && due.length < cap) {
        this.#marks.set(s, { mark, state: st.state });
        due.push(s);
      } else if (!moved) quiet.push(s);
    }
    const turn = this.#turn % Math.max(1, quiet.length);
    for (let i = 0; i < quiet.length && due.length < cap; i++) {
      due.push(quiet[(turn + i) % quiet.length]);
      this.#turn++;
    }
    return due;
  }

  /**
   * Entries the source trimmed before they were delivered are lost for the
   * target: one WARNING per stream and pass in which more are found, and
   * the metric. Redis counts them for ever, so the first pass of a process
   * reports what it finds then.
   */
  #reportTrimmed(stats: Map<string, StreamStats>, refs: Map<string, StreamRef>): void {
    for (const [id, s] of stats) {
      if (s.trimmedBeforeCopy === null) {
        // Cannot be told now: keep what was known.
        const known = this.#trimmed.get(id);
        if (known !== undefined) s.trimmedBeforeCopy = known;
        continue;
      }
      const before = this.#trimmed.get(id) ?? 0;
      this.#trimmed.set(id, s.trimmedBeforeCopy);
      if (s.trimmedBeforeCopy <= before) continue;
      const ref = refs.get(id);
      if (!ref) continue;
      log.warning(
        "{count} entries of {stream} were trimmed on the source before they could be copied; they are lost for the target ({total} so far)",
        {
          count: s.trimmedBeforeCopy - before,
          stream: ref.label,
          total: s.trimmedBeforeCopy,
        },
      );
      this.#options.onTrimmedBeforeCopy?.(ref, s.trimmedBeforeCopy - before);
    }
  }

  /**
   * Entries removed from a target stream by something else (XDEL, XTRIM:
   * this tool never removes any unless it trims the target) cannot be
   * written again below its last entry: one WARNING per stream and pass in
   * which more are found, with how many and up to which ID, and the metric.
   */
  #reportRemoved(stats: Map<string, StreamStats>, streams: readonly Shown[]): void {
    for (const stream of streams) {
      const st = stats.get(stream.ref.id);
      if (!st) continue;
      const before = this.#removed.get(stream.ref.id) ?? 0;
      // Kept only when not 0, as absent counts as 0: not one entry for every quiet stream.
      if (st.targetRemoved > 0) this.#removed.set(stream.ref.id, st.targetRemoved);
      else this.#removed.delete(stream.ref.id);
      if (st.targetRemoved <= before) continue;
      log.warning(
        "{count} entries were removed from target stream {target} by something else (XTRIM, XDEL: {total} so far; it begins at {first}, XDEL removed up to {upTo}): they cannot be written again below its last entry; verify shows the difference",
        {
          count: st.targetRemoved - before,
          target: stream.ref.targetLabel,
          total: st.targetRemoved,
          first: st.firstTargetId || "-",
          upTo: st.targetRemovedUpTo,
        },
      );
      this.#options.onTargetRemoved?.(stream.ref, st.targetRemoved - before);
    }
  }
}
