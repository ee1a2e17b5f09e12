/**
 * Stream discovery: `SCAN ... MATCH pattern TYPE stream` over each DB of
 * the search range, never KEYS, so a large keyspace is walked in small steps
 * without blocking the server.
 *
 * @module
 */
import type { DiscoverySettings } from "../../config/mod.ts";
import { RedisReplyError } from "../../errors.ts";
import { PARSE_BYTE_STRINGS, type RedisClient, text } from "../../redis/mod.ts";
import {
  bytesOfByteString,
  makeStreamRef,
  streamId,
  streamIdOfByteString,
  type StreamRef,
} from "../stream/stream_ref.ts";
import { sleep } from "../../backoff.ts";
import { getLog } from "../../log.ts";

const log = getLog("orchestrator");
const ENCODER = new TextEncoder();

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
   * Keys (by stream id) to leave out of the result: streams replicating
   * already, so that a pass over ten thousand known streams keeps nothing.
   * @default {() => false}
   */
  skip?: (id: string) => boolean;
  /**
   * Milliseconds between two SCAN calls of a pass (a bounded rate on a large
   * keyspace; the run's passes use {@linkcode RUN_SCAN_PACE_MS}).
   * @default {0}
   */
  paceMs?: number;
}

/** What one discovery pass found. */
export interface DiscoveryResult {
  /** Streams found, per DB, in key order of discovery, with their ids (`db:hex`). */
  streams: Array<{ db: number; key: Uint8Array; id: string }>;
  /** DBs of the range that the server does not have (SELECT refused). */
  missingDbs: number[];
  /** SCAN calls the pass made. */
  calls: number;
}

const DB_OUT_OF_RANGE = /DB index is out of range|invalid DB index/i;
/** SCAN's COUNT hint: keys looked at per call. */
const SCAN_COUNT = 1000;
/**
 * The run's discovery passes walk a large keyspace at a bounded share of
 * the source's time: after each SCAN call of a walk, a pause of 9 times
 * what the call took (its round trip: at most 10% of the source's time),
 * and at most this many milliseconds (20 calls a second on a slow or far
 * source). A DB walked in one call is not paced.
 */
export const RUN_SCAN_PACE_MS = 50;
/** The pause after a SCAN call of a paced walk, in times the call took. */
const PACE_FACTOR = 9;
/**
 * Finds the streams matching `patterns` in each DB of `dbs`: one walk per
 * pattern, matched by the server (`MATCH`: Redis's own glob rules, which no
 * copy of them here could be trusted to follow byte for byte).
 */
