/**
 * What discovery finds now, for `check`: the streams that a run would copy,
 * per source DB, or a WARNING that names the patterns, DBs and streams
 * looked for when there is none (the first thing to check when nothing is
 * copied).
 *
 * @module
 */
import { type Config, discoverySettings } from "../config/mod.ts";
import { clientFor } from "../redis/mod.ts";
import { findStreams, noStreamsFound } from "../replication/mod.ts";
import { connectOrThrow } from "./check.ts";

/** The streams found, per source DB. */
export interface StreamSurvey {
  /** `[db, streams]`, by DB number. */
  byDb: Array<[number, number]>;
  /** Every stream found. */
  total: number;
  /** When none was found: what was looked for (a WARNING). */
  none?: string;
}

/** Options for {@linkcode surveyStreams}. */
export interface SurveyOptions {
  /**
   * Stops the scan.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Finds the streams a run would copy now (one discovery pass, unpaced). */
export async function surveyStreams(
  config: Config,
  options: SurveyOptions = {},
): Promise<StreamSurvey> {
  const source = clientFor("source", config.source, { db: config.source.db });
  try {
    await connectOrThrow(source, { role: "source", server: config.source });
    const settings = discoverySettings(config);
    const { streams } = await findStreams(source, settings, { signal: options.signal });
    const counts = new Map<number, number>();
    for (const ref of streams) counts.set(ref.db, (counts.get(ref.db) ?? 0) + 1);
    const byDb = [...counts].sort((a, b) => a[0] - b[0]);
    return {
      byDb,
      total: streams.length,
      ...(streams.length === 0 ? { none: noStreamsFound(settings) } : {}),
    };
  } finally {
    source.close();
  }
}

/** `check`'s line: `Streams to copy: 12 (db0: 10, db3: 2)`, or `none`. */
export function surveyLine(survey: StreamSurvey): string {
  if (survey.total === 0) return "Streams to copy: none found";
  const each = survey.byDb.map(([db, n]) => `db${db}: ${n}`).join(", ");
  return `Streams to copy: ${survey.total} (${each})`;
}
