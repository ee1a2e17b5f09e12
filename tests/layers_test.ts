/**
 * The layout of lib/: layers as folders (config, redis, replication, ops,
 * from the bottom up), each behind one door (`mod.ts`). Read from the
 * imports of the source files themselves.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LAYERS = ["config", "redis", "replication", "ops"];
const SHARED = ["backoff.ts", "errors.ts", "log.ts", "log_format.ts"];

/** Every `.ts` file below `dir` (relative to the repository). */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sources(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The relative modules a file imports or re-exports, as paths relative to the repository. */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(join(ROOT, file));
  const specs = [...text.matchAll(/(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"/gs)]
    .map((m) => m[1]);
  return specs.map((s) => relative(ROOT, normalize(join(ROOT, dirname(file), s))));
}

/** The layer a repository path is in (`lib/<layer>/...`), or undefined. */
function layerOf(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "lib" && parts.length > 2 ? parts[1] : undefined;
}

Deno.test("every layer of lib/ has a door, mod.ts, and the files outside a layer reach it only through that door", () => {
  for (const layer of LAYERS) {
    assert.ok(Deno.statSync(join(ROOT, "lib", layer, "mod.ts")).isFile, `lib/${layer}/mod.ts`);
  }
  const outside: string[] = [];
  for (const file of [...sources("lib"), "main.ts", "mod.ts", ...sources("scripts")]) {
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (to === undefined || to === layerOf(file)) continue;
      if (target !== `lib/${to}/mod.ts`) outside.push(`${file} imports ${target}`);
    }
  }
  assert.deepEqual(outside, [], "imports that pass a layer's door");
});

Deno.test("a lower layer never imports a higher one, and the shared files at the top of lib/ import no layer", () => {
  const wrong: string[] = [];
  for (const file of sources("lib")) {
    const from = layerOf(file);
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (to === undefined) continue;
      if (from === undefined) wrong.push(`${file} (shared) imports ${target}`);
      else if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) wrong.push(`${file} imports ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
  for (const name of SHARED) assert.ok(Deno.statSync(join(ROOT, "lib", name)).isFile, name);
});

Deno.test("a door exports only what its layer's files define: every name it re-exports exists", async () => {
  for (const layer of LAYERS) {
    const door = await import(join(ROOT, "lib", layer, "mod.ts"));
    for (const [name, value] of Object.entries(door)) {
      assert.notEqual(value, undefined, `lib/${layer}/mod.ts exports ${name} as undefined`);
    }
  }
});
