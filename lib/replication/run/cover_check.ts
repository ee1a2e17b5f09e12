/**
 * The watchdog's cheap look at the streams whose stats a discovery pass
 * does not read (beyond 1,000 streams): for each DB, one non-blocking
 * `XREAD COUNT 1 STREAMS k1 k2 ... floor1 floor2 ...` per 1,000 streams,
 * from each stream's copy (its target's top, or where its group stood when
 * it started here, whichever is higher). A stream it names holds entries
 * beyond its copy; the watchdog then judges it as it judges the stats
 * (behind with no progress for STREAM_STALL_TIMEOUT: stalled). It takes
 * 10,000 streams a pass at most, in turns (the source spends about 4 µs
 * per stream of it): so up to 11,000 streams every stream is looked at
 * every pass, and an entry that no wait woke for is found within
 * STREAM_STALL_TIMEOUT plus two or three passes; beyond, within
 * streams / 10,000 times as many passes (100,000 streams: about 5 minutes
 * with the defaults), for one command per 1,000 streams. Not on a cluster (its readers
 * sweep every stream anyway; a read over keys of several slots is
 * refused). A refused read (a key of another type among them) is left to
 * the sweeps and the stats, which find that key.
 *
 * @module
 */
import { compareIds, type RedisClient, wokenKeys } from "../../redis/mod.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { streamId } from "../stream/stream_ref.ts";

/** Streams one XREAD of the look covers. */
const KEYS_PER_READ = 1000;

/** Where a stream's copy stands, for the watchdog: entries above it are not copied yet. */
export function copyFloor(stream: ReplicatedStream): string {
  const start = stream.startDelivered;
  return start !== undefined && compareIds(start, stream.targetTop) > 0 ? start : stream.targetTop;
}

/**
 * Which of `streams` hold entries beyond their copy ({@linkcode copyFloor}),
 * by the source's XREAD; the streams of a read the source refused are in
 * neither list.
 */
export async function lookBeyondCopies(
  source: RedisClient,
  streams: readonly ReplicatedStream[],
): Promise<{ behind: ReplicatedStream[]; caughtUp: ReplicatedStream[] }> {
  const behind: ReplicatedStream[] = [];
  const caughtUp: ReplicatedStream[] = [];
  if (source.cluster || streams.length === 0) return { behind, caughtUp };
  const byDb = new Map<number, ReplicatedStream[]>();
  for (const s of streams) {
    const list = byDb.get(s.ref.db);
    if (list) list.push(s);
    else byDb.set(s.ref.db, [s]);
  }
  for (const [db, list] of byDb) {
    // One read at a time: the event loop (and the source) is not held by 10,000 keys at once.
    for (let i = 0; i < list.length; i += KEYS_PER_READ) {
      const part = list.slice(i, i + KEYS_PER_READ);
      const [r] = await source.pipeline(db, [[
        "XREAD",
        "COUNT",
        "1",
        "STREAMS",
        ...part.map((s) => s.ref.key),
        ...part.map(copyFloor),
      ]], { buffers: true });
      if (r.status !== "fulfilled") continue;
      const named = new Set(wokenKeys(r.value as never).map((key) => streamId(db, key)));
      for (const s of part) (named.has(s.ref.id) ? behind : caughtUp).push(s);
    }
  }
  return { behind, caughtUp };
}
