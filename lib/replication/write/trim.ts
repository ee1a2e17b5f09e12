/**
 * MIRROR_SOURCE_TRIM: every discovery interval each target stream is
 * trimmed to its source's first ID (XTRIM MINID), so entries trimmed or
 * deleted at the head of the source leave the target too. One pipeline per
 * DB for all streams, from the stats of the last refresh.
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import { getLog } from "../../log.ts";
import { parseFlatMap, type RedisClient, type ServerPool, text } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import type { StreamStats } from "../stream/stats.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const log = getLog("orchestrator");

/** Options for {@linkcode mirrorTrims}. */
export interface MirrorTrimsOptions {
  /** Target connections. */
  target: ServerPool;
  /** The stats of the last refresh, by stream id. */
  stats: ReadonlyMap<string, StreamStats>;
  /**
   * Stops early.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Trims each target stream to its source's first ID. One stream's refusal does not stop the others. */
export async function mirrorTrims(
  source: RedisClient,
  streams: readonly ReplicatedStream[],
  options: MirrorTrimsOptions,
): Promise<void> {
  const { target, stats, signal } = options;
  const trims: Array<{ stream: ReplicatedStream; minId: string }> = [];
  const empty: ReplicatedStream[] = [];
  for (const s of streams) {
    const st = stats.get(s.ref.id);
    if (!st?.sourceIsStream || st.targetWrongType) continue;
    if (st.firstSourceId) trims.push({ stream: s, minId: st.firstSourceId });
    else empty.push(s);
  }
  // An empty source: everything up to its last ID was trimmed.
  for (const [db, list] of groupBy(empty, (s) => s.ref.db)) {
    if (signal?.aborted) return;
    const replies = await source.pipeline(db, list.map((s) => ["XINFO", "STREAM", s.ref.key]));
    list.forEach((s, i) => {
      const r = replies[i];
      if (r.status !== "fulfilled") return;
      const top = text(parseFlatMap(r.value).get("last-generated-id") ?? "0-0");
      if (top !== "0-0") trims.push({ stream: s, minId: nextId(top) });
    });
  }
  for (const [db, list] of groupBy(trims, (t) => t.stream.ref.targetDb)) {
    if (signal?.aborted) return;
    const replies = await target.client(db).pipeline(
      db,
      list.map(({ stream, minId }) => ["XTRIM", stream.ref.targetKey, "MINID", minId]),
    );
    list.forEach(({ stream, minId }, i) => {
      const r = replies[i];
      if (r.status === "rejected") {
        log.debug("Mirroring the trim of {stream} failed: {error}", {
          stream: stream.ref.label,
          error: errorMessage(r.reason),
        });
      } else if (Number(r.value) > 0) {
        log.debug("Trimmed {count} entries of {target} below {minId}, as on the source", {
          count: Number(r.value),
          target: stream.ref.targetLabel,
          minId,
        });
      }
    });
  }
}

/** The smallest stream ID above `id`. */
function nextId(id: string): string {
  const [ms, seq = "0"] = id.split("-");
  return `${ms}-${BigInt(seq) + 1n}`;
}
