/**
 * What mirroring the applications' consumer groups of one stream does on
 * the target, decided from what both servers said (pure): a group of the
 * source that matches the patterns exists on the target at the same
 * position, never past what the target holds; a mirrored group gone from
 * the source goes from the target. The tool's own group is never touched.
 *
 * A position is `last-delivered-id`, with `entries-read` when it can be
 * told exactly (Redis' lag of the group on the target is then right):
 * at the target's last entry it is the target's `entries-added`; below it,
 * when the target holds the source's whole tail, the target's
 * `entries-added` minus the group's lag on the source. Otherwise it is
 * left out and Redis estimates it, as it does after `XGROUP SETID`
 * without `ENTRIESREAD`.
 *
 * @module
 */
import { compareIds } from "../../redis/mod.ts";
import { globMatch } from "../../redis/mod.ts";

/** One consumer group as `XINFO GROUPS` shows it. */
export interface GroupPosition {
  /** The group's name, raw bytes. */
  readonly name: Uint8Array;
  /** The name as latin1 text of its bytes (one character a byte): for matching and maps. */
  readonly key: string;
  /** `last-delivered-id`. */
  readonly lastDeliveredId: string;
  /** `entries-read`; null when Redis does not know it. */
  readonly entriesRead: number | null;
  /** `lag`; null when Redis cannot tell it. */
  readonly lag: number | null;
  /** `pending`. */
  readonly pending: number;
  /** The group's oldest pending entry (`XPENDING`), when read and there is one. */
  oldestPendingId: string | null;
  /** With STREAM_GROUPS_SYNC_PENDING: its pending entries, oldest first (undefined: not read). */
  pel?: PendingEntry[];
  /** Whether `pel` holds all of them (at most `PEL_LIMIT` are read). */
  pelComplete?: boolean;
  /** With STREAM_GROUPS_SYNC_PENDING: its consumers, by latin1 name (undefined: not read). */
  consumerNames?: Map<string, Uint8Array>;
  /** `consumers`. */
  readonly consumers: number;
}

/** One pending entry of a group (`XPENDING` extended form). */
export interface PendingEntry {
  readonly id: string;
  /** The consumer it is pending to, raw bytes. */
  readonly consumer: Uint8Array;
  /** The consumer's name as latin1 text of its bytes. */
  readonly consumerKey: string;
  /** Milliseconds since it was last delivered. */
  readonly idleMs: number;
  /** Times it was delivered. */
  readonly deliveries: number;
}

/** One side of a stream, as `XINFO STREAM` and `XINFO GROUPS` showed it. */
export interface StreamSide {
  /** The stream exists (both commands answered). */
  readonly exists: boolean;
  /** `last-generated-id` ("0-0" when the stream does not exist). */
  readonly lastGeneratedId: string;
  /** The ID of the last entry ("0-0" when there is none). */
  readonly topId: string;
  /** `entries-added` (0 when the stream does not exist). */
  readonly entriesAdded: number;
  /** The stream's groups. */
  readonly groups: readonly GroupPosition[];
}

/** A change to make on the target. */
export type GroupChange =
  | {
    readonly kind: "create";
    readonly group: GroupPosition;
    readonly id: string;
    readonly entriesRead?: number;
    /** The target stream does not exist yet: made empty with the group (`MKSTREAM`). */
    readonly mkstream: boolean;
  }
  | {
    readonly kind: "setid";
    readonly group: GroupPosition;
    readonly id: string;
    readonly entriesRead?: number;
    /** Made only if every change of this group before it was made (its claims). */
    readonly afterClaims?: boolean;
  }
  | { readonly kind: "destroy"; readonly group: GroupPosition }
  | {
    readonly kind: "claim";
    readonly group: GroupPosition;
    readonly entry: PendingEntry;
  }
  | { readonly kind: "ack"; readonly group: GroupPosition; readonly ids: string[] }
  | {
    readonly kind: "createconsumer";
    readonly group: GroupPosition;
    readonly consumer: Uint8Array;
  }
  | { readonly kind: "delconsumer"; readonly group: GroupPosition; readonly consumer: Uint8Array };

