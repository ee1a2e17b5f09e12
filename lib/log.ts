/**
 * Logging for the whole service, on top of LogTape.
 *
 * One sink renders each record either with a Python `logging`-style format
 * string (the original service was written in Python, and LOG_FORMAT keeps
 * its placeholders) or as one JSON object per line, then masks every
 * configured secret before the line is written.
 *
 * @example
 * ```ts
 * import { flushLogging, getLog, setupLogging } from "./log.ts";
 * await setupLogging({ level: "DEBUG", secrets: ["hunter2"] });
 * const log = getLog("replicator");
 * log.info("Copied {count} entries from {stream}", { count: 5, stream: "db0:orders" });
 * await flushLogging();
 * ```
 *
 * @module
 */
import { compareLogLevel, configure, dispose, getLogger } from "@logtape/logtape";
import type { Logger, LogLevel, LogRecord, Sink } from "@logtape/logtape";
import { formatPythonStyle, type LogLevelName } from "./log_format.ts";
import { isSecretKey, makeRedact, type Redact, REDACTED } from "./_redact.ts";
import { STDERR_LINES, type TerminalLines } from "./terminal.ts";

export { formatPythonStyle } from "./log_format.ts";
export type { PythonStyleRecord } from "./log_format.ts";
export type { Logger } from "@logtape/logtape";
export type { LogLevelName } from "./log_format.ts";
/** The category every logger of the service lives under. */
export const ROOT_CATEGORY = "redis-stream-sync";
/** The format used when none is given: the Python seed's default. */
export const DEFAULT_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s";
/** What every secret is replaced with. */
/** The lowest LogTape level that each service level lets through. */
const LEVEL_TO_LOGTAPE: Readonly<Record<LogLevelName, LogLevel>> = {
  DEBUG: "trace",
  INFO: "info",
  WARNING: "warning",
  ERROR: "error",
  CRITICAL: "fatal",
};
/** The service level name shown for each LogTape level. */
const LOGTAPE_TO_LEVEL: Readonly<Record<LogLevel, LogLevelName>> = {
  trace: "DEBUG",
  debug: "DEBUG",
  info: "INFO",
  warning: "WARNING",
  error: "ERROR",
  fatal: "CRITICAL",
};
/** LogTape's own diagnostics logger. */
const META_CATEGORY = ["logtape", "meta"];
const TEXT_ENCODER = new TextEncoder();
const LATIN1_DECODER = new TextDecoder("latin1");
/** Options of {@linkcode setupLogging}. */
export interface SetupLoggingOptions {
  /**
   * The lowest level written; records below it are dropped.
   * @default {"INFO"}
   */
  level?: LogLevelName;
  /**
   * A Python `logging`-style format string (see {@linkcode formatPythonStyle}),
   * or `"json"` (any case) for one JSON object per line. An empty string
   * means the default.
   * @default {"%(asctime)s - %(name)s - %(levelname)s - %(message)s"}
   */
  format?: string;
  /**
   * Secrets (passwords) never written: a value put into a message or a
   * property that equals one becomes `***`, and so does a secret of 8 or
   * more characters inside a longer value (see `_redact.ts`); templates,
   * logger names and other words are never changed. Empty strings are
   * ignored.
   * @default {[]}
   */
  secrets?: readonly string[];
  /**
   * Receives each full line, including its trailing `"\n"`.
   * @default {`terminal`'s log lines}
   */
  write?: (line: string) => void;
  /**
   * Where lines go without `write`: above the status line it may show.
   * @default {STDERR_LINES: standard error, synchronously}
   */
  terminal?: TerminalLines;
}
/**
 * Configures LogTape for the service: one sink, under the category
 * `"redis-stream-sync"`, at `level`; LogTape's own meta logger only reports
 * WARNING and above (and never below `level`). Replaces any earlier
 * configuration, so it may be called again (e.g. by tests).
 *
 * @example
 * ```ts
 * import { setupLogging } from "./log.ts";
 * await setupLogging({ level: "DEBUG", format: "json" });
 * ```
 */
export async function setupLogging(options: SetupLoggingOptions = {}): Promise<void> {
  const level = options.level ?? "INFO";
  const lowest = LEVEL_TO_LOGTAPE[level];
  if (lowest === undefined) throw new RangeError(`Unknown log level: ${String(level)}`);
  const format = options.format || DEFAULT_LOG_FORMAT;
  const render = format.trim().toLowerCase() === "json"
    ? renderJsonLine
    : (record: LogRecord) => renderTextLine(format, record);
  const redact = makeRedact(options.secrets ?? [], escapeBytes, renderValue);
  const terminal = options.terminal ?? STDERR_LINES;
  const write = options.write ?? ((line: string) => terminal.log(line));
  const sink: Sink = (record) => write(render(redactRecord(record, redact)) + "\n");
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ROOT_CATEGORY, lowestLevel: lowest, sinks: ["main"] },
      {
        category: META_CATEGORY,
        lowestLevel: compareLogLevel(lowest, "warning") > 0 ? lowest : "warning",
        sinks: ["main"],
      },
    ],
  });
}
/**
 * The logger of one part of the service, category `["redis-stream-sync", name]`.
 * Use LogTape's structured style:
 * `log.info("Copied {count} entries from {stream}", { count, stream })`.
 */
