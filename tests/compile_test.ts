/**
 * `deno task compile`: what it depends on, tested without the internet.
 *
 * `deno compile` embeds the program in Deno's runtime (denort), which it
 * downloads once; the tests cannot download it, so they check the rest: that
 * the task gets through the type check and the embedding with a base binary
 * given by DENORT_BIN, and that, when no runtime can be had, it says how to
 * build offline. The permissions of the compiled program are those of the
 * start task (tests/operability_test.ts runs main.ts with them).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileAdvice, denortLocations } from "../scripts/compile_failed.ts";
import { freePort } from "../testing/redis.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A copy of what the Dockerfile's build stage copies, plus the advice script: removed on disposal. */
async function buildDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-compile-" });
  const copy = async (from: string) => {
    await new Deno.Command("cp", { args: ["-r", join(ROOT, from), join(path, from)] }).output();
  };
  await Deno.mkdir(join(path, "scripts"));
  for (
    const name of [
      "deno.json",
      "deno.lock",
      "main.ts",
      "mod.ts",
      "lib",
      "scripts/compile_failed.ts",
    ]
  ) {
    await copy(name);
  }
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

function inherited(names: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function compileTask(
  dir: string,
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile"],
    cwd: dir,
    // Only what Deno needs to find itself and its cache: no DENORT_BIN or proxy of the caller's.
    clearEnv: true,
    env: { ...inherited(["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]), NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stderr: text(out.stderr) + text(out.stdout) };
}

Deno.test("deno task compile gets through the type check and embeds the program in the base binary DENORT_BIN names", async () => {
  await using dir = await buildDir();
  // Deno's own binary as the base: it cannot run the program, but it proves
  // everything before the runtime (flags, graph, npm packages, type check, embedding).
  const base = Deno.execPath();
  const result = await compileTask(dir.path, { DENORT_BIN: base });
  assert.equal(result.code, 0, result.stderr);
  const output = await Deno.stat(join(dir.path, "dist", "redis-stream-sync"));
  const baseSize = (await Deno.stat(base)).size;
  assert.ok(
    output.size > baseSize + 100_000,
    `dist/redis-stream-sync has ${output.size} bytes, the base ${baseSize}: nothing embedded`,
  );
  assert.ok(((output.mode ?? 0) & 0o111) !== 0, "dist/redis-stream-sync is not executable");
});

Deno.test("deno task compile with DENORT_BIN naming no file fails, and says so with the path", async () => {
  await using dir = await buildDir();
  const missing = join(dir.path, "no-such-denort");
  const result = await compileTask(dir.path, { DENORT_BIN: missing });
  assert.notEqual(result.code, 0, result.stderr);
  assert.match(result.stderr, /deno compile failed/);
  assert.ok(
    result.stderr.includes(`DENORT_BIN is set to "${missing}", which is not a file`),
    result.stderr,
  );
});

Deno.test("deno task compile without internet and without a cached runtime says how to build offline", async () => {
  await using dir = await buildDir();
  // The download goes through a proxy on a loopback port where nothing listens: it fails
  // at once, and no traffic leaves the machine. (Where denort is already cached, the
  // compile succeeds instead: then the binary is there.)
  const closed = `http://127.0.0.1:${freePort()}`;
  const result = await compileTask(dir.path, { HTTPS_PROXY: closed, HTTP_PROXY: closed });
  const { cached, url } = denortLocations(await denoDir(), {
    version: Deno.version.deno,
    target: Deno.build.target,
  });
  if (result.code === 0) {
    assert.ok((await Deno.stat(cached)).isFile, `compiled, but ${cached} is not there`);
    return;
  }
  for (const want of [url, `"${cached}"`, "DENORT_BIN=", "deno compile failed"]) {
    assert.ok(result.stderr.includes(want), `no "${want}" in:\n${result.stderr}`);
  }
});

Deno.test("the compile advice names the cause it can see: a DENORT_BIN that is no file, a runtime in the cache, none", () => {
  const where = denortLocations("/home/u/.cache/deno", {
    version: "2.9.6",
    target: "x86_64-unknown-linux-gnu",
  });
  assert.equal(
    where.cached,
    "/home/u/.cache/deno/dl/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  );
  assert.equal(
    where.url,
    "https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  );
  const none = compileAdvice(undefined, { ...where, cachedExists: false, binIsFile: false });
  assert.match(none, /DENORT_BIN=\/opt\/denort\/denort deno task compile/);
  assert.ok(none.includes(`mkdir -p "/home/u/.cache/deno/dl/release/v2.9.6"`), none);
  const cached = compileAdvice(undefined, { ...where, cachedExists: true, binIsFile: false });
  assert.match(cached, /is in the cache/);
  assert.doesNotMatch(cached, /DENORT_BIN=/);
  const notFile = compileAdvice("/x/denort", { ...where, cachedExists: false, binIsFile: false });
  assert.match(notFile, /DENORT_BIN is set to "\/x\/denort", which is not a file/);
  const wrong = compileAdvice("/x/denort", { ...where, cachedExists: false, binIsFile: true });
  assert.match(wrong, /must be the denort of this Deno/);
});

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}
