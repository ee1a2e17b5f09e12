/**
 * Keeps secrets (passwords) out of log lines where they could enter one:
 * the values interpolated into a message and the properties of a record.
 * Message templates are constants of the code and logger names are ours,
 * so they are never touched, and no other word of a line is changed: a
 * value equal to a secret becomes `***`, a property named like a password
 * too, and a secret of at least {@linkcode MIN_SCRUBBED_LENGTH} characters
 * inside a longer value (an error message) is replaced there. A shorter
 * secret inside a longer value is left alone: `redis` or `x` as a password
 * must not turn `redis-sync-group` or `/etc/x/key.pem` into a riddle that
 * gives the password away.
 *
 * @module
 */

/** What a secret is replaced with. */
export const REDACTED = "***";
/** Secrets this long or longer are also replaced inside longer values. */
export const MIN_SCRUBBED_LENGTH = 8;
/** Property names whose values are secrets, whatever they hold. */
const SECRET_KEYS = /^(password|passwd|pass|secret|auth|token|credentials?)$/i;

/** Replaces the secrets in one value (see the module doc): the value, or a string in its place. */
export type Redact = <T>(value: T) => T | string;

/**
 * A function that redacts one value; `escape` gives a secret's form as
 * escaped bytes (how byte values are shown).
 */
export function makeRedact(
  secrets: readonly string[],
  escape: (s: string | Uint8Array) => string,
  render: (value: unknown) => string = String,
): Redact {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== "string" || secret === "") continue;
    for (const form of [secret, escape(secret)]) {
      forms.add(form);
      forms.add(JSON.stringify(form).slice(1, -1));
    }
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  const long = ordered.filter((form) => form.length >= MIN_SCRUBBED_LENGTH);
  const scrub = (text: string): string => {
    if (forms.has(text)) return REDACTED;
    let out = text;
    for (const form of long) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    return out;
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === "string") return scrub(value);
    if (value instanceof Error) {
      const message = scrub(value.message);
      return message === value.message ? value : message;
    }
    if (value instanceof Uint8Array) {
      // As the line shows it: its bytes escaped.
      const shown = escape(value);
      const scrubbed = scrub(shown);
      return scrubbed === shown ? value : scrubbed;
    }
    if (typeof value !== "object" || value === null) return value;
    if (Array.isArray(value) && depth <= 4) return value.map((v) => walk(v, depth + 1));
    if (Object.getPrototypeOf(value) !== Object.prototype || depth > 4) {
      // A Map, a Set, an instance of a class, or deep: scrubbed as the line shows it.
      const shown = render(value);
      const scrubbed = scrub(shown);
      return scrubbed === shown ? value : scrubbed;
    }
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = SECRET_KEYS.test(key) && v !== undefined && v !== ""
        ? REDACTED
        : walk(v, depth + 1);
    }
    return out;
  };
  return <T>(value: T) => walk(value, 0) as T | string;
}

/** Whether a property named `key` holds a secret, whatever its value. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.test(key);
}
