/**
 * Value parsers of the configuration keys: each turns the text of one value
 * into a typed value, or says what was expected.
 *
 * @module
 */
import type { LogLevelName } from "./types.ts";
import { unknownLogFields } from "../log_format.ts";

/** Redis' default `databases` count: DB numbers are 0 to this minus one. */
const DB_COUNT = 16;

/** The largest STREAM_BATCH_SIZE. */
export const MAX_BATCH_SIZE = 100_000;

/** The smallest duration in seconds: a 0 ms XREADGROUP BLOCK would block for ever. */
const MIN_SECONDS = 0.001;

/** The largest duration in seconds that a timer can wait (2^31 - 1 ms). */
const MAX_SECONDS = 2_147_483;

/** The largest part of a stream ID (unsigned 64-bit). */
const MAX_ID_PART = 2n ** 64n - 1n;

const LOG_LEVELS: ReadonlyMap<string, LogLevelName> = new Map([
  ["DEBUG", "DEBUG"],
  ["INFO", "INFO"],
  ["WARNING", "WARNING"],
  ["WARN", "WARNING"],
  ["ERROR", "ERROR"],
  ["CRITICAL", "CRITICAL"],
]);

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["1", true],
  ["yes", true],
  ["on", true],
  ["false", false],
  ["0", false],
  ["no", false],
  ["off", false],
]);

/** The outcome of parsing one value: the value, or what was expected. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; detail?: string };

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function fail<T>(expected: string, detail?: string): Parsed<T> {
  return detail === undefined ? { ok: false, expected } : { ok: false, expected, detail };
}

/** A plain decimal integer (optional sign, surrounding whitespace allowed), or undefined. */
function toInteger(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A parser of integers in `[min, max]` (no upper bound when `max` is undefined). */
export function integer(min: number, max?: number): (text: string) => Parsed<number> {
  const expected = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return (text) => {
    const value = toInteger(text);
    if (value === undefined || value < min || (max !== undefined && value > max)) {
      return fail(expected);
    }
    return ok(value);
  };
}

export function parseDb(text: string): Parsed<number> {
  const value = toInteger(text);
  if (value === undefined || value < 0 || value >= DB_COUNT) {
    return fail(`a DB number from 0 to ${DB_COUNT - 1}`);
  }
  return ok(value);
}

export function parseTargetDb(text: string): Parsed<number | "same"> {
  if (text.trim().toLowerCase() === "same") return ok("same");
  const value = toInteger(text);
  if (value === undefined || value < 0 || value >= DB_COUNT) {
    return fail(`a DB number from 0 to ${DB_COUNT - 1}, or "same"`);
  }
  return ok(value);
}

/** A duration in seconds: a decimal number > 0, fractions allowed. */
export function parseSeconds(text: string): Parsed<number> {
  const expected = "a number of seconds > 0";
  const trimmed = text.trim();
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(trimmed)) return fail(expected);
  const value = Number(trimmed);
  if (!(value > 0)) return fail(expected);
  if (value < MIN_SECONDS) return fail(expected, `the smallest is ${MIN_SECONDS}`);
  if (value > MAX_SECONDS) return fail(expected, `the largest is ${MAX_SECONDS}`);
  return ok(value);
}

/** A duration in seconds, or 0 for none (HEARTBEAT_INTERVAL). */
export function parseSecondsOrZero(text: string): Parsed<number> {
  if (/^\+?(?:0+(?:\.0*)?|\.0+)$/.test(text.trim())) return ok(0);
  const seconds = parseSeconds(text);
  return seconds.ok ? seconds : fail(`0 (none) or ${seconds.expected}`, seconds.detail);
}

export function parseBoolean(text: string): Parsed<boolean> {
  const value = BOOLEANS.get(text.trim().toLowerCase());
  return value === undefined ? fail("true or false (or 1/0, yes/no, on/off)") : ok(value);
}

export function parseHost(text: string): Parsed<string> {
  const trimmed = text.trim();
  if (trimmed === "" || /\s/.test(trimmed)) {
    return fail("a non-empty host name or IP address, without spaces");
  }
  return ok(trimmed);
}

const ADDRESS_LIST =
  "a comma-separated list of host:port (e.g. 10.0.0.1:26379,10.0.0.2:26379), or empty";

