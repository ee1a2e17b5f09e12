/**
 * The streams `status` shows while the source is down: those of
 * REDIS_STREAMS, and the target streams that discovery would have made
 * (`TARGET_STREAM_PREFIX` + a key that matches STREAM_DISCOVERY_PATTERNS,
 * in the DBs the configuration writes to), found by SCAN on the target.
 * The source DB of a discovered one is known only with
 * `TARGET_REDIS_DB=same` or a single DB to search.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { errorMessage, RedisReplyError } from "../errors.ts";
import type { RedisClient } from "../redis/mod.ts";
import { discoverEveryMaster, makeStreamRef, type StreamRef } from "../replication/mod.ts";

/** A stream found on the target alone. */
export interface TargetStream {
  /** Its ref; without `sourceDbKnown`, `db` is a stand-in (the target DB). */
  ref: StreamRef;
  /** Whether the source DB of the stream can be told. */
  sourceDbKnown: boolean;
}

/**
 * The streams of the configuration as the target shows them; `notes` says
 * what could not be looked at (a target user without SCAN: only the
 * streams of REDIS_STREAMS are shown).
 */
export async function findTargetStreams(
  target: RedisClient,
  config: Config,
): Promise<{ streams: TargetStream[]; notes: string[] }> {
  const prefix = config.targetStreamPrefix;
  const targetDb = config.target.db;
  const streams: TargetStream[] = config.streams.map((m) => ({
    ref: makeStreamRef(m.db, m.key, { targetDb, prefix, manual: true }),
    sourceDbKnown: true,
  }));
  const notes: string[] = [];
  if (!config.autoDiscovery) return { streams, notes };
  const dbs = targetDb === "same" ? config.dbSearchRange : [targetDb];
  const onlyDb = config.dbSearchRange.length === 1 ? config.dbSearchRange[0] : undefined;
  const prefixBytes = new TextEncoder().encode(prefix);
  let found;
  try {
    found = await discoverEveryMaster(target, {
      dbs,
      patterns: config.discoveryPatterns.map((p) => escapeGlob(prefix) + p),
    });
  } catch (error) {
    if (!(error instanceof RedisReplyError && error.code === "NOPERM")) throw error;
    notes.push(
      `The target did not let status list its streams (${
        errorMessage(error)
      }): only the streams of REDIS_STREAMS are shown`,
    );
    return { streams, notes };
  }
  const seen = new Set(streams.map((s) => s.ref.targetId));
  for (const s of found.streams) {
    const key = s.key.subarray(prefixBytes.length);
    const db = targetDb === "same" ? s.db : onlyDb;
    const ref = makeStreamRef(db ?? s.db, key, { targetDb: s.db, prefix });
    if (seen.has(ref.targetId)) continue;
    seen.add(ref.targetId);
    streams.push({ ref, sourceDbKnown: db !== undefined });
  }
  return { streams, notes };
}

/** `text` matched literally by a Redis glob (`*`, `?`, `[`, `]` and `\` escaped). */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