export async function discoverStreams(
  conn: RedisClient,
  options: DiscoveryOptions,
): Promise<DiscoveryResult> {
  const { dbs, patterns, signal, skip = () => false, paceMs = 0 } = options;
  const streams: DiscoveryResult["streams"] = [];
  const missingDbs: number[] = [];
  let calls = 0;
  for (const db of dbs) {
    const seen = new Set<string>();
    try {
      for (const pattern of patterns) {
        let cursor = "0";
        let tookMs = 0;
        do {
          if (signal?.aborted) return { streams, missingDbs, calls };
          // Paced within a walk of a large keyspace (not between small DBs and patterns).
          if (paceMs > 0 && cursor !== "0") {
            await sleep(Math.min(paceMs, PACE_FACTOR * tookMs), signal);
          }
          calls++;
          const sent = performance.now();
          // Keys as strings of one character per byte, not views: 100,000 keys a pass.
          const reply = await conn.send(
            db,
            ["SCAN", cursor, "MATCH", pattern, "COUNT", String(SCAN_COUNT), "TYPE", "stream"],
            { buffers: true, parse: PARSE_BYTE_STRINGS },
          ) as [string, string[]];
          tookMs = performance.now() - sent;
          cursor = reply[0];
          for (const key of reply[1]) {
            const id = streamIdOfByteString(db, key);
            // A walk may return a key twice (the server's table grew or shrank meanwhile), and
            // two patterns the same key; only new streams are remembered (not 100,000 known).
            if (skip(id) || seen.has(id)) continue;
            seen.add(id);
            streams.push({ db, key: bytesOfByteString(key), id });
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
  return { streams, missingDbs, calls };
}

/**
 * Finds the streams matching `patterns` on every master of `client` (one
 * server: itself; a Redis Cluster: each master, DB 0, the layout read
 * again first, so that a pass after a change of layout scans the new
 * masters), each once: a key seen on two masters (its slot migrating
 * between them) is one stream.
 */
export async function discoverEveryMaster(
  client: RedisClient,
  options: DiscoveryOptions,
): Promise<DiscoveryResult> {
  const masters = await client.masters();
  if (masters.length === 1) return await discoverStreams(masters[0], options);
  const seen = new Set<string>();
  const streams: DiscoveryResult["streams"] = [];
  const skip = options.skip ?? (() => false);
  let calls = 0;
  for (const master of masters) {
    const found = await discoverStreams(master, {
      ...options,
      dbs: [0],
      skip: (id) => seen.has(id) || skip(id),
    });
    calls += found.calls;
    for (const s of found.streams) {
      seen.add(s.id);
      streams.push(s);
    }
  }
  return { streams, missingDbs: [], calls };
}

/** Whether `error` says the DB does not exist on the server. */
export function isMissingDbError(error: unknown): boolean {
  return error instanceof RedisReplyError && DB_OUT_OF_RANGE.test(error.message);
}

/** Something worth telling the operator about a stream or DB, once. */
export interface StreamNotice {
  /** What it is about (a stream id or `db:N`), for logging it once. */
  subject: string;
  /** Which variant of the notice; a new variant is logged again. */
  variant: string;
  /** The sentence to log. */
  message: string;
  /** Its level. */
  level: "info" | "warning";
}

/** Options for {@linkcode findStreams}. */
export interface FindStreamsOptions {
  /**
   * Stops the scan early.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Manual streams for which this returns true are not checked again.
   * @default {() => false}
   */
  skip?: (ref: StreamRef) => boolean;
  /**
   * The ref of a stream known already, by id, reused instead of a new one.
   * @default {() => undefined}
   */
  known?: (id: string) => StreamRef | undefined;
  /**
   * Discovered streams (by id) to leave out: those replicating already.
   * @default {() => false}
   */
  skipDiscovered?: (id: string) => boolean;
  /**
   * See {@linkcode DiscoveryOptions.paceMs}; with it, each pass is logged
   * at DEBUG, and at INFO when it took longer than `settings.everyMs`.
   * @default {0}
   */
  paceMs?: number;
}

/**
 * Every stream to replicate: the manual ones (REDIS_STREAMS) that exist
 * and are streams, first, then the discovered ones, each with where it goes
 * on the target. Collisions are not resolved here.
 */
export async function findStreams(
  conn: RedisClient,
  settings: DiscoverySettings,
  options: FindStreamsOptions = {},
): Promise<{ streams: StreamRef[]; notices: StreamNotice[] }> {
  const {
    signal,
    skip = () => false,
    known = () => undefined,
    skipDiscovered = () => false,
    paceMs = 0,
  } = options;
  const refOptions = { targetDb: settings.targetDb, prefix: settings.prefix };
  const streams: StreamRef[] = [];
  const notices: StreamNotice[] = [];
  const named = settings.heartbeat ? [...settings.manual, settings.heartbeat] : settings.manual;
  for (const manual of named) {
    const ref = makeStreamRef(manual.db, manual.key, { ...refOptions, manual: true });
    if (skip(ref)) {
      streams.push(ref);
      continue;
    }
    let type: string;
    try {
      type = text(await conn.send(ref.db, ["TYPE", ref.key]));
    } catch (error) {
      if (!isMissingDbError(error)) throw error;
      notices.push({
        subject: `db:${ref.db}`,
        variant: "",
        message: `Source has no DB ${ref.db} (stream ${ref.label} is skipped)`,
        level: "warning",
      });
      continue;
    }
    if (type === "stream") {
      streams.push(ref);
    } else if (type === "none") {
      notices.push({
        subject: ref.id,
        variant: "none",
        message: `Stream ${ref.label} does not exist yet; it is copied once it does`,
        level: "info",
      });
    } else {
      notices.push({
        subject: ref.id,
        variant: type,
        message: `Key ${ref.label} is a ${type}, not a stream; skipped`,
        level: "warning",
      });
    }
  }
  if (settings.auto) {
    const started = Date.now();
    const found = await discoverEveryMaster(conn, {
      dbs: settings.dbs,
      patterns: settings.patterns,
      signal,
      skip: skipDiscovered,
      paceMs,
    });
    if (paceMs > 0) sayPass(found.calls, Date.now() - started, settings.everyMs);
    for (const db of found.missingDbs) {
      notices.push({
        subject: `db:${db}`,
        variant: "",
        message: `Source has no DB ${db} (REDIS_DB_SEARCH_RANGE); it is not scanned`,
        level: "warning",
      });
    }
    const seen = new Set(streams.map((r) => r.id));
    for (const s of found.streams) {
      const id = s.id;
      if (seen.has(id)) continue;
      // A stream known already is not named again (ten thousand refs a pass are garbage).
      streams.push(known(id) ?? makeStreamRef(s.db, s.key, refOptions));
    }
  }
  return { streams, notices };
}

/** One line per paced pass: at INFO when it took longer than the interval between passes. */
function sayPass(calls: number, ms: number, everyMs: number): void {
  const slow = ms > everyMs;
  log[slow ? "info" : "debug"](
    slow
      ? "A discovery pass took {seconds} s ({calls} SCAN calls, paced to at most a tenth of the source's time), longer than STREAM_DISCOVERY_INTERVAL: new streams are found up to that late"
      : "Discovery pass: {calls} SCAN calls in {seconds} s",
    { calls, seconds: (ms / 1000).toFixed(1) },
  );
}

/** Options of {@linkcode nothingToCopy}. */
export interface NothingToCopyOptions {
  /** What finding the streams needs (the heartbeat stream's name). */
  settings: DiscoverySettings;
  /** The streams running here. */
  table: { readonly runningCount: number; running(id: string): unknown };
}

/**
 * Whether there is no stream to copy: a pass `found` none and none runs
 * here, the heartbeat stream aside (copying heartbeats alone is copying
 * nothing the operator asked for).
 */
export function nothingToCopy(found: readonly StreamRef[], options: NothingToCopyOptions): boolean {
  const { settings, table } = options;
  const beat = settings.heartbeat &&
    streamId(settings.heartbeat.db, ENCODER.encode(settings.heartbeat.key));
  if (found.some((ref) => ref.id !== beat)) return false;
  return table.runningCount - (beat !== undefined && table.running(beat) ? 1 : 0) === 0;
}

/**
 * What to tell an operator when discovery finds no stream at all: which
 * patterns, DBs and named streams were looked for (nothing is copied until
 * one of them exists).
 */
export function noStreamsFound(settings: DiscoverySettings): string {
  const looked: string[] = [];
  if (settings.auto) {
    looked.push(
      `no stream matches STREAM_DISCOVERY_PATTERNS "${settings.patterns.join(",")}" in DBs ${
        dbRanges(settings.dbs)
      } (REDIS_DB_SEARCH_RANGE)`,
    );
  } else looked.push("STREAM_AUTO_DISCOVERY is false");
  if (settings.manual.length > 0) {
    looked.push(`none of the ${settings.manual.length} streams of REDIS_STREAMS exists`);
  } else looked.push("REDIS_STREAMS is empty");
  return `No streams to copy: ${looked.join(", and ")}; nothing is copied until one exists`;
}

/** `[0,1,2,3,7]` as `0-3,7`. */
function dbRanges(dbs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < dbs.length; i++) {
    let j = i;
    while (j + 1 < dbs.length && dbs[j + 1] === dbs[j] + 1) j++;
    parts.push(j > i ? `${dbs[i]}-${dbs[j]}` : String(dbs[i]));
    i = j;
  }
  return parts.join(",");
}