/** `*_REDIS_SENTINELS`: `host:port,host:port` (`[v6]:port` for IPv6); empty = none. */
export function parseAddressList(text: string): Parsed<Array<{ host: string; port: number }>> {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  const out: Array<{ host: string; port: number }> = [];
  for (const item of items) {
    const match = /^(?:\[([^\]]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) return fail(ADDRESS_LIST, `"${item}" is not host:port`);
    out.push({ host: match[1] ?? match[2], port });
  }
  return ok(out);
}

/** Empty (undefined: as another key says), or a boolean. */
export function parseOptionalBoolean(text: string): Parsed<boolean | undefined> {
  if (text.trim() === "") return ok(undefined);
  const parsed = parseBoolean(text);
  return parsed.ok ? parsed : fail("true or false, or empty");
}

export function nonEmpty(expected: string): (text: string) => Parsed<string> {
  return (text) => (text.trim() === "" ? fail(expected) : ok(text));
}

export function parseLogLevel(text: string): Parsed<LogLevelName> {
  const level = LOG_LEVELS.get(text.trim().toUpperCase());
  return level === undefined
    ? fail("one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL")
    : ok(level);
}

export function parseLogFormat(text: string): Parsed<string> {
  if (text.trim() === "") return fail('a Python logging format string, or "json"');
  if (text.trim().toLowerCase() === "json") return ok("json");
  const unknown = unknownLogFields(text);
  if (unknown.length > 0) {
    return fail(
      "a format using only %(asctime)s, %(name)s, %(levelname)s, %(message)s, %(process)d, " +
        '%(levelno)d, %(created)f, %(msecs)d (widths allowed), or "json"',
      `${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not known here`,
    );
  }
  return ok(text);
}

/** `0`, `$`, `ms` or `ms-seq` (each part an unsigned 64-bit integer). */
export function parseStartId(text: string): Parsed<string> {
  const trimmed = text.trim();
  if (trimmed === "$") return ok(trimmed);
  const match = /^(\d+)(?:-(\d+))?$/.exec(trimmed);
  if (match && BigInt(match[1]) <= MAX_ID_PART && BigInt(match[2] ?? "0") <= MAX_ID_PART) {
    return ok(trimmed);
  }
  return fail('"0", "$" or a stream ID like "1700000000000-0"');
}

/** A comma-separated list: entries trimmed, empty ones and duplicates dropped. */
export function parseList(text: string): Parsed<string[]> {
  return ok([...new Set(text.split(",").map((part) => part.trim()).filter((part) => part))]);
}

export function parseDbRange(text: string): Parsed<number[]> {
  const expected = 'DB numbers from 0 to 15 and ascending ranges, like "0-15", "0,1,5" or "0-3,7"';
  const dbs = new Set<number>();
  const errors: string[] = [];
  const parts = text.split(",").map((part) => part.trim()).filter((part) => part);
  if (parts.length === 0) return fail(expected);
  for (const part of parts) {
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) {
      errors.push(`${JSON.stringify(part)} is not a DB number or range`);
      continue;
    }
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    if (low >= DB_COUNT || high >= DB_COUNT) {
      errors.push(`${JSON.stringify(part)} is beyond DB ${DB_COUNT - 1}`);
    } else if (low > high) {
      errors.push(`${JSON.stringify(part)} is not ascending`);
    } else {
      for (let db = low; db <= high; db++) dbs.add(db);
    }
  }
  if (errors.length > 0) return fail(expected, `where ${errors.join(", ")}`);
  return ok([...dbs].sort((a, b) => a - b));
}

/** One entry of REDIS_STREAMS, as written, with its explicit DB if any. */
export interface StreamEntry {
  text: string;
  db: number | undefined;
  key: string;
}

export function parseStreamList(text: string): Parsed<StreamEntry[]> {
  const expected = 'a comma-separated list of "key" or "dbN:key" with N from 0 to 15';
  const entries: StreamEntry[] = [];
  const errors: string[] = [];
  for (const part of text.split(",").map((entry) => entry.trim()).filter((entry) => entry)) {
    const match = /^db(\d+):(.*)$/s.exec(part);
    if (!match) {
      entries.push({ text: part, db: undefined, key: part });
      continue;
    }
    const db = Number(match[1]);
    const key = match[2].trim();
    if (db >= DB_COUNT) errors.push(`${JSON.stringify(part)} names DB ${match[1]}`);
    else if (key === "") errors.push(`${JSON.stringify(part)} has no key`);
    else entries.push({ text: part, db, key });
  }
  if (errors.length > 0) return fail(expected, `where ${errors.join(", ")}`);
  return ok(entries);
}

/** STREAM_LEASE_TTL: seconds, at least 1 (renewed every third of it). */
export function parseLeaseTtl(text: string): Parsed<number> {
  const seconds = parseSeconds(text);
  if (!seconds.ok) return seconds;
  if (seconds.value < 1) return fail("a number of seconds >= 1");
  return seconds;
}

/** INSTANCE_ID: empty (automatic) or 1-64 letters, digits, `.`, `_`, `-`. */
export function parseInstanceId(text: string): Parsed<string> {
  const value = text.trim();
  if (value === "") return ok("");
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    return fail("empty, or 1-64 letters, digits, '.', '_' or '-'");
  }
  return ok(value);
}

/** What a `redis://` URL says. */
export interface RedisUrl {
  host: string;
  port: number;
  /** `rediss://`. */
  tls: boolean;
  username?: string;
  password?: string;
  /** The DB of the path (`/3`), if any. */
  db?: number;
}

const URL_FORM = "a URL redis:// or rediss://[user[:password]@]host[:port][/db], or empty";

/**
 * `*_REDIS_URL`: empty (the separate keys apply), or
 * `redis://[user[:password]@]host[:port][/db]` (user and password
 * percent-decoded); `rediss://` is the same over TLS.
 */
export function parseRedisUrl(text: string): Parsed<RedisUrl | undefined> {
  const trimmed = text.trim();
  if (trimmed === "") return ok(undefined);
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return fail(URL_FORM, "it is not a URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return fail(URL_FORM, `the scheme is "${url.protocol}//"`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") return fail(URL_FORM, "it has no host");
  if (url.search !== "" || url.hash !== "") return fail(URL_FORM, "it has a query or a fragment");
  const port = url.port === "" ? 6379 : Number(url.port);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    return fail(URL_FORM, "its port is not 1-65535");
  }
  let db: number | undefined;
  const path = url.pathname.replace(/^\//, "");
  if (path !== "") {
    const parsed = parseDb(path);
    if (!parsed.ok) return fail(URL_FORM, `its path is not a DB number from 0 to ${DB_COUNT - 1}`);
    db = parsed.value;
  }
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    return fail(URL_FORM, "its user or password is not valid percent-encoding");
  }
  return ok({
    host,
    port,
    tls: url.protocol === "rediss:",
    ...(username === "" ? {} : { username }),
    ...(password === "" ? {} : { password }),
    ...(db === undefined ? {} : { db }),
  });
}

/** `url` with the password replaced by `***` (for printing). */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*):[^@/]*@/i, "$1:***@");
}
