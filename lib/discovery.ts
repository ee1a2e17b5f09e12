/**
 * Stream discovery: `SCAN ... MATCH pattern TYPE stream` over each DB of
 * the search range, never KEYS, so a large keyspace is walked in small steps
 * without blocking the server.
 *
 * @module
 */
import { RedisReplyError } from "./errors.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { text } from "./_replies.ts";
import { toHex } from "./stream_ref.ts";

/** Options for {@linkcode discoverStreams}. */
export interface DiscoveryOptions {
  /** DBs to scan. */
  dbs: readonly number[];
  /** Redis glob patterns. */
  patterns: readonly string[];
  /**
   * Stops the scan early.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * SCAN's COUNT hint: keys looked at per call.
   * @default {1000}
   */
  scanCount?: number;
}

/** What one discovery pass found. */
export interface DiscoveryResult {
  /** Streams found, per DB, in key order of discovery. */
  streams: Array<{ db: number; key: Uint8Array }>;
  /** DBs of the range that the server does not have (SELECT refused). */
  missingDbs: number[];
}

const DB_OUT_OF_RANGE = /DB index is out of range|invalid DB index/i;

/** Finds the streams matching `patterns` in each DB of `dbs`. */
export async function discoverStreams(
  conn: RedisConnection,
  options: DiscoveryOptions,
): Promise<DiscoveryResult> {
  const { dbs, patterns, signal, scanCount = 1000 } = options;
  const streams: DiscoveryResult["streams"] = [];
  const missingDbs: number[] = [];
  for (const db of dbs) {
    const seen = new Set<string>();
    try {
      for (const pattern of patterns) {
        let cursor = "0";
        do {
          if (signal?.aborted) return { streams, missingDbs };
          const reply = await conn.send(
            db,
            ["SCAN", cursor, "MATCH", pattern, "COUNT", String(scanCount), "TYPE", "stream"],
            { buffers: true },
          ) as [Uint8Array, Uint8Array[]];
          cursor = text(reply[0]);
          for (const key of reply[1]) {
            const hex = toHex(key);
            if (seen.has(hex)) continue;
            seen.add(hex);
            streams.push({ db, key: new Uint8Array(key) });
          }
        } while (cursor !== "0");
      }
    } catch (error) {
      if (error instanceof RedisReplyError && DB_OUT_OF_RANGE.test(error.message)) {
        missingDbs.push(db);
        continue;
      }
      throw error;
    }
  }
  return { streams, missingDbs };
}

/** Whether `error` says the DB does not exist on the server. */
export function isMissingDbError(error: unknown): boolean {
  return error instanceof RedisReplyError && DB_OUT_OF_RANGE.test(error.message);
}
