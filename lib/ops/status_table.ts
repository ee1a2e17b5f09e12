/**
 * The human-readable table of `status`: one row per stream (`?` for what
 * cannot be told, a side that is down), then why each stream in error is,
 * which server is down and why, and a summary.
 *
 * @module
 */
import { counted } from "../log.ts";
import type { StatusReport } from "./status.ts";

const HEADER = [
  "SOURCE",
  "TARGET",
  "SRC LEN",
  "TGT LEN",
  "LAST SOURCE ID",
  "LAST COPIED ID",
  "LAG",
  "LAG S",
  "PENDING",
  "TRIMMED",
  "STATE",
  "OWNER",
];
/** The columns aligned to the right. */
const NUMERIC = new Set([2, 3, 6, 7, 8, 9]);

/** The human-readable table of `status`. */
export function formatStatusTable(report: StatusReport): string {
  const rows = report.streams;
  // A cluster's node after the key: `db0:key@host:port`.
  const at = (node: string) => node === "" ? "" : `@${node}`;
  const cell = (value: number | string | null, empty = "") =>
    value === null ? "?" : value === "" ? empty : String(value);
  const body = rows.map((r) => [
    `db${r.db ?? "?"}:${r.key}${at(r.sourceNode)}`,
    `db${r.targetDb}:${r.target}${at(r.targetNode)}`,
    cell(r.sourceLength),
    cell(r.targetLength),
    cell(r.lastSourceId, "-"),
    cell(r.lastCopiedId, "-"),
    cell(r.lag),
    r.lagSeconds === null ? "?" : r.lagSeconds.toFixed(1),
    cell(r.pending),
    cell(r.trimmedBeforeCopy),
    r.state,
    cell(r.owner, "-"),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => NUMERIC.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ")
      .trimEnd();
  const errors = rows.filter((r) => r.state === "error");
  const said = errors.map((r) => `db${r.db}:${r.key}: ${r.error}`);
  const down = (["source", "target"] as const).filter((side) => !report.servers[side].up).map(
    (side) => {
      const server = report.servers[side];
      const name = side === "source" ? "Source" : "Target";
      return `${name} "${server.address}" is down: ${server.error}. Its columns show "?".`;
    },
  );
  const behind = rows.filter((r) => r.state !== "in-sync").length;
  const inError = errors.length > 0 ? ` (${errors.length} in error)` : "";
  const summary = rows.length === 0
    ? "No streams found (check REDIS_STREAMS, STREAM_DISCOVERY_PATTERNS and REDIS_DB_SEARCH_RANGE)."
    : `${counted(rows.length, "stream")}, ${
      rows.length - behind
    } in sync, ${behind} not in sync${inError}.`;
  const after = [...said, ...report.notes, ...down];
  return [
    line(HEADER),
    ...body.map(line),
    "",
    ...after,
    ...(after.length ? [""] : []),
    summary,
    ...(report.groups ? ["", ...groupsTable(report.groups)] : []),
  ].join("\n");
}

const GROUP_HEADER = [
  "SOURCE",
  "GROUP",
  "SOURCE ID",
  "SRC LAG",
  "PENDING",
  "TARGET ID",
  "TGT LAG",
  "STATE",
];
const GROUP_NUMERIC = new Set([3, 4, 6]);

/** The mirrored consumer groups (STREAM_GROUPS_SYNC): a table and a summary. */
function groupsTable(groups: NonNullable<StatusReport["groups"]>): string[] {
  const cell = (value: number | string | null) => (value === null ? "-" : String(value));
  const body = groups.map((g) => [
    g.stream,
    g.group,
    cell(g.sourceId),
    cell(g.sourceLag),
    cell(g.pending),
    cell(g.targetId),
    cell(g.targetLag),
    g.state,
  ]);
  const widths = GROUP_HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => GROUP_NUMERIC.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))
      .join("  ").trimEnd();
  const inStep = groups.filter((g) => g.state === "in-step").length;
  const summary = groups.length === 0
    ? "No consumer group matches STREAM_GROUPS_SYNC."
    : `${counted(groups.length, "mirrored consumer group")}, ${inStep} in step, ${
      groups.length - inStep
    } not (the next passes move them; "waiting-for-copy" and "held-by-pending" are where they should be).`;
  return [line(GROUP_HEADER), ...body.map(line), "", summary];
}
