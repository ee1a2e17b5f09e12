/**
 * Reads what {@linkcode planGroups} needs of many streams on one server:
 * `XINFO GROUPS` then `XINFO STREAM` of each, pipelined by DB. Group
 * names are kept as bytes.
 *
 * @module
 */
import { parseFlatMap, RANGE_REPLY, RawEntry, type RedisClient, text } from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import type { GroupPosition, StreamSide } from "./group_plan.ts";
import { readPending } from "./group_pending.ts";

/** Streams a pipeline carries at most. */
const CHUNK = 500;
const LATIN1 = new TextDecoder("latin1");

/** A stream to read: its DB and key on the server read. */
export interface SideKey {
  readonly db: number;
  readonly key: Uint8Array;
}

/** Options for {@linkcode readSides}. */
export interface ReadSidesOptions {
  /**
   * The groups (latin1 names) whose oldest pending entry is read (`XPENDING` summary) when
   * they have any.
   * @default {() => false}
   */
  pendingOf?: (group: string) => boolean;
  /**
   * The groups whose pending entries and consumers are read in full (`group_pending.ts`;
   * STREAM_GROUPS_SYNC_PENDING); for them, `pendingOf` is not needed.
   * @default {undefined}
   */
  pel?: (group: string) => boolean;
}

/**
 * The side of each of `keys` (in order): a stream that is not there is
 * `exists: false`; one that could not be read (another type, a refusal),
 * the error.
 */
export async function readSides(
  client: RedisClient,
  keys: readonly SideKey[],
  options: ReadSidesOptions = {},
): Promise<(StreamSide | Error)[]> {
  const out = new Map<SideKey, StreamSide | Error>();
  for (const [db, list] of chunksBy(keys, (k) => k.db, CHUNK)) {
    // Groups first (XINFO STREAM's entries are parsed as entries): a stream's info read after
    // its groups is as new as they are, or newer.
    const groups = await client.pipeline(db, list.map((k) => ["XINFO", "GROUPS", k.key]), {
      buffers: true,
    });
    const infos = await client.pipeline(db, list.map((k) => ["XINFO", "STREAM", k.key]), {
      buffers: true,
      parse: RANGE_REPLY,
    });
    const sides = list.map((_, i) => side(groups[i], infos[i]));
    const { pel, pendingOf } = options;
    if (pel) await readPending(client, db, list, sides, pel);
    else if (pendingOf) await readOldestPending(client, db, list, sides, pendingOf);
    list.forEach((k, i) => out.set(k, sides[i]));
  }
  return keys.map((k) => out.get(k)!);
}

/**
 * Fills in `oldestPendingId` of the groups of `sides` that `pendingOf` names and that have
 * entries pending (read after their `XINFO GROUPS`: an entry acked since is not pending, and
 * entries delivered since come after `last-delivered-id`). A group whose read fails (it was
 * destroyed meanwhile) keeps `oldestPendingId` null and its position.
 */
async function readOldestPending(
  client: RedisClient,
  db: number,
  list: readonly SideKey[],
  sides: (StreamSide | Error)[],
  pendingOf: (group: string) => boolean,
): Promise<void> {
  const asks: { group: { oldestPendingId: string | null }; command: (string | Uint8Array)[] }[] =
    [];
  list.forEach((k, i) => {
    const s = sides[i];
    if (s instanceof Error) return;
    for (const g of s.groups) {
      if (g.pending > 0 && pendingOf(g.key)) {
        asks.push({ group: g, command: ["XPENDING", k.key, g.name] });
      }
    }
  });
  if (asks.length === 0) return;
  const replies = await client.pipeline(db, asks.map((a) => a.command));
  replies.forEach((reply, i) => {
    if (reply.status !== "fulfilled" || !Array.isArray(reply.value)) return;
    const [count, smallest] = reply.value;
    if (Number(count) > 0 && smallest !== null) asks[i].group.oldestPendingId = text(smallest);
  });
}

/** The side of a stream from its `XINFO GROUPS` and `XINFO STREAM` outcomes. */
function side(
  groups: PromiseSettledResult<unknown>,
  info: PromiseSettledResult<unknown>,
): StreamSide | Error {
  if (groups.status !== "fulfilled" || info.status !== "fulfilled") {
    const reason = groups.status === "rejected"
      ? groups.reason
      : (info as PromiseRejectedResult).reason;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    // No such key is a stream that is not there; anything else is not known.
    if (!/no such key/i.test(error.message)) return error;
    return { exists: false, lastGeneratedId: "0-0", topId: "0-0", entriesAdded: 0, groups: [] };
  }
  const stream = parseFlatMap(info.value);
  const last = stream.get("last-entry");
  return {
    exists: true,
    lastGeneratedId: text(stream.get("last-generated-id") ?? "0-0"),
    topId: last instanceof RawEntry ? last.idText() : "0-0",
    entriesAdded: Number(stream.get("entries-added") ?? 0),
    groups: Array.isArray(groups.value) ? groups.value.map(groupPosition) : [],
  };
}

function groupPosition(reply: unknown): GroupPosition {
  const g = parseFlatMap(reply);
  const rawName = g.get("name");
  const name = rawName instanceof Uint8Array
    ? rawName.slice()
    : new TextEncoder().encode(String(rawName));
  return {
    name,
    key: LATIN1.decode(name),
    lastDeliveredId: text(g.get("last-delivered-id") ?? "0-0"),
    entriesRead: numberOrNull(g.get("entries-read")),
    lag: numberOrNull(g.get("lag")),
    pending: Number(g.get("pending") ?? 0),
    oldestPendingId: null,
    consumers: Number(g.get("consumers") ?? 0),
  };
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
