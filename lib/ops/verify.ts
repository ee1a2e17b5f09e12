/**
 * Stream comparison: walks a source stream and its target side by side in
 * windows of IDs (XRANGE with COUNT), in bounded memory whatever the
 * length, and reports missing, extra and changed entries by ID.
 *
 * @module
 */
import { type Config, discoverySettings } from "../config/mod.ts";
import { findStreams, type StreamRef } from "../replication/mod.ts";
import { RedisReplyError } from "../errors.ts";
import { counted } from "../log.ts";
import { connectOrThrow } from "./check.ts";
import {
  clientFor,
  compareIds,
  parseEntries,
  parseFlatMap,
  type RedisClient,
  type StreamEntry,
  text,
} from "../redis/mod.ts";

/** Options for {@linkcode compareStream}. */
export interface CompareOptions {
  /**
   * Entries per XRANGE window.
   * @default {1000}
   */
  windowSize?: number;
  /**
   * How many IDs of each kind of difference to keep for the report.
   * @default {10}
   */
  maxIds?: number;
  /**
   * The target is trimmed on purpose (TARGET_STREAM_MAXLEN): source entries
   * older than the target's first entry are counted as `trimmedOnTarget`,
   * not as missing.
   * @default {false}
   */
  targetTrimmed?: boolean;
  /**
   * Stops the walk early.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** The outcome of comparing one stream with its target. */
export interface StreamComparison {
  /** Whether both sides hold the same entries, IDs and bytes. */
  identical: boolean;
  /** Entries read on the source. */
  sourceEntries: number;
  /** Entries read on the target. */
  targetEntries: number;
  /** Count of source entries absent from the target. */
  missing: number;
  /** Count of target entries absent from the source. */
  extra: number;
  /** Count of entries present on both sides with different fields. */
  changed: number;
  /**
   * Target entries older than the source's first entry (or, for an empty
   * source, not above its last ID): history the source trimmed and the
   * target kept. Not a difference.
   */
  historyOnTarget: number;
  /** Source entries older than the target's first entry while the target is trimmed on purpose. */
  trimmedOnTarget: number;
  /** The first few IDs of each kind. */
  missingIds: string[];
  /** The first few extra IDs. */
  extraIds: string[];
  /** The first few changed IDs. */
  changedIds: string[];
  /** The first and last ID on each side ("" when empty). */
  sourceFirstId: string;
  /** Last source ID. */
  sourceLastId: string;
  /** First target ID. */
  targetFirstId: string;
  /** Last target ID. */
  targetLastId: string;
}

/** Reads a stream window by window, oldest first. */
class WindowCursor {
  #conn: RedisClient;
  #db: number;
  #key: Uint8Array;
  #size: number;
  #buffer: StreamEntry[] = [];
  #index = 0;
  #next = "-";
  #done = false;
  count = 0;
  first = "";
  last = "";

  constructor(conn: RedisClient, db: number, key: Uint8Array, size: number) {
    this.#conn = conn;
    this.#db = db;
    this.#key = key;
    this.#size = size;
  }

