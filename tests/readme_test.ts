import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CONFIG_KEYS } from "../lib/config/keys.ts";
import { CONFIG_DOCS_PATH, updateConfigDocs } from "../scripts/config_docs.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = await Deno.readTextFile(join(ROOT, "README.md"));
const CONFIG_DOCS = await Deno.readTextFile(join(ROOT, CONFIG_DOCS_PATH));

Deno.test("docs/configuration.md's key tables match CONFIG_KEYS (run scripts/config_docs.ts --write)", async () => {
  // Compare after deno fmt's table alignment: regenerate, format both the same way.
  const expected = updateConfigDocs(CONFIG_DOCS);
  const format = async (text: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--ext", "md", "-"],
      stdin: "piped",
      stdout: "piped",
      signal: AbortSignal.timeout(60_000),
    }).spawn();
    const writer = out.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    return new TextDecoder().decode((await out.output()).stdout);
  };
  assert.equal(await format(CONFIG_DOCS), await format(expected));
});

Deno.test("docs/configuration.md documents every configuration key", () => {
  for (const { key } of CONFIG_KEYS) assert.ok(CONFIG_DOCS.includes(`\`${key}\``), key);
});

Deno.test("README documents every command and exit code", () => {
  for (
    const command of ["`run`", "`run --once`", "`check`", "`status`", "`verify`", "`health`"]
  ) {
    assert.ok(README.includes(command), command);
  }
  for (const code of [0, 1, 2, 69, 78]) {
    assert.match(README, new RegExp(`^\\| ${code} +\\|`, "m"), `exit code ${code}`);
  }
});

Deno.test("README stays the front door: under 400 lines, nothing outside the repository", () => {
  const lines = README.split("\n").length;
  assert.ok(lines < 400, `README.md has ${lines} lines: move details to docs/`);
  assert.ok(!README.includes("../shared"), "README.md points to ../shared, outside the repository");
});

/** The Markdown files whose relative links must resolve. */
async function markdownFiles(): Promise<string[]> {
  const files = [join(ROOT, "README.md"), join(ROOT, "CHANGELOG.md")];
  for await (const entry of Deno.readDir(join(ROOT, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(join(ROOT, "docs", entry.name));
  }
  return files.sort();
}

/** `text` without fenced code blocks (their lines kept empty, so line numbers stay). */
function withoutCodeBlocks(text: string): string {
  let fenced = false;
  return text.split("\n").map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  }).join("\n");
}

/**
 * The anchors GitHub makes for the headings of `text`: the heading's text
 * lowercased, punctuation dropped except `-` and `_`, spaces turned into
 * `-`; a repeated anchor gets `-1`, `-2`, ...
 */
function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutCodeBlocks(text).split("\n")) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // a link counts by its text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The targets of the inline links and images of `text`, outside code. */
function linkTargets(text: string): string[] {
  const prose = withoutCodeBlocks(text).replace(/`[^`]*`/g, "");
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
}

Deno.test("headingAnchors() follows GitHub's rules", () => {
  const anchors = headingAnchors(
    "# Reading `status`\n## Order, and throughput: 1,000 streams\n```\n# not a heading\n```\n" +
      "### TLS\n### TLS\n## STREAM_LEASES and `run --once`\n",
  );
  assert.deepEqual([...anchors], [
    "reading-status",
    "order-and-throughput-1000-streams",
    "tls",
    "tls-1",
    "stream_leases-and-run---once",
  ]);
  assert.deepEqual(
    linkTargets("[a](x.md#b) `[c](d.md)` [e\nf](#g) ![h](i.png)\n```\n[j](k.md)\n```"),
    ["x.md#b", "#g", "i.png"],
  );
});

Deno.test("every relative link of README.md, CHANGELOG.md and docs/*.md points to a file and heading that exist", async () => {
  const broken: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchors = async (path: string) => {
    if (!anchorsOf.has(path)) anchorsOf.set(path, headingAnchors(await Deno.readTextFile(path)));
    return anchorsOf.get(path)!;
  };
  const files = await markdownFiles();
  assert.ok(files.some((f) => f.endsWith(join("docs", "configuration.md"))), String(files));
  for (const file of files) {
    for (const target of linkTargets(await Deno.readTextFile(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
      const [path, anchor] = target.split("#", 2);
      const resolved = path === "" ? file : join(dirname(file), decodeURIComponent(path));
      const where = `${relative(ROOT, file)}: ${target}`;
      try {
        await Deno.stat(resolved);
      } catch {
        broken.push(`${where} (no such file)`);
        continue;
      }
      if (
        anchor !== undefined && resolved.endsWith(".md") && !(await anchors(resolved)).has(anchor)
      ) {
        broken.push(`${where} (no such heading in ${relative(ROOT, resolved)})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
