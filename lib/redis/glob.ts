/**
 * Redis glob patterns (`KEYS`, `SCAN MATCH`: `*`, `?`, `[abc]`, `[^a]`,
 * `[a-z]`, `\x`), matched the way Redis's `stringmatchlen` does (one
 * character a byte: give keys and patterns as latin1 text of their bytes),
 * and an example of what a pattern matches: the check that a target
 * prefix does not make discovery find the copies again (discovery itself
 * leaves matching to the server).
 *
 * @module
 */

/** Whether `key` matches the Redis glob `pattern` (case-sensitive). */
export function globMatch(pattern: string, key: string): boolean {
  return match(pattern, 0, key, 0);
}

function match(p: string, pi: number, s: string, si: number): boolean {
  while (pi < p.length) {
    const c = p[pi];
    if (c === "*") {
      while (p[pi + 1] === "*") pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) if (match(p, pi + 1, s, k)) return true;
      return false;
    }
    if (si >= s.length) return false;
    if (c === "?") {
      pi++;
      si++;
      continue;
    }
    if (c === "[") {
      const end = classEnd(p, pi);
      if (!inClass(p.slice(pi + 1, end), s[si])) return false;
      pi = end + 1;
      si++;
      continue;
    }
    const literal = c === "\\" && pi + 1 < p.length ? p[++pi] : c;
    if (literal !== s[si]) return false;
    pi++;
    si++;
  }
  return si === s.length;
}

/** The index of the `]` that closes the class opened at `start` (the last index if none). */
function classEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === "^") i++;
  for (; i < p.length; i++) {
    if (p[i] === "\\" && i + 1 < p.length) i++;
    else if (p[i] === "]") return i;
  }
  return p.length - 1;
}

function inClass(body: string, ch: string): boolean {
  let negate = false;
  let i = 0;
  if (body[0] === "^") {
    negate = true;
    i = 1;
  }
  let found = false;
  for (; i < body.length; i++) {
    if (body[i] === "\\" && i + 1 < body.length) {
      if (body[++i] === ch) found = true;
    } else if (i + 2 < body.length && body[i + 1] === "-") {
      let [lo, hi] = [body[i], body[i + 2]];
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) found = true;
      i += 2;
    } else if (body[i] === ch) found = true;
  }
  return negate ? !found : found;
}

/** A key `pattern` matches: each wildcard or class replaced by one character it admits. */
export function globExample(pattern: string): string {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" || c === "?") out += "x";
    else if (c === "[") {
      const end = classEnd(pattern, i);
      const body = pattern.slice(i + 1, end);
      out += classExample(body);
      i = end;
    } else if (c === "\\" && i + 1 < pattern.length) out += pattern[++i];
    else out += c;
  }
  return out;
}

function classExample(body: string): string {
  if (body.startsWith("^")) {
    for (const c of "xyz0_") if (inClass(body, c)) return c;
    return "~";
  }
  return body[0] === "\\" ? (body[1] ?? "x") : (body[0] ?? "x");
}