  async peek(): Promise<StreamEntry | undefined> {
    if (this.#index < this.#buffer.length) return this.#buffer[this.#index];
    if (this.#done) return undefined;
    const reply = await this.#conn.send(
      this.#db,
      ["XRANGE", this.#key, this.#next, "+", "COUNT", String(this.#size)],
      { buffers: true },
    );
    this.#buffer = parseEntries(reply).entries;
    this.#index = 0;
    if (this.#buffer.length < this.#size) this.#done = true;
    if (this.#buffer.length > 0) this.#next = `(${this.#buffer[this.#buffer.length - 1].id}`;
    return this.#buffer[0];
  }

  take(): void {
    const entry = this.#buffer[this.#index++];
    if (!entry) return;
    this.count++;
    if (this.first === "") this.first = entry.id;
    this.last = entry.id;
  }
}

/**
 * Compares `ref`'s source stream (on `connections.source`) with its target
 * stream (on `connections.target`), reading both in windows of `windowSize`
 * entries.
 */
export async function compareStream(
  connections: { source: RedisClient; target: RedisClient },
  ref: StreamRef,
  options: CompareOptions = {},
): Promise<StreamComparison> {
  const { source, target } = connections;
  const { windowSize = 1000, maxIds = 10, targetTrimmed = false, signal } = options;
  const [sourceFirst, sourceTop, targetFirst] = await Promise.all([
    firstId(source, ref.db, ref.key),
    lastGeneratedId(source, ref.db, ref.key),
    firstId(target, ref.targetDb, ref.targetKey),
  ]);
  const isHistory = (id: string) =>
    sourceFirst
      ? compareIds(id, sourceFirst) < 0
      : sourceTop !== "" && compareIds(id, sourceTop) <= 0;
  const isTrimmed = (id: string) =>
    targetTrimmed && targetFirst !== "" && compareIds(id, targetFirst) < 0;
  const src = new WindowCursor(source, ref.db, ref.key, windowSize);
  const dst = new WindowCursor(target, ref.targetDb, ref.targetKey, windowSize);
  const result: StreamComparison = {
    identical: true,
    sourceEntries: 0,
    targetEntries: 0,
    missing: 0,
    extra: 0,
    changed: 0,
    historyOnTarget: 0,
    trimmedOnTarget: 0,
    missingIds: [],
    extraIds: [],
    changedIds: [],
    sourceFirstId: "",
    sourceLastId: "",
    targetFirstId: "",
    targetLastId: "",
  };
  const note = (list: string[], id: string) => {
    if (list.length < maxIds) list.push(id);
  };
  while (!signal?.aborted) {
    const [a, b] = await Promise.all([src.peek(), dst.peek()]);
    if (!a && !b) break;
    const order = !a ? 1 : !b ? -1 : compareIds(a.id, b.id);
    if (order === 0) {
      if (!sameFields(a!.fields, b!.fields)) {
        result.changed++;
        note(result.changedIds, a!.id);
      }
      src.take();
      dst.take();
    } else if (order < 0) {
      if (isTrimmed(a!.id)) {
        result.trimmedOnTarget++;
      } else {
        result.missing++;
        note(result.missingIds, a!.id);
      }
      src.take();
    } else {
      if (isHistory(b!.id)) {
        result.historyOnTarget++;
      } else {
        result.extra++;
        note(result.extraIds, b!.id);
      }
      dst.take();
    }
  }
  result.sourceEntries = src.count;
  result.targetEntries = dst.count;
  result.sourceFirstId = src.first;
  result.sourceLastId = src.last;
  result.targetFirstId = dst.first;
  result.targetLastId = dst.last;
  result.identical = result.missing === 0 && result.extra === 0 && result.changed === 0;
  return result;
}

async function firstId(conn: RedisClient, db: number, key: Uint8Array): Promise<string> {
  const reply = await conn.send(db, ["XRANGE", key, "-", "+", "COUNT", "1"], { buffers: true });
  return parseEntries(reply).entries[0]?.id ?? "";
}

async function lastGeneratedId(
  conn: RedisClient,
  db: number,
  key: Uint8Array,
): Promise<string> {
  try {
    const info = parseFlatMap(await conn.send(db, ["XINFO", "STREAM", key], { buffers: true }));
    return text(info.get("last-generated-id") ?? "");
  } catch (error) {
    if (error instanceof RedisReplyError && /no such key/i.test(error.message)) return "";
    throw error;
  }
}

function sameFields(a: Uint8Array[], b: Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/** One stream's line of a `verify` report. */
export interface VerifiedStream extends Partial<StreamComparison> {
  /** Source DB. */
  db: number;
  /** Source key, escaped. */
  key: string;
  /** Target DB. */
  targetDb: number;
  /** Target key, escaped. */
  target: string;
  /** Whether both sides hold the same entries. */
  identical: boolean;
  /** Why the stream could not be compared (e.g. the target key is not a stream). */
  error?: string;
}

/** The result of `verify`. */
export interface VerifyReport {
  /** One entry per stream. */
  streams: VerifiedStream[];
  /** Totals. */
  summary: {
    streams: number;
    identical: number;
    different: number;
    /** Source entries compared. */
    entries: number;
    seconds: number;
    entriesPerSecond: number;
  };
}

/** Options for {@linkcode verifyAll}. */
export interface VerifyOptions {
  /**
   * Stops early.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Entries per XRANGE window.
   * @default {1000}
   */
  windowSize?: number;
  /**
   * Called after each stream (for progress).
   * @default {undefined}
   */
  onStream?: (stream: VerifiedStream) => void;
}

/** Compares every stream the configuration covers with its target. */
export async function verifyAll(
  config: Config,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const started = performance.now();
  const source = clientFor("source", config.source, { db: config.source.db });
  const target = clientFor("target", config.target, {
    db: config.target.db === "same" ? 0 : config.target.db,
  });
  const streams: VerifiedStream[] = [];
  try {
    await connectOrThrow(source, { role: "source", server: config.source });
    await connectOrThrow(target, { role: "target", server: config.target });
    const { streams: refs } = await findStreams(source, discoverySettings(config), {
      signal: options.signal,
    });
    for (const ref of refs) {
      if (options.signal?.aborted) break;
      const base = {
        db: ref.db,
        key: ref.keyLabel,
        targetDb: ref.targetDb,
        target: ref.targetKeyLabel,
      };
      let line: VerifiedStream;
      try {
        const c = await compareStream({ source, target }, ref, {
          windowSize: options.windowSize,
          targetTrimmed: config.targetStreamMaxlen > 0,
          signal: options.signal,
        });
        line = { ...base, ...c };
      } catch (error) {
        if (!(error instanceof RedisReplyError)) throw error;
        line = { ...base, identical: false, error: error.message };
      }
      streams.push(line);
      options.onStream?.(line);
    }
  } finally {
    source.close();
    target.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const entries = streams.reduce((n, s) => n + (s.sourceEntries ?? 0), 0);
  const identical = streams.filter((s) => s.identical).length;
  return {
    streams,
    summary: {
      streams: streams.length,
      identical,
      different: streams.length - identical,
      entries,
      seconds: Math.round(seconds * 1000) / 1000,
      entriesPerSecond: seconds > 0 ? Math.round(entries / seconds) : entries,
    },
  };
}

/** One human-readable line for a verified stream. */
export function formatVerifiedStream(s: VerifiedStream): string {
  const name = `db${s.db}:${s.key} -> db${s.targetDb}:${s.target}`;
  if (s.error) return `ERROR ${name}: ${s.error}`;
  const notes: string[] = [];
  if (s.historyOnTarget) notes.push(`${s.historyOnTarget} older entries kept on the target`);
  if (s.trimmedOnTarget) notes.push(`${s.trimmedOnTarget} trimmed on the target`);
  const extra = notes.length ? ` (${notes.join(", ")})` : "";
  if (s.identical) return `ok    ${name}: ${s.sourceEntries} entries identical${extra}`;
  const parts: string[] = [];
  const ids = (list: string[] | undefined, n: number) =>
    `${(list ?? []).slice(0, 5).join(", ")}${n > 5 ? ", ..." : ""}`;
  if (s.missing) parts.push(`${s.missing} missing on target (${ids(s.missingIds, s.missing)})`);
  if (s.extra) parts.push(`${s.extra} extra on target (${ids(s.extraIds, s.extra)})`);
  if (s.changed) parts.push(`${s.changed} changed (${ids(s.changedIds, s.changed)})`);
  return `DIFF  ${name}: ${
    parts.join("; ")
  }; source ${s.sourceEntries} entries, target ${s.targetEntries}${extra}`;
}

/** The summary line of `verify`. */
export function formatVerifySummary(report: VerifyReport): string {
  const { summary: s } = report;
  return `verify: ${
    counted(s.streams, "stream")
  }, ${s.identical} identical, ${s.different} different; ` +
    `${counted(s.entries, "entry", "entries")} compared in ${
      s.seconds.toFixed(1)
    } s (${s.entriesPerSecond} entries/s)`;
}