/** How a mirrored group of the source stands on the target, once the changes are made. */
export interface GroupStanding {
  /** The source's group. */
  readonly group: GroupPosition;
  /** Where the target's group is (after the changes): the source's position, or the target's last entry. */
  readonly targetId: string;
  /** The source's position is past what the target holds: the target's group waits at its last entry. */
  readonly capped: boolean;
}

/** What to do on the target for one stream. */
export interface GroupPlan {
  /** The changes, in order. */
  readonly changes: GroupChange[];
  /** Every mirrored group of the source, and where it stands on the target. */
  readonly standings: GroupStanding[];
}

/** Options for {@linkcode planGroups}. */
export interface PlanGroupsOptions {
  /** STREAM_GROUPS_SYNC: glob patterns of the group names mirrored. */
  patterns: readonly string[];
  /** STREAM_CONSUMER_GROUP: never mirrored, on either side. */
  ownGroup: string;
  /**
   * STREAM_GROUPS_SYNC_PENDING: the pending entries and consumers follow too (where the
   * groups' `pel` and `consumerNames` were read).
   * @default {false}
   */
  pending?: boolean;
}

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");

/** A pattern or name as latin1 text of its UTF-8 bytes, as group names are matched. */
export function latin1Of(text: string): string {
  return LATIN1.decode(ENCODER.encode(text));
}

/** Whether group `key` (latin1 text of its bytes) is mirrored. */
export function isMirrored(key: string, options: PlanGroupsOptions): boolean {
  if (key === latin1Of(options.ownGroup)) return false;
  return options.patterns.some((p) => globMatch(latin1Of(p), key));
}

/**
 * The changes that make the target's mirrored groups of one stream stand
 * where the source's do. Nothing when the source stream is not there (it
 * is gone or not a stream: its groups are not known, none is destroyed).
 */
export function planGroups(
  source: StreamSide,
  target: StreamSide,
  options: PlanGroupsOptions,
): GroupPlan {
  const changes: GroupChange[] = [];
  const standings: GroupStanding[] = [];
  if (!source.exists) return { changes, standings };
  const onTarget = new Map(target.groups.map((g) => [g.key, g]));
  const mirrored = new Set<string>();
  // What the target holds: its last entry (no entry: nothing, "0-0").
  const top = target.exists ? target.topId : "0-0";
  for (const group of source.groups) {
    if (!isMirrored(group.key, options)) continue;
    mirrored.add(group.key);
    const mirrorPel = options.pending === true && group.pelComplete === true;
    const there = onTarget.get(group.key);
    const pend = mirrorPel ? planPending(group, there, top) : [];
    const claims = pend.flatMap((c) => (c.kind === "claim" ? [c.entry.id] : []));
    // Where it goes: with its pending entries mirrored, where it stands; else (or while some
    // are still to be claimed there) before the oldest of them.
    const final = mirrorPel ? group.lastDeliveredId : resumeId(group);
    const finalId = capAt(final, top);
    let id = mirrorPel && claims.length > 0 ? capAt(resumeId(group), top) : finalId;
    if (there && mirrorPel && claims.length > 0) {
      // Already there: held back only if an entry to claim is at or below where it stands
      // (passed by, should the claim fail), else left where it is until the claims are made.
      const at = there.lastDeliveredId;
      const exposed = claims.some((c) => compareIds(c, at) <= 0);
      id = exposed && compareIds(id, at) < 0 ? id : at;
    }
    // Past what the target holds: it waits at the target's last entry, for the copy; unless the
    // source holds nothing above that entry (deleted, trimmed): then nothing is to come.
    const capped = compareIds(final, top) > 0 && compareIds(source.topId, top) > 0;
    const entriesRead = exactEntriesRead(id, group, source, target);
    standings.push({ group, targetId: finalId, capped });
    if (!there) {
      changes.push({ kind: "create", group, id, entriesRead, mkstream: !target.exists });
    } else if (
      there.lastDeliveredId !== id ||
      (entriesRead !== undefined && there.entriesRead !== entriesRead)
    ) {
      changes.push({ kind: "setid", group, id, entriesRead });
    }
    changes.push(...pend);
    if (id !== finalId) {
      // Once every claim of this pass was made (the caller checks): where it stands.
      const read = exactEntriesRead(finalId, group, source, target);
      changes.push({ kind: "setid", group, id: finalId, entriesRead: read, afterClaims: true });
    }
  }
  for (const group of target.groups) {
    if (!mirrored.has(group.key) && isMirrored(group.key, options)) {
      changes.push({ kind: "destroy", group });
    }
  }
  return { changes, standings };
}

