import assert from "node:assert/strict";
import { parseEnvFile } from "../lib/config/env_file.ts";

/** The values of `text` as a plain object, asserting that it parses without problems. */
function valuesOf(text: string): Record<string, string> {
  const result = parseEnvFile(text);
  assert.deepStrictEqual(result.problems, []);
  return Object.fromEntries(result.values);
}

Deno.test("parseEnvFile() reads KEY=value lines and skips blank and comment lines", () => {
  const result = parseEnvFile("# a comment\n\nA=1\n   # indented comment\nB=two words\n");
  assert.deepStrictEqual(Object.fromEntries(result.values), { A: "1", B: "two words" });
  assert.deepStrictEqual(Object.fromEntries(result.lines), { A: 3, B: 5 });
  assert.deepStrictEqual(result.problems, []);
  assert.deepStrictEqual(result.warnings, []);
});

Deno.test("parseEnvFile() keeps a # that follows a non-space character", () => {
  assert.deepStrictEqual(valuesOf("PASS=a#b\nC=#notacomment\nD=x#y #z\n"), {
    PASS: "a#b",
    C: "#notacomment",
    D: "x#y",
  });
});

Deno.test("parseEnvFile() ends an unquoted value at a # preceded by whitespace", () => {
  assert.deepStrictEqual(valuesOf("A=b # c\nB=b\t#tab\nC=a # b # c\nD=x   #   y\n"), {
    A: "b",
    B: "b",
    C: "a",
    D: "x",
  });
});

Deno.test("parseEnvFile() gives the empty string for KEY= and KEY= # comment", () => {
  assert.deepStrictEqual(valuesOf("A=\nB= # Optional: a prefix\nC =   \nD=#\n"), {
    A: "",
    B: "",
    C: "",
    D: "#",
  });
});

Deno.test("parseEnvFile() trims unquoted values and allows spaces around =", () => {
  assert.deepStrictEqual(valuesOf("  A =  spaced out   \nB\t=\tx\n"), {
    A: "spaced out",
    B: "x",
  });
});

Deno.test("parseEnvFile() accepts an export prefix", () => {
  assert.deepStrictEqual(valuesOf("export A=1\nexport   B='2'\nexportC=3\n"), {
    A: "1",
    B: "2",
    exportC: "3",
  });
});

Deno.test("parseEnvFile() takes single-quoted values literally", () => {
  assert.deepStrictEqual(
    valuesOf(String.raw`A='x # y' # comment
B=' spaced '
C='back\nslash\\'
D=''
`),
    { A: "x # y", B: " spaced ", C: String.raw`back\nslash\\`, D: "" },
  );
});

Deno.test("parseEnvFile() decodes escapes in double-quoted values", () => {
  assert.deepStrictEqual(
    valuesOf(String.raw`A="line1\nline2\ttab \"quoted\" back\\slash" # c
B="a # not a comment"
C="unknown \q escape"
D=""
`),
    {
      A: 'line1\nline2\ttab "quoted" back\\slash',
      B: "a # not a comment",
      C: "unknown \\q escape",
      D: "",
    },
  );
});

Deno.test("parseEnvFile() reads a quoted value that spans lines", () => {
  const result = parseEnvFile('A="one\ntwo"\nB=3\n');
  assert.deepStrictEqual(Object.fromEntries(result.values), { A: "one\ntwo", B: "3" });
  assert.deepStrictEqual(Object.fromEntries(result.lines), { A: 1, B: 3 });
});

Deno.test("parseEnvFile() reports a line that is not KEY=value, with its line number", () => {
  const result = parseEnvFile("A=1\n\n\n\n\n\ngarbage\nB=2\n");
  assert.deepStrictEqual(result.problems, [
    'env.conf line 7: expected KEY=value, got "garbage"',
  ]);
  assert.deepStrictEqual(Object.fromEntries(result.values), { A: "1", B: "2" });
});

Deno.test("parseEnvFile() uses the file name given in its messages", () => {
  const result = parseEnvFile("what is this\n", { fileName: "/etc/sync.conf" });
  assert.deepStrictEqual(result.problems, [
    '/etc/sync.conf line 1: expected KEY=value, got "what is this"',
  ]);
});

Deno.test("parseEnvFile() reports text after a closing quote, without the value", () => {
  const result = parseEnvFile('A="x"y\nB=1\n');
  assert.deepStrictEqual(result.problems, [
    'env.conf line 1: unexpected text after the closing " quote of A (only a " # comment" may follow it)',
  ]);
  assert.deepStrictEqual(Object.fromEntries(result.values), { B: "1" });
});

Deno.test("parseEnvFile() reports an unclosed quote and goes on with the next line", () => {
  const result = parseEnvFile("A='never closed\nB=1\n");
  assert.deepStrictEqual(result.problems, [
    "env.conf line 1: the value of A opens a ' quote that is never closed",
  ]);
  assert.deepStrictEqual(Object.fromEntries(result.values), { B: "1" });
});

Deno.test("parseEnvFile() never quotes a bad line that may hold a password", () => {
  const result = parseEnvFile('SOURCE_REDIS_PASSWORD "s3cr3t!"\nSOURCE_REDIS_PASSWORD="s3cr3t!\n');
  assert.equal(result.problems.length, 2);
  for (const problem of result.problems) assert.ok(!problem.includes("s3cr3t"), problem);
  assert.match(result.problems[0], /^env\.conf line 1: expected KEY=value, got a line that is not/);
});

Deno.test("parseEnvFile() lets a later assignment override an earlier one, with a warning", () => {
  const result = parseEnvFile("A=1\nB=2\nA=3\n");
  assert.deepStrictEqual(Object.fromEntries(result.values), { A: "3", B: "2" });
  assert.deepStrictEqual(Object.fromEntries(result.lines), { A: 3, B: 2 });
  assert.deepStrictEqual(result.warnings, [
    "env.conf line 3: A is set again (first on line 1); the value on line 3 is used",
  ]);
});

Deno.test("parseEnvFile() handles CRLF line ends, a byte order mark and a missing final newline", () => {
  assert.deepStrictEqual(valuesOf("\uFEFFA=1 # c\r\nB='2'\r\nC=3"), { A: "1", B: "2", C: "3" });
});

Deno.test("parseEnvFile() keeps = signs in values and accepts a single-quoted key", () => {
  assert.deepStrictEqual(valuesOf("A=b=c\n'B'=d\n"), { A: "b=c", B: "d" });
});
