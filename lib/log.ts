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

export type { Logger } from "@logtape/logtape";

/** Log levels accepted by LOG_LEVEL and `--log-level` (after normalisation). */
export type LogLevelName = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

/** The category every logger of the service lives under. */
export const ROOT_CATEGORY = "redis-stream-sync";

/** The format used when none is given: the Python seed's default. */
export const DEFAULT_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s";

/** What every secret is replaced with. */
const REDACTED = "***";

/** Python's numeric level of each level name. */
const LEVEL_NUMBERS: Readonly<Record<LogLevelName, number>> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  CRITICAL: 50,
};

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

/**
 * `%%`, or `%(key)[flags][width][.precision]conversion` as Python's
 * printf-style formatting reads it.
 */
const PLACEHOLDER_PATTERN =
  /%(?:\(([A-Za-z_][A-Za-z0-9_]*)\)([-#0 +]*)(\d*)(?:\.(\d+))?([diouxXeEfFgGcrsa])|%)/g;

const TEXT_ENCODER = new TextEncoder();

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
   * Strings (passwords) replaced by `***` in every line, whatever the format.
   * Empty strings are ignored.
   * @default {[]}
   */
  secrets?: readonly string[];
  /**
   * Receives each full line, including its trailing `"\n"`.
   * @default {writes the line to stderr synchronously}
   */
  write?: (line: string) => void;
}

/** The values {@linkcode formatPythonStyle} can put in a line. */
export interface PythonStyleRecord {
  /** When the record was made, in milliseconds since the Unix epoch. */
  timestamp: number;
  /** The logger's name, e.g. `"redis-stream-sync.replicator"`. */
  name: string;
  /** The level name. */
  levelname: LogLevelName;
  /** The rendered message. */
  message: string;
  /**
   * The process id.
   * @default {Deno.pid}
   */
  process?: number;
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
  const redact = makeRedactor(options.secrets ?? []);
  const write = options.write ?? writeStderr;
  const sink: Sink = (record) => write(redact(render(record)) + "\n");
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

/** Disposes LogTape's sinks so that nothing is lost at exit. */
export async function flushLogging(): Promise<void> {
  await dispose();
}

/**
 * Renders a record with a Python `logging` format string. Placeholders:
 * `%(asctime)s` (local time, `2026-11-26 09:41:07,123`), `%(name)s`,
 * `%(levelname)s`, `%(levelno)d` (10-50), `%(message)s`, `%(process)d`,
 * `%(created)f` (seconds since the epoch), `%(msecs)d` and `%%`, with
 * Python's flags, width and precision (`%(levelname)-8s`, `%(msecs)03d`).
 * Unknown placeholders stay as written.
 *
 * @example
 * ```ts
 * import { formatPythonStyle } from "./log.ts";
 * formatPythonStyle("%(levelname)-8s|%(message)s", {
 *   timestamp: Date.now(),
 *   name: "redis-stream-sync.x",
 *   levelname: "INFO",
 *   message: "hi",
 * }); // "INFO    |hi"
 * ```
 */
export function formatPythonStyle(format: string, record: PythonStyleRecord): string {
  return format.replace(
    PLACEHOLDER_PATTERN,
    (match, key?: string, flags = "", width = "", precision?: string, conversion = "s") => {
      if (key === undefined) return "%";
      const value = placeholderValue(key, record);
      if (value === undefined) return match;
      return convert(value, flags, width === "" ? 0 : Number(width), precision, conversion);
    },
  );
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
  let out = "";
  for (const byte of data) {
    if (byte === 0x5c) out += "\\\\";
    else if (byte === 0x22) out += '\\"';
    else if (byte >= 0x20 && byte <= 0x7e) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

function placeholderValue(key: string, record: PythonStyleRecord): string | number | undefined {
  switch (key) {
    case "asctime":
      return formatAsctime(record.timestamp);
    case "name":
      return record.name;
    case "levelname":
      return record.levelname;
    case "levelno":
      return LEVEL_NUMBERS[record.levelname];
    case "message":
      return record.message;
    case "process":
      return record.process ?? Deno.pid;
    case "created":
      return record.timestamp / 1000;
    case "msecs":
      return ((record.timestamp % 1000) + 1000) % 1000;
    default:
      return undefined;
  }
}

/** Python's `%Y-%m-%d %H:%M:%S,mmm`, in local time. */
function formatAsctime(timestamp: number): string {
  const date = new Date(timestamp);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())},` +
    String(date.getMilliseconds()).padStart(3, "0");
}

/** Applies one printf-style conversion, as Python's `%` operator does. */
function convert(
  value: string | number,
  flags: string,
  width: number,
  precision: string | undefined,
  conversion: string,
): string {
  const digits = precision === undefined ? undefined : Number(precision);
  let body: string;
  let numeric = false;
  if (typeof value === "number" && conversion !== "s" && conversion !== "r" && conversion !== "a") {
    numeric = true;
    body = convertNumber(value, digits, conversion, flags.includes("#"));
    if (value >= 0 && !Object.is(value, -0)) {
      if (flags.includes("+")) body = "+" + body;
      else if (flags.includes(" ")) body = " " + body;
    }
  } else {
    body = String(value);
    if (digits !== undefined) body = body.slice(0, digits);
  }
  if (body.length >= width) return body;
  if (flags.includes("-")) return body.padEnd(width);
  if (numeric && flags.includes("0")) {
    const sign = /^[-+ ]/.test(body) ? body[0] : "";
    return sign + body.slice(sign.length).padStart(width - sign.length, "0");
  }
  return body.padStart(width);
}

function convertNumber(
  value: number,
  digits: number | undefined,
  conversion: string,
  alternate: boolean,
): string {
  switch (conversion) {
    case "d":
    case "i":
    case "u": {
      const int = Math.trunc(value);
      const text = String(Math.abs(int)).padStart(digits ?? 0, "0");
      return (int < 0 ? "-" : "") + text;
    }
    case "f":
    case "F":
      return value.toFixed(digits ?? 6);
    case "e":
    case "E": {
      const text = value.toExponential(digits ?? 6).replace(/e([+-])(\d)$/, "e$10$2");
      return conversion === "E" ? text.toUpperCase() : text;
    }
    case "g":
    case "G": {
      const text = String(Number(value.toPrecision(digits || 6)));
      return conversion === "G" ? text.toUpperCase() : text;
    }
    case "x":
    case "X":
    case "o": {
      const int = Math.trunc(value);
      let text = Math.abs(int).toString(conversion === "o" ? 8 : 16);
      if (alternate) text = (conversion === "o" ? "0o" : "0x") + text;
      if (conversion === "X") text = text.toUpperCase();
      return (int < 0 ? "-" : "") + text;
    }
    case "c":
      return String.fromCodePoint(Math.trunc(value));
    default:
      return String(value);
  }
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

/**
 * A function that replaces every secret in a line with `***`, in each form
 * it can take there: as is, escaped as in JSON, and escaped as bytes.
 */
function makeRedactor(secrets: readonly string[]): (line: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== "string" || secret === "") continue;
    const escaped = escapeBytes(secret);
    for (const form of [secret, escaped]) {
      forms.add(form);
      forms.add(JSON.stringify(form).slice(1, -1));
    }
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (line) => line;
  return (line) => {
    let out = line;
    for (const form of ordered) out = out.replaceAll(form, REDACTED);
    return out;
  };
}

/** Writes a whole line to stderr, synchronously. */
function writeStderr(line: string): void {
  const data = TEXT_ENCODER.encode(line);
  let written = 0;
  while (written < data.length) {
    written += Deno.stderr.writeSync(data.subarray(written));
  }
}
