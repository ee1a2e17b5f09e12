/**
 * A parser for `env.conf` files, with the syntax of python-dotenv (the
 * original service was written in Python):
 *
 * - `KEY=value`, optionally prefixed with `export `; spaces around `=` are allowed.
 * - Blank lines and lines starting with `#` are ignored.
 * - An unquoted value is trimmed and ends at a `#` preceded by whitespace
 *   (an inline comment); a `#` right after a non-space character is part of
 *   the value: `PASS=a#b` gives `a#b`. `KEY=` and `KEY= # comment` give "".
 * - A single-quoted value is literal. A double-quoted value understands the
 *   escapes `\n`, `\t`, `\r`, `\"`, `\'`, `\\` (and `\a`, `\b`, `\f`, `\v`).
 *   Quoted values may span lines and may be followed by ` # comment`.
 * - A later assignment of a key overrides an earlier one.
 *
 * Unlike python-dotenv, `${VAR}` references are not expanded, and a line
 * that is not an assignment is reported as a problem instead of a warning.
 *
 * @module
 */

/** The result of {@linkcode parseEnvFile}. */
export interface EnvFile {
  /** The value of each key (the last assignment wins). */
  values: Map<string, string>;
  /** The 1-based line of the assignment that set each key, for messages. */
  lines: Map<string, number>;
  /** Lines that could not be parsed, one sentence each, e.g. `env.conf line 7: expected KEY=value, got "garbage"`. */
  problems: string[];
  /** Harmless oddities, e.g. a key assigned twice. */
  warnings: string[];
}

/** Options for {@linkcode parseEnvFile}. */
export interface ParseEnvFileOptions {
  /**
   * The file name used in messages.
   * @default {"env.conf"}
   */
  fileName?: string;
}

/** Lines containing one of these words are never echoed in messages: they may hold a secret. */
const SECRET_HINT = /pass|pwd|secret|token|auth/i;

/** Characters a key is made of (as python-dotenv: anything but `=`, `#` and whitespace). */
const UNQUOTED_KEY = /^([^=#\s]+)/;
const SINGLE_QUOTED_KEY = /^'([^']+)'/;
const EXPORT_PREFIX = /^export[^\S\r\n]+/;
const LEADING_SPACE = /^[^\S\r\n]+/;
/** What may follow a closing quote: spaces and an optional comment. */
const AFTER_QUOTE = /^[^\S\r\n]*(?:#.*)?$/;
/** An inline comment in an unquoted value: a `#` preceded by whitespace, to the end. */
const INLINE_COMMENT = /\s+#.*$/;

const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = {
  "n": "\n",
  "t": "\t",
  "r": "\r",
  '"': '"',
  "'": "'",
  "\\": "\\",
  "a": "\x07",
  "b": "\b",
  "f": "\f",
  "v": "\v",
};

/**
 * Parses the text of an env file. Never throws: lines that cannot be parsed
 * are listed in `problems` (a line that may hold a password is not quoted).
 *
 * @example
 * ```ts
 * import { parseEnvFile } from "./env_file.ts";
 * const { values } = parseEnvFile("PASS=a#b # comment\nexport HOST='x y'\n");
 * values.get("PASS"); // "a#b"
 * values.get("HOST"); // "x y"
 * ```
 */
export function parseEnvFile(text: string, options: ParseEnvFileOptions = {}): EnvFile {
  const fileName = options.fileName ?? "env.conf";
  const result: EnvFile = { values: new Map(), lines: new Map(), problems: [], warnings: [] };
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  let index = 0;
  while (index < lines.length) {
    const lineNumber = index + 1;
    const line = lines[index];
    index++;
    const where = `${fileName} line ${lineNumber}`;
    let rest = line.replace(/^\s+/, "");
    if (rest === "" || rest.startsWith("#")) continue;
    rest = rest.replace(EXPORT_PREFIX, "");
    const keyMatch = SINGLE_QUOTED_KEY.exec(rest) ?? UNQUOTED_KEY.exec(rest);
    const afterKey = keyMatch ? rest.slice(keyMatch[0].length).replace(LEADING_SPACE, "") : "";
    if (!keyMatch || !afterKey.startsWith("=")) {
      result.problems.push(`${where}: expected KEY=value, got ${showLine(line)}`);
      continue;
    }
    const key = keyMatch[1];
    const rawValue = afterKey.slice(1);
    const valueStart = rawValue.replace(LEADING_SPACE, "");
    let value: string;
    const quote = valueStart[0];
    if (quote === "'" || quote === '"') {
      const quoted = readQuoted(quote, valueStart.slice(1), lines, index);
      if (quoted === undefined) {
        result.problems.push(
          `${where}: the value of ${key} opens a ${quote} quote that is never closed`,
        );
        continue;
      }
      index = quoted.nextIndex;
      if (!AFTER_QUOTE.test(quoted.trailing)) {
        result.problems.push(
          `${where}: unexpected text after the closing ${quote} quote of ${key}` +
            ` (only a " # comment" may follow it)`,
        );
        continue;
      }
      value = quoted.value;
    } else {
      value = rawValue.replace(INLINE_COMMENT, "").trim();
    }
    const previous = result.lines.get(key);
    if (previous !== undefined) {
      result.warnings.push(
        `${where}: ${key} is set again (first on line ${previous}); the value on line ${lineNumber} is used`,
      );
    }
    result.values.set(key, value);
    result.lines.set(key, lineNumber);
  }
  return result;
}

/** A quoted value, decoded, with what follows its closing quote. */
interface QuotedValue {
  value: string;
  /** The text after the closing quote, on the line where it closes. */
  trailing: string;
  /** The index of the line after the one where the value closes. */
  nextIndex: number;
}

/**
 * Reads a quoted value whose opening quote was just before `text`, going on
 * to the following lines (from `lines[nextIndex]`) until the closing quote.
 * Returns undefined when the quote is never closed.
 */
function readQuoted(
  quote: "'" | '"',
  text: string,
  lines: readonly string[],
  nextIndex: number,
): QuotedValue | undefined {
  let value = "";
  let current = text;
  let index = nextIndex;
  for (;;) {
    let position = 0;
    while (position < current.length) {
      const char = current[position];
      if (char === quote) {
        return { value, trailing: current.slice(position + 1), nextIndex: index };
      }
      if (quote === '"' && char === "\\" && position + 1 < current.length) {
        const escaped = current[position + 1];
        value += DOUBLE_QUOTE_ESCAPES[escaped] ?? `\\${escaped}`;
        position += 2;
        continue;
      }
      value += char;
      position++;
    }
    if (index >= lines.length) return undefined;
    value += "\n";
    current = lines[index];
    index++;
  }
}

/** The line, quoted for a message, unless it may hold a secret. */
function showLine(line: string): string {
  if (SECRET_HINT.test(line)) return "a line that is not shown (it may hold a secret)";
  const trimmed = line.trim();
  const shown = trimmed.length > 80 ? `${trimmed.slice(0, 77)}...` : trimmed;
  return JSON.stringify(shown);
}
