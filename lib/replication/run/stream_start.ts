/**
 * What starting streams needs from the servers, for many streams in
 * pipelines: their consumer groups (made where missing), their target
 * streams' last IDs, a check that a source stream whose group has delivered
 * less than its target holds (a new group, one made by a start that refused
 * the stream, one moved back) does not start again below what its target
 * holds, and how many entries each group has pending. It tells which streams cannot start and why; the
 * engine ends those and starts the others.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import { StreamGoneError } from "../../errors.ts";
import { compareIds, type RawEntry, type RedisClient } from "../../redis/mod.ts";
import { ensureGroups, type GroupPosition, groupPositions, sourceEnds } from "../group/group.ts";
import { pendingCounts } from "../group/pending.ts";
import { unpendingGaps } from "../group/source_range.ts";
import { readStartPoints, recordStartPoints } from "../group/start_points.ts";
import type { ReplicatedStream, StreamOutcome } from "../stream/stream.ts";
import { loadTargetTops } from "../write/target_check.ts";
import { foreignHeads, foreignTops } from "../write/foreign_entries.ts";

const log = getLog("replicator");

/** Options for {@linkcode prepareStart}. */
export interface PrepareStartOptions {
  /** The consumer group. */
  group: string;
  /** Whether missing groups are made (STREAM_AUTO_CREATE_CONSUMER_GROUPS). */
  autoCreate: boolean;
  /** Where a stream's new group starts. */
  startId: (stream: ReplicatedStream) => string;
  /** A connection to the target. */
  target: RedisClient;
}

/** What {@linkcode prepareStart} found. */
export interface PreparedStart {
  /** Groups made. */
  created: number;
  /** Streams that cannot start, how they end and why. */
  refused: Array<{ stream: ReplicatedStream; outcome: StreamOutcome; error?: string }>;
  /** The others, with the entries pending in their group (0: none; -1: none, but what the target lost is copied again first). */
  ready: Map<ReplicatedStream, number | Error>;
}

/** Gets `streams` ready to start; see the module doc. */
export async function prepareStart(
  control: RedisClient,
  streams: readonly ReplicatedStream[],
  options: PrepareStartOptions,
): Promise<PreparedStart> {
  const { group } = options;
  // Asked once a stream: the steps below ask it again and again (at 100,000 streams the calls
  // took 0.1 s of run --once).
  const startIds = new Map<ReplicatedStream, string>();
  const startId = (s: ReplicatedStream) => {
    let id = startIds.get(s);
    if (id === undefined) startIds.set(s, id = options.startId(s));
    return id;
  };
  const refused: PreparedStart["refused"] = [];
  const out = new Set(streams);
  const refuse = (stream: ReplicatedStream, outcome: StreamOutcome, error?: string) => {
    refused.push({ stream, outcome, error });
    out.delete(stream);
  };
  const tops = new Map<ReplicatedStream, RawEntry>();
  for (const [s, error] of await loadTargetTops(options.target, streams, { tops })) {
    refuse(s, "error", error.message);
  }
  // A group made where the target already holds entries goes on from the target's top, not
  // from "$": the stream was copied before (then deleted and recreated, or its group
  // destroyed), and what it holds beyond that top is to be copied, not skipped.
  const from = (s: ReplicatedStream) =>
    startId(s) === "$" && s.targetTop !== "0-0" ? s.targetTop : startId(s);
  const groups = await ensureGroups(control, [...out], {
    group,
    autoCreate: options.autoCreate,
    startId: from,
  });
  for (const s of groups.created) {
    log.debug("Created consumer group {group} on {stream} at {startId}", {
      group,
      stream: s.ref.label,
      startId: from(s),
    });
  }
  for (const s of groups.skipped) refuse(s, "skipped");
  for (const [s, error] of groups.gone) refuse(s, "gone", error.message);
  // A group that has not delivered up to what the target holds (made now, made by an earlier
  // start that refused the stream, or moved back): the source stream may have been deleted
  // and recreated, its IDs starting again below what the target holds.
  const made = new Set(groups.created);
  await refuseResetSources(control, [...out].filter((s) => s.targetTop !== "0-0"), {
    group,
    refuse,
    made,
  });
  // A group that existed already may have delivered (and seen acked) entries the target no
  // longer holds (it lost them while this tool was stopped), or been moved past entries
  // (XGROUP SETID): those still on the source are copied again first, by the recovery.
  // Where a group stands now is a floor (nothing at or below it is taken as passed by) only
  // where it passed older entries on purpose: made at "$" (here, or with STREAM_START_ID=$),
  // or made by someone else where it should start (nobody read through it, no copy yet).
  // Elsewhere it may have been moved while this tool was stopped: no floor.
  // A group made here at an ID stands at that ID with no consumer: no XINFO GROUPS for it
  // (100,000 of them on a first start). Made at "$", where it stands is read. Moved since by
  // someone else: the write's continuity check finds what it passed.
  const known = new Map<ReplicatedStream, GroupPosition>();
  for (const s of made) {
    const at = from(s);
    if (at !== "$") known.set(s, { delivered: at.includes("-") ? at : `${at}-0`, consumers: 0 });
  }
  const positions = await groupPositions(control, [...out].filter((s) => !known.has(s)), {
    group,
  });
  for (const [s, position] of known) if (out.has(s)) positions.set(s, position);
  for (const [s, position] of positions) {
    if (position instanceof Error) continue;
    const onPurpose = made.has(s) || startId(s) === "$" ||
      (s.targetTop === "0-0" && position.consumers === 0);
    if (onPurpose) s.startDelivered = position.delivered;
    if (position.lag === 0) {
      // Nothing to read yet: straight to the wait (from where the group stands), no first
      // read (at 100,000 quiet streams, those took most of a minute). Entries that come
      // meanwhile end the wait at once.
      s.hot = false;
      s.lastDelivered = position.delivered;
    }
  }
  // Groups made now at "$" say where they began; with no target stream, a "$" group made
  // earlier is judged from where it began (recorded), not from where it stands now.
  await recordStartPoints(
    control,
    groups.created.filter((s) => startId(s) === "$" && s.startDelivered !== undefined)
      .map((s) => ({ stream: s, at: s.startDelivered! })),
    { group },
  );
  const began = await readStartPoints(
    control,
    [...out].filter((s) => !made.has(s) && startId(s) === "$" && s.targetTop === "0-0"),
    { group },
  ).catch(() => new Map<ReplicatedStream, string>());
  for (const [s, at] of began) s.startDelivered = at;
  // With "$", only where the target holds entries: a group made at "$" where the target held
  // some starts at its top, so what lies above it was delivered, not passed on purpose.
  const gapsToFind = [...out].filter((s) =>
    !made.has(s) && (startId(s) !== "$" || s.targetTop !== "0-0" || began.has(s))
  );
  await findTargetGaps(control, gapsToFind, {
    group,
    startId,
    positions,
    began,
  });
  // Entries something else wrote into a target stream are said (never removed), at its
  // beginning and at its end (what is copied next goes above them).
  await foreignHeads(
    { source: control, target: options.target },
    [...out].filter((s) => s.targetTop !== "0-0"),
  );
  await foreignTops(control, new Map([...tops].filter(([s]) => out.has(s))));
  // Also for a group made here: someone may have read through it already (entries pending to
  // another consumer, claimed by the recovery before the first read; run --once has no
  // maintenance to claim them later).
  const ready = await pendingCounts(control, [...out], { group });
  for (const s of out) if (s.refill && ready.get(s) === 0) ready.set(s, -1);
  return { created: groups.created.length, refused, ready };
}

