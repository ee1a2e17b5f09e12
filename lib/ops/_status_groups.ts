/**
 * The consumer groups part of `status` (with STREAM_GROUPS_SYNC): each
 * mirrored group of each stream, where it stands on the source and on the
 * target, and whether the target's is where the mirror puts it
 * (`planGroups`, the rule the running mirror follows).
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { escapeBytes } from "../log.ts";
import type { RedisClient } from "../redis/mod.ts";
import {
  type GroupPosition,
  isMirrored,
  planGroups,
  readSides,
  resumeId,
  type StreamRef,
} from "../replication/mod.ts";

/** One mirrored group of one stream. */
export interface GroupStatusRow {
  /** The source stream, `db0:key`. */
  stream: string;
  /** The group's name (bytes outside printable ASCII escaped as \xNN). */
  group: string;
  /** `last-delivered-id` on the source (null: the group is not on the source). */
  sourceId: string | null;
  /** Its lag on the source (null: Redis cannot tell, or no group). */
  sourceLag: number | null;
  /** Entries pending on the source. */
  pending: number | null;
  /** `last-delivered-id` on the target (null: no such group there). */
  targetId: string | null;
  /** Its lag on the target. */
  targetLag: number | null;
  /**
   * `in-step` (where the source's is), `waiting-for-copy` (at the target's last entry: the
   * source's is past what was copied), `held-by-pending` (before the source's oldest pending
   * entry), `behind` (not moved yet: the next pass moves it), `pending-behind` (with
   * STREAM_GROUPS_SYNC_PENDING: its consumers or pending entries not yet as on the source),
   * `missing` (not made yet),
   * `extra` (gone from the source: the next pass destroys it).
   */
  state: string;
}

/** The mirrored groups of `refs` on both servers; streams that cannot be read are left out. */
export async function groupStatusRows(
  connections: { source: RedisClient; target: RedisClient },
  refs: readonly StreamRef[],
  config: Config,
): Promise<GroupStatusRow[]> {
  const options = {
    patterns: config.groupsSync,
    ownGroup: config.consumerGroup,
    pending: config.groupsSyncPending,
  };
  const mirrored = (group: string) => isMirrored(group, options);
  const pel = options.pending ? mirrored : undefined;
  const sources = await readSides(connections.source, refs.map((r) => ({ db: r.db, key: r.key })), {
    pendingOf: mirrored,
    pel,
  });
  const targets = await readSides(
    connections.target,
    refs.map((r) => ({ db: r.targetDb, key: r.targetKey })),
    { pel },
  );
  const rows: GroupStatusRow[] = [];
  refs.forEach((ref, i) => {
    const [s, t] = [sources[i], targets[i]];
    if (s instanceof Error || t instanceof Error) return;
    const there = new Map(t.groups.map((g) => [g.key, g]));
    const plan = planGroups(s, t, options);
    const pelChanges = new Set(
      plan.changes.filter((c) => c.kind !== "create" && c.kind !== "setid" && c.kind !== "destroy")
        .map((c) => c.group.key),
    );
    for (const st of plan.standings) {
      const on = there.get(st.group.key);
      const state = !on
        ? "missing"
        : on.lastDeliveredId !== st.targetId
        ? "behind"
        : st.capped
        ? "waiting-for-copy"
        : st.targetId !== st.group.lastDeliveredId && resumeId(st.group) === st.targetId
        ? "held-by-pending"
        : pelChanges.has(st.group.key)
        ? "pending-behind"
        : "in-step";
      rows.push(row(ref, st.group, on, state));
    }
    for (const change of plan.changes) {
      if (change.kind === "destroy") {
        rows.push({
          ...row(ref, change.group, change.group, "extra"),
          sourceId: null,
          sourceLag: null,
          pending: null,
        });
      }
    }
  });
  return rows;
}

function row(
  ref: StreamRef,
  source: GroupPosition,
  target: GroupPosition | undefined,
  state: string,
): GroupStatusRow {
  return {
    stream: ref.label,
    group: escapeBytes(source.name),
    sourceId: source.lastDeliveredId,
    sourceLag: source.lag,
    pending: source.pending,
    targetId: target?.lastDeliveredId ?? null,
    targetLag: target?.lag ?? null,
    state,
  };
}
