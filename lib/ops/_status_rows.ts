/**
 * The rows of `status`, from what was read: from both sides, from the
 * source alone (the target is down) or from the target alone (the source
 * is down; the fields of the side that is down are null).
 *
 * @module
 */
import { type StreamRef, type StreamStats, toHex } from "../replication/mod.ts";
import type { CopyLook } from "./_status_copy.ts";
import type { StatusRow } from "./status.ts";

/** Where a stream lives and who copies it, read apart from its stats. */
export interface RowPlaces {
  /** The lease holder ("" when none). */
  owner: string;
  /** The source's cluster node ("" on one server). */
  sourceNode: string;
  /** The target's cluster node ("" on one server). */
  targetNode: string;
}

/** Options for {@linkcode bothSidesRow}. */
export interface BothSidesOptions extends RowPlaces {
  /** What the look at both sides found. */
  look: CopyLook;
  /** The source's clock, in milliseconds. */
  nowMs: number;
  /** STREAM_START_ID. */
  startId: string;
}

/** The row of a stream read on both sides. */
export function bothSidesRow(ref: StreamRef, s: StreamStats, options: BothSidesOptions): StatusRow {
  const { look, nowMs, startId } = options;
  const copied = look.copiedId;
  const nothingLeft = copied !== null && copied !== "" && look.oldestUncopiedMs === null;
  const inSync = s.lastSourceId === "" || (copied !== null && copied === s.lastSourceId) ||
    nothingLeft;
  let state: string;
  if (s.targetWrongType) state = "target-wrong-type";
  else if (look.error !== "") state = "error";
  else if (!s.groupExists) state = inSync && s.sourceLength > 0 ? "in-sync" : "no-group";
  else if (s.lag === null) state = s.pending > 0 || !inSync ? "behind" : "unknown";
  else state = s.lag === 0 && s.pending === 0 && inSync ? "in-sync" : "behind";
  const age = look.oldestUncopiedMs === null ? 0 : Math.max(0, nowMs - look.oldestUncopiedMs);
  return {
    ...sourceFields(ref, s, { startId, inSync: state === "in-sync" }),
    targetLength: s.targetLength,
    lastCopiedId: copied,
    lagSeconds: copied === null ? null : age / 1000,
    state,
    error: look.error,
    owner: options.owner,
    sourceNode: options.sourceNode,
    targetNode: options.targetNode,
  };
}

/** The row of a stream read on the source alone: the target is down. */
export function sourceSideRow(
  ref: StreamRef,
  s: StreamStats,
  options: RowPlaces & { startId: string },
): StatusRow {
  return {
    ...sourceFields(ref, s, { startId: options.startId, inSync: false }),
    targetLength: null,
    lastCopiedId: null,
    lagSeconds: null,
    state: "target-down",
    error: "",
    owner: options.owner,
    sourceNode: options.sourceNode,
    targetNode: options.targetNode,
  };
}

/** The row of a stream read on the target alone: the source is down. */
export function targetSideRow(
  ref: StreamRef,
  s: StreamStats,
  options: { sourceDbKnown: boolean; targetNode: string },
): StatusRow {
  return {
    ...names(ref),
    db: options.sourceDbKnown ? ref.db : null,
    sourceLength: null,
    targetLength: s.targetLength,
    lastSourceId: null,
    lastCopiedId: s.lastCopiedId,
    lag: null,
    lagSeconds: null,
    pending: null,
    trimmedBeforeCopy: null,
    state: s.targetWrongType ? "target-wrong-type" : "source-down",
    error: "",
    lastDeliveredId: null,
    owner: null,
    sourceNode: "",
    targetNode: options.targetNode,
  };
}

function names(ref: StreamRef): Pick<StatusRow, "db" | "key" | "keyHex" | "target" | "targetDb"> {
  return {
    db: ref.db,
    key: ref.keyLabel,
    keyHex: toHex(ref.key),
    target: ref.targetKeyLabel,
    targetDb: ref.targetDb,
  };
}

/** The fields read on the source. */
function sourceFields(
  ref: StreamRef,
  s: StreamStats,
  options: { startId: string; inSync: boolean },
): Pick<
  StatusRow,
  | "db"
  | "key"
  | "keyHex"
  | "target"
  | "targetDb"
  | "sourceLength"
  | "lastSourceId"
  | "lag"
  | "pending"
  | "trimmedBeforeCopy"
  | "lastDeliveredId"
> {
  // Without a group, the lag is what a group created now at STREAM_START_ID would deliver
  // (the whole stream for 0, at most the whole stream for an explicit ID, nothing for $).
  const lag = s.groupExists
    ? s.lag ?? 0
    : options.inSync || options.startId === "$"
    ? 0
    : s.sourceLength;
  return {
    ...names(ref),
    sourceLength: s.sourceLength,
    lastSourceId: s.lastSourceId,
    lag,
    pending: s.pending,
    trimmedBeforeCopy: s.groupExists ? s.trimmedBeforeCopy : 0,
    lastDeliveredId: s.lastDeliveredId,
  };
}
