/**
 * The rules of a Redis Cluster on either side: a cluster has DB 0 only, so
 * every key that names another DB is a problem naming that key; the
 * discovery range defaults to DB 0 alone. Internal to the config folder.
 *
 * @module
 */
import { type LoadContext, lookUp } from "./_load_context.ts";
import type { Config } from "./types.ts";

const DEFAULT_ORIGIN = " (default)";

/** A manual stream with the text of its `REDIS_STREAMS` entry. */
interface ManualEntry {
  text: string;
  db: number;
}

/**
 * Checks the DB keys against `*_REDIS_CLUSTER` (adding problems to `ctx`)
 * and gives a cluster source the discovery range `[0]` when
 * `REDIS_DB_SEARCH_RANGE` was left at its default.
 */
export function applyClusterRules(
  ctx: LoadContext,
  config: Config,
  streams: readonly ManualEntry[],
): void {
  if (config.source.cluster) {
    if (!ctx.invalid.has("SOURCE_REDIS_DB") && config.source.db !== 0) {
      ctx.problems.push(
        `SOURCE_REDIS_DB must be 0 when SOURCE_REDIS_CLUSTER is true (a cluster has DB 0 only): ` +
          `got ${JSON.stringify(String(config.source.db))}${lookUp(ctx, "SOURCE_REDIS_DB").origin}`,
      );
    }
    const range = lookUp(ctx, "REDIS_DB_SEARCH_RANGE");
    if (range.origin === DEFAULT_ORIGIN) {
      config.dbSearchRange = [0];
    } else if (
      !ctx.invalid.has("REDIS_DB_SEARCH_RANGE") &&
      (config.dbSearchRange.length !== 1 || config.dbSearchRange[0] !== 0)
    ) {
      ctx.problems.push(
        `REDIS_DB_SEARCH_RANGE must be "0" when SOURCE_REDIS_CLUSTER is true (a cluster has ` +
          `DB 0 only): got ${JSON.stringify(range.text)}${range.origin}`,
      );
    }
    for (const stream of streams) {
      if (stream.db === 0) continue;
      ctx.problems.push(
        `REDIS_STREAMS entry ${JSON.stringify(stream.text)} names DB ${stream.db}, but ` +
          `SOURCE_REDIS_CLUSTER is true and a cluster has DB 0 only: write it without "db${stream.db}:"`,
      );
    }
  }
  if (config.target.cluster) {
    const db = config.target.db;
    if (!ctx.invalid.has("TARGET_REDIS_DB") && db !== 0 && db !== "same") {
      ctx.problems.push(
        `TARGET_REDIS_DB must be 0 (or "same") when TARGET_REDIS_CLUSTER is true (a cluster has ` +
          `DB 0 only): got ${JSON.stringify(String(db))}${lookUp(ctx, "TARGET_REDIS_DB").origin}`,
      );
    }
    if (db === "same" && !config.source.cluster) {
      const searched = config.autoDiscovery ? config.dbSearchRange : [];
      const dbs = [...new Set([...searched, ...streams.map((s) => s.db)])].filter((n) => n !== 0);
      if (dbs.length > 0) {
        ctx.problems.push(
          `TARGET_REDIS_DB is "same", but TARGET_REDIS_CLUSTER is true (DB 0 only) and source ` +
            `DBs ${dbs.join(", ")} are replicated (REDIS_DB_SEARCH_RANGE, REDIS_STREAMS): set ` +
            `TARGET_REDIS_DB=0, or replicate DB 0 only`,
        );
      }
    }
  }
}
