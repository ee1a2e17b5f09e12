/**
 * The state of one configuration load, and how one key is looked up, parsed
 * and reported. Internal to the config folder.
 *
 * @module
 */
import type { EnvFile } from "./env_file.ts";
import { KEY_INFO } from "./keys.ts";
import type { Parsed } from "./parsers.ts";

/** Where a raw value comes from, for messages. */
export interface RawValue {
  text: string;
  /** " (env.conf line 3)", " (from the environment)", " (default)", or "" for a flag. */
  origin: string;
}

/** The state of one {@linkcode loadConfig} call. */
export interface LoadContext {
  env: Record<string, string | undefined>;
  file: EnvFile | undefined;
  fileName: string;
  problems: string[];
  warnings: string[];
  /** Keys whose value was invalid (their fallback must not be used for cross-checks). */
  invalid: Set<string>;
}

/** Where `key` is set (the environment, the file, or its default) and to what. */
export function lookUp(ctx: LoadContext, key: string): RawValue {
  const fromEnv = ctx.env[key];
  if (fromEnv !== undefined) return { text: fromEnv, origin: " (from the environment)" };
  const fromFile = ctx.file?.values.get(key);
  if (fromFile !== undefined) {
    return { text: fromFile, origin: ` (${ctx.fileName} line ${ctx.file?.lines.get(key)})` };
  }
  return { text: KEY_INFO.get(key)?.default ?? "", origin: " (default)" };
}

/**
 * Reads and parses one key. On failure, records a problem and returns the
 * parsed default so that loading can go on and report every problem.
 */
export function read<T>(ctx: LoadContext, key: string, parse: (text: string) => Parsed<T>): T {
  const raw = lookUp(ctx, key);
  const parsed = parse(raw.text);
  if (parsed.ok) return parsed.value;
  ctx.invalid.add(key);
  ctx.problems.push(describeProblem(key, raw, parsed));
  const fallback = parse(KEY_INFO.get(key)?.default ?? "");
  if (!fallback.ok) throw new Error(`The default of ${key} is invalid`);
  return fallback.value;
}

export /** `KEY must be <expected>: got "<value>"[, <detail>][ (<origin>)]`; secrets are not shown. */
function describeProblem(
  key: string,
  raw: RawValue,
  failure: { expected: string; detail?: string },
): string {
  const detail = failure.detail === undefined ? "" : `, ${failure.detail}`;
  // A secret's value is never shown (the detail of a URL's problem says what, not the value).
  if (KEY_INFO.get(key)?.secret) return `${key} must be ${failure.expected}${detail}${raw.origin}`;
  return `${key} must be ${failure.expected}: got ${
    JSON.stringify(raw.text)
  }${detail}${raw.origin}`;
}
