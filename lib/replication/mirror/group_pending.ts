/**
 * Reads what mirroring pending entries needs of the groups of many streams
 * on one server (STREAM_GROUPS_SYNC_PENDING): each named group's pending
 * entries (`XPENDING key group - + n`, oldest first, at most
 * {@linkcode PEL_LIMIT}) and its consumers (`XINFO CONSUMERS`), one pipeline
 * per DB.
 *
 * @module
 */
import type { RedisClient } from "../../redis/mod.ts";
import { text } from "../../redis/mod.ts";
import { parseFlatMap } from "../../redis/mod.ts";
import type { GroupPosition, PendingEntry, StreamSide } from "./group_plan.ts";

/** Pending entries of a group read a pass at most: beyond, the group is held back instead. */
export const PEL_LIMIT = 1000;
const LATIN1 = new TextDecoder("latin1");

/** Fills in `pel`, `pelComplete`, `oldestPendingId` and `consumerNames` of the groups `of` names. */
export async function readPending(
  client: RedisClient,
  db: number,
  keys: readonly { key: Uint8Array }[],
  sides: readonly (StreamSide | Error)[],
  of: (group: string) => boolean,
): Promise<void> {
  const asks: { group: GroupPosition; pel: boolean; key: Uint8Array }[] = [];
  keys.forEach((k, i) => {
    const s = sides[i];
    if (s instanceof Error) return;
    for (const g of s.groups) {
      if (of(g.key)) asks.push({ group: g, pel: g.pending > 0, key: k.key });
    }
  });
  if (asks.length === 0) return;
  const commands = asks.flatMap((a) => [
    ["XINFO", "CONSUMERS", a.key, a.group.name],
    ...(a.pel ? [["XPENDING", a.key, a.group.name, "-", "+", String(PEL_LIMIT)]] : []),
  ]);
  const replies = await client.pipeline(db, commands, { buffers: true });
  let r = 0;
  for (const a of asks) {
    const consumers = replies[r++];
    const pending = a.pel ? replies[r++] : undefined;
    // A group destroyed meanwhile: nothing known of it, its position kept.
    if (consumers.status !== "fulfilled" || pending?.status === "rejected") continue;
    const names = new Map<string, Uint8Array>();
    for (const c of consumers.value as unknown[]) {
      const name = parseFlatMap(c).get("name");
      if (name instanceof Uint8Array) names.set(LATIN1.decode(name), name.slice());
    }
    const pel: PendingEntry[] = [];
    if (pending?.status === "fulfilled") {
      for (const e of pending.value as unknown[][]) {
        const consumer = (e[1] as Uint8Array).slice();
        pel.push({
          id: text(e[0]),
          consumer,
          consumerKey: LATIN1.decode(consumer),
          idleMs: Number(e[2]),
          deliveries: Number(e[3]),
        });
      }
    }
    a.group.consumerNames = names;
    a.group.pel = pel;
    a.group.pelComplete = pel.length < PEL_LIMIT;
    a.group.oldestPendingId = pel[0]?.id ?? null;
  }
}
