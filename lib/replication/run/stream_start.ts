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
import { compareIds, type RedisClient } from "../../redis/mod.ts";
import { ensureGroups, groupPositions, pendingCounts, sourceEnds } from "../group/group.ts";
import type { ReplicatedStream, StreamOutcome } from "../stream/stream.ts";
import { loadTargetTops } from "../write/target_check.ts";

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
  /** The others, with the entries pending in their group (0: none). */
  ready: Map<ReplicatedStream, number | Error>;
}

/** Gets `streams` ready to start; see the module doc. */
export async function prepareStart(
  control: RedisClient,
  streams: readonly ReplicatedStream[],
  options: PrepareStartOptions,
): Promise<PreparedStart> {
  const { group, startId } = options;
  const refused: PreparedStart["refused"] = [];
  const out = new Set(streams);
  const refuse = (stream: ReplicatedStream, outcome: StreamOutcome, error?: string) => {
    refused.push({ stream, outcome, error });
    out.delete(stream);
  };
  const groups = await ensureGroups(control, streams, {
    group,
    autoCreate: options.autoCreate,
    startId,
  });
  for (const s of groups.created) {
    log.debug("Created consumer group {group} on {stream} at {startId}", {
      group,
      stream: s.ref.label,
      startId: startId(s),
    });
  }
  for (const s of groups.skipped) refuse(s, "skipped");
  for (const [s, error] of groups.gone) refuse(s, "gone", error.message);
  for (const [s, error] of await loadTargetTops(options.target, [...out])) {
    refuse(s, "error", error.message);
  }
  // A group that has not delivered up to what the target holds (made now, made by an earlier
  // start that refused the stream, or moved back): the source stream may have been deleted
  // and recreated, its IDs starting again below what the target holds.
  await refuseResetSources(control, [...out].filter((s) => s.targetTop !== "0-0"), {
    group,
    refuse,
  });
  const ready = await pendingCounts(control, [...out], { group });
  return { created: groups.created.length, refused, ready };
}

/**
 * Refuses the streams of `streams` whose group has delivered less than
 * their target holds and whose source stream's last generated ID is below
 * the target's: their entries cannot be copied in order. An empty source
 * stream is not refused: entries added with generated IDs go above.
 */
async function refuseResetSources(
  control: RedisClient,
  streams: ReplicatedStream[],
  options: {
    group: string;
    refuse: (s: ReplicatedStream, outcome: StreamOutcome, error?: string) => void;
  },
): Promise<void> {
  if (streams.length === 0) return;
  const behind: ReplicatedStream[] = [];
  for (const [s, delivered] of await groupPositions(control, streams, options)) {
    if (delivered instanceof StreamGoneError) options.refuse(s, "gone", delivered.message);
    else if (delivered instanceof Error) throw delivered;
    else if (compareIds(delivered, s.targetTop) < 0) behind.push(s);
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
  return `Source stream ${s.ref.label} cannot be copied in order: its last ID ${last} is below the last ID ${s.targetTop} that target stream ${s.ref.targetLabel} already holds (the source stream was deleted and recreated, or its server lost entries that had been copied, or something else wrote into the target stream). Nothing was acked; copy it again into an emptied target stream (see "Copying a stream again" in the README)`;
}