/**
 * Marks the streams of `streams` whose group has delivered past their
 * target's top and whose first source entry above that top is not pending:
 * what lies between is copied again from the source before anything else
 * (`refill`). Entries below an explicit STREAM_START_ID are not.
 */
async function findTargetGaps(
  control: RedisClient,
  streams: ReplicatedStream[],
  options: {
    group: string;
    startId: (stream: ReplicatedStream) => string;
    positions: ReadonlyMap<ReplicatedStream, GroupPosition | Error>;
    /** Where "$" groups made earlier began (recorded): nothing below is to be copied. */
    began: ReadonlyMap<ReplicatedStream, string>;
  },
): Promise<void> {
  if (streams.length === 0) return;
  const ranges: Array<{ stream: ReplicatedStream; from: string; to: string }> = [];
  for (const s of streams) {
    const position = options.positions.get(s);
    if (position === undefined || position instanceof Error) continue; // its start says so
    // No target stream and nobody ever read through the group: a group made by someone else
    // where it should start (XGROUP CREATE ... $), used as is; not a target that lost all.
    if (s.targetTop === "0-0" && position.consumers === 0) continue;
    const delivered = position.delivered;
    const start = options.began.get(s) ?? options.startId(s);
    const from = /^\d+-\d+$/.test(start) && compareIds(start, s.targetTop) > 0
      ? start
      : s.targetTop;
    if (compareIds(delivered, from) > 0) ranges.push({ stream: s, from, to: delivered });
  }
  for (const gap of await unpendingGaps(control, ranges, options)) {
    gap.stream.refill = { from: gap.from, to: gap.to };
    log.warning(
      "Target stream {target} holds less than its consumer group delivered of {stream} (up to {top}, the group is at {delivered}): the target lost entries, or the group was moved past them; copying them again from the source",
      {
        target: gap.stream.ref.targetLabel,
        stream: gap.stream.ref.label,
        top: gap.stream.targetTop,
        delivered: gap.to,
      },
    );
  }
}

/**
 * Refuses the streams of `streams` whose group has delivered less than
 * their target holds (or was made by this start) and whose source
 * stream's last generated ID is below
 * the target's: their entries cannot be copied in order. An empty source
 * stream is not refused: entries added with generated IDs go above.
 */
async function refuseResetSources(
  control: RedisClient,
  streams: ReplicatedStream[],
  options: {
    group: string;
    refuse: (s: ReplicatedStream, outcome: StreamOutcome, error?: string) => void;
    /** Streams whose group this start made (at the target's top, or where told). */
    made: ReadonlySet<ReplicatedStream>;
  },
): Promise<void> {
  if (streams.length === 0) return;
  const behind: ReplicatedStream[] = [];
  for (const [s, position] of await groupPositions(control, streams, options)) {
    if (position instanceof StreamGoneError) options.refuse(s, "gone", position.message);
    else if (position instanceof Error) throw position;
    else if (options.made.has(s) || compareIds(position.delivered, s.targetTop) < 0) behind.push(s);
  }
  if (behind.length === 0) return;
  for (const [s, end] of await sourceEnds(control, behind)) {
    if (end instanceof StreamGoneError) options.refuse(s, "gone", end.message);
    else if (end instanceof Error) throw end;
    else if (end.length > 0 && compareIds(end.lastGenerated, s.targetTop) < 0) {
      options.refuse(s, "error", resetMessage(s, end.lastGenerated));
    }
  }
}

function resetMessage(s: ReplicatedStream, last: string): string {
  return `Source stream ${s.ref.label} cannot be copied in order: its last ID ${last} is below the last ID ${s.targetTop} that target stream ${s.ref.targetLabel} already holds (the source stream was deleted and recreated, or its server lost entries that had been copied, or something else wrote into the target stream). Nothing was acked; copy it again into an emptied target stream (see "Copying a stream again" in docs/operating.md)`;
}