/**
 * The changes that make the target's copy of `group` (`there`, undefined
 * when it is made now) hold the same consumers and the same pending
 * entries, each under the same consumer, with its idle time and delivery
 * count: `XGROUP CREATECONSUMER`, `XCLAIM ... FORCE JUSTID` of the entries
 * the target holds (at or below `top`; the others are claimed once copied,
 * and meanwhile delivered as new), `XACK` of those no longer pending on the
 * source, `XGROUP DELCONSUMER` of consumers gone from the source.
 */
export function planPending(
  group: GroupPosition,
  there: GroupPosition | undefined,
  top: string,
): GroupChange[] {
  const changes: GroupChange[] = [];
  const names = group.consumerNames ?? new Map<string, Uint8Array>();
  const theirs = there?.consumerNames ?? new Map<string, Uint8Array>();
  for (const [key, consumer] of names) {
    if (!theirs.has(key)) changes.push({ kind: "createconsumer", group, consumer });
  }
  const onTarget = new Map((there?.pel ?? []).map((e) => [e.id, e]));
  const pending = new Set<string>();
  for (const entry of group.pel ?? []) {
    pending.add(entry.id);
    if (compareIds(entry.id, top) > 0) continue;
    const t = onTarget.get(entry.id);
    if (!t || t.consumerKey !== entry.consumerKey || t.deliveries !== entry.deliveries) {
      changes.push({ kind: "claim", group, entry });
    }
  }
  const acked = [...onTarget.keys()].filter((id) => !pending.has(id));
  if (acked.length > 0) changes.push({ kind: "ack", group, ids: acked });
  for (const [key, consumer] of theirs) {
    if (!names.has(key)) changes.push({ kind: "delconsumer", group, consumer });
  }
  return changes;
}

/** `id`, or `top` when `id` is above it. */
function capAt(id: string, top: string): string {
  return compareIds(id, top) > 0 ? top : id;
}

/**
 * Where a consumer of the group on the target goes on from: its last
 * delivered entry, or the one before its oldest pending entry when it has
 * one (that entry and those after it are delivered again there: an entry
 * delivered and not acknowledged on the source is not skipped).
 */
export function resumeId(group: GroupPosition): string {
  const pending = group.oldestPendingId;
  if (pending === null) return group.lastDeliveredId;
  const before = idBefore(pending);
  return compareIds(before, group.lastDeliveredId) < 0 ? before : group.lastDeliveredId;
}

const MAX_SEQ = "18446744073709551615";

/** The greatest stream ID below `id` ("0-0" for "0-0" and "0-1"). */
export function idBefore(id: string): string {
  const dash = id.indexOf("-");
  const ms = BigInt(dash < 0 ? id : id.slice(0, dash));
  const seq = BigInt(dash < 0 ? "0" : id.slice(dash + 1));
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-${MAX_SEQ}` : "0-0";
}

/**
 * The target group's `entries-read` at `id`, when it can be told exactly
 * (see the module doc); undefined otherwise.
 */
function exactEntriesRead(
  id: string,
  group: GroupPosition,
  source: StreamSide,
  target: StreamSide,
): number | undefined {
  if (!target.exists) return id === "0-0" ? 0 : undefined;
  // Entries deleted at the target's end: the counter of its last entry is not known.
  if (target.lastGeneratedId !== target.topId) return undefined;
  if (id === target.topId) return target.entriesAdded;
  // Below the target's end: the target holds what the source has after the group's position
  // only when it holds the source's last entry.
  if (id !== group.lastDeliveredId) return undefined; // held back before a pending entry
  if (group.lag === null || target.topId !== source.lastGeneratedId) return undefined;
  // And only when both counted the same entries (a target that began later, or that holds
  // entries the source lost, counts others).
  if (target.entriesAdded !== source.entriesAdded) return undefined;
  const read = target.entriesAdded - group.lag;
  return read >= 0 && read <= target.entriesAdded ? read : undefined;
}
