/**
 * Python's logging format strings (`%(asctime)s - %(name)s - ...`), so the
 * seed's LOG_FORMAT renders the same lines as the original service.
 *
 * @module
 */
/** Log levels accepted by LOG_LEVEL and `--log-level` (after normalisation). */
export type LogLevelName = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

/** Python's numeric level of each level name. */
const LEVEL_NUMBERS: Readonly<Record<LogLevelName, number>> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  CRITICAL: 50,
};

/**
 * `%%`, or `%(key)[flags][width][.precision]conversion` as Python's
 * printf-style formatting reads it.
 */
const PLACEHOLDER_PATTERN =
  /%(?:\(([A-Za-z_][A-Za-z0-9_]*)\)([-#0 +]*)(\d*)(?:\.(\d+))?([diouxXeEfFgGcrsa])|%)/g;

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

/** The `%(name)s` placeholders a format may use. */
export const LOG_FORMAT_FIELDS: readonly string[] = [
  "asctime",
  "name",
  "levelname",
  "levelno",
  "message",
  "process",
  "created",
  "msecs",
];

/** The placeholders of `format` that no line can fill (Python's `threadName`, `lineno`...). */
export function unknownLogFields(format: string): string[] {
  const unknown = new Set<string>();
  for (const m of format.matchAll(PLACEHOLDER_PATTERN)) {
    if (m[1] !== undefined && !LOG_FORMAT_FIELDS.includes(m[1])) unknown.add(m[0]);
  }
  return [...unknown];
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