export function getLog(name: string): Logger {
  return getLogger([ROOT_CATEGORY, name]);
}
/**
 * `n` and the noun, in the singular for one: `counted(1, "entry", "entries")`
 * is "1 entry", `counted(3, "stream")` is "3 streams".
 */
export function counted(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
/** Disposes LogTape's sinks so that nothing is lost at exit. */
export async function flushLogging(): Promise<void> {
  await dispose();
}
/**
 * Renders a key (or any bytes) for logs: printable ASCII as is, except `\`
 * as `\\` and `"` as `\"`; every other byte (including each byte of a UTF-8
 * multibyte sequence) as `\xNN`.
 *
 * @example
 * ```ts
 * import { escapeBytes } from "./log.ts";
 * escapeBytes(new Uint8Array([0x61, 0x0a, 0xff])); // "a\\x0a\\xff"
 * ```
 */
export function escapeBytes(bytes: Uint8Array | string): string {
  const data = typeof bytes === "string" ? TEXT_ENCODER.encode(bytes) : bytes;
  // One flat string, not a rope of a part per byte (~280 bytes against ~50 for a key of 20
  // bytes, kept for a stream's life in its names): printable bytes are decoded at once.
  if (data.every((byte) => byte >= 0x20 && byte <= 0x7e && byte !== 0x5c && byte !== 0x22)) {
    return LATIN1_DECODER.decode(data);
  }
  const parts: string[] = [];
  for (const byte of data) {
    if (byte === 0x5c) parts.push("\\\\");
    else if (byte === 0x22) parts.push('\\"');
    else if (byte >= 0x20 && byte <= 0x7e) parts.push(String.fromCharCode(byte));
    else parts.push(`\\x${byte.toString(16).padStart(2, "0")}`);
  }
  return parts.join("");
}
/**
 * `record` with its secrets redacted where they could be: the values put
 * into its message and its properties (see `_redact.ts`); the message
 * template and the logger name are the code's own and stay as they are.
 */
function redactRecord(record: LogRecord, redact: Redact): LogRecord {
  const properties: Record<string, unknown> = {};
  const secretValues = new Set<unknown>();
  for (const [key, value] of Object.entries(record.properties)) {
    const secret = isSecretKey(key) && value !== undefined && value !== "";
    if (secret) secretValues.add(value);
    properties[key] = secret ? REDACTED : redact(value);
  }
  const message = record.message.map((part, i) =>
    i % 2 === 0 ? part : secretValues.has(part) ? REDACTED : redact(part)
  );
  return { ...record, message, properties };
}
/** The logger name Python would show: the category joined with ".". */
function loggerName(record: LogRecord): string {
  return record.category.join(".");
}
/** The message with its values interpolated. */
function renderMessage(record: LogRecord): string {
  let out = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    out += i % 2 === 0 ? String(part) : renderValue(part);
  }
  return out;
}
/**
 * A value inside a message: strings as is, Errors as their message, bytes
 * escaped, other values as JSON (or `Deno.inspect` when JSON cannot say it).
 */
function renderValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  if (value instanceof Uint8Array) return escapeBytes(value);
  if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    return String(value);
  }
  if (typeof value !== "object" || value === null) return String(value);
  try {
    const json = JSON.stringify(value, jsonReplacer);
    if (json !== undefined) return json;
  } catch {
    // Circular or otherwise unserialisable: fall through.
  }
  return Deno.inspect(value, { compact: true, breakLength: Infinity, depth: 4 });
}
/**
 * Makes JSON carry what logs need: Errors as their message, bytes (even
 * Buffers, whose `toJSON` ran already) escaped, bigints as strings, Maps as
 * objects and Sets as arrays.
 */
function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) return escapeBytes(original);
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), v]));
  }
  if (value instanceof Set) return [...value];
  return value;
}
function renderTextLine(format: string, record: LogRecord): string {
  return formatPythonStyle(format, {
    timestamp: record.timestamp,
    name: loggerName(record),
    levelname: LOGTAPE_TO_LEVEL[record.level],
    message: renderMessage(record),
  });
}
/**
 * `{"time","level","logger","message", ...properties}`; a property whose
 * name is one of the first four is written with a leading `_`.
 */
function renderJsonLine(record: LogRecord): string {
  const line: Record<string, unknown> = {
    time: new Date(record.timestamp).toISOString(),
    level: LOGTAPE_TO_LEVEL[record.level],
    logger: loggerName(record),
    message: renderMessage(record),
  };
  for (const [key, value] of Object.entries(record.properties)) {
    let name = key;
    while (name in line) name = "_" + name;
    line[name] = value;
  }
  try {
    return JSON.stringify(line, jsonReplacer);
  } catch {
    for (const [key, value] of Object.entries(line)) {
      try {
        JSON.stringify(value, jsonReplacer);
      } catch {
        line[key] = renderValue(value);
      }
    }
    return JSON.stringify(line, jsonReplacer);
  }
}
