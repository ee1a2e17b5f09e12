/**
 * Packaging: the systemd unit (checked by `systemd-analyze verify`, and its
 * credentials handed to the real CLI as systemd hands them over),
 * scripts/install.sh into a staging root, the Dockerfile, and the compile
 * task. That the compile task has exactly the start task's permission flags,
 * and that they suffice to replicate, is tested once, in
 * tests/operability_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { runCli } from "../testing/cli.ts";
import { makeCertificates, startTlsServer } from "../testing/tls.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UNIT_PATH = join(ROOT, "scripts", "redis-stream-sync.service");
const UNIT_NAME = "redis-stream-sync.service";
const INSTALL_SH = join(ROOT, "scripts", "install.sh");

// ---------------------------------------------------------------------------
// Helpers

/** Whether an executable named `name` is on PATH. */
function onPath(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter((d) => d)) {
    try {
      const info = Deno.statSync(join(dir, name));
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** Fails, naming what to run, when a tool that scripts/setup.sh installs is missing. */
function requireTool(name: string, pkg: string): void {
  assert.ok(
    onPath(name),
    `${name} is not on PATH: scripts/setup.sh installs it (Debian package ${pkg})`,
  );
}

/** A fresh temporary directory, removed on disposal. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-pkg-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Writes an executable shell script that prints a version, like the real binary's `--version`. */
async function fakeBinary(path: string): Promise<string> {
  await Deno.writeTextFile(path, '#!/bin/sh\necho "redis-stream-sync 0.0.0-fake"\n');
  await Deno.chmod(path, 0o755);
  return path;
}

/** Runs a program; returns its exit code and output. */
async function run(
  program: string,
  args: string[],
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(program, {
    args,
    cwd,
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The settings of a systemd unit: section -> key -> values (in order). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const at = line.indexOf("=");
    assert.ok(current && at > 0, `not a setting of a section: ${raw}`);
    const key = line.slice(0, at).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return sections;
}

/** The words of a deno.json task. */
function taskWords(task: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))) as {
    tasks: Record<string, string>;
  };
  const command = config.tasks[task];
  assert.equal(typeof command, "string", `deno.json has no "${task}" task`);
  // What follows `||` runs only when the command failed (the compile task's advice).
  return command.split("||")[0].trim().split(/\s+/);
}

/** The whole compile task, with what it runs after `||`. */
function compileTaskText(): string {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))) as {
    tasks: Record<string, string>;
  };
  return config.tasks.compile;
}

/**
 * Whether .dockerignore excludes `path`, as Docker reads it: each line a
 * pattern (`*` within a name, `**` across names) that matches the path or
 * one of its parents; a later line wins; `!` lets a path in again.
 */
function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((line) => {
      const negate = line.startsWith("!");
      const pattern = (negate ? line.slice(1) : line).replace(/^\/|\/$/g, "");
      const source = pattern.split("**").map((part) =>
        part.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")
      ).join(".*");
      return { negate, regex: new RegExp(`^${source}(/.*)?$`) };
    });
  return (path) => {
    let excluded = false;
    for (const rule of rules) if (rule.regex.test(path)) excluded = !rule.negate;
    return excluded;
  };
}

/** The value of `--output` (or `-o`) in the compile task. */
function compileOutput(): string {
  const words = taskWords("compile");
  const at = words.findIndex((w) => w === "--output" || w === "-o");
  if (at >= 0) return words[at + 1];
  const joined = words.find((w) => w.startsWith("--output="));
  assert.ok(joined, `the compile task has no --output: ${words.join(" ")}`);
  return joined.slice("--output=".length);
}

// ---------------------------------------------------------------------------
// systemd unit

Deno.test({
  name: "the systemd unit passes systemd-analyze verify and has the hardening and restart settings",
  fn: async () => {
    requireTool("systemd-analyze", "systemd");
    const text = await Deno.readTextFile(UNIT_PATH);
    const unit = parseUnit(text);
    const service = unit.get("Service");
    assert.ok(service, "no [Service] section");
    assert.deepEqual(service.get("Restart"), ["on-failure"]);
    assert.deepEqual(service.get("DynamicUser"), ["yes"]);
    assert.deepEqual(service.get("ProtectSystem"), ["strict"]);
    assert.deepEqual(service.get("NoNewPrivileges"), ["yes"]);
    // A configuration error (78) or bad usage (2) does not heal by restarting.
    assert.deepEqual(service.get("RestartPreventExitStatus")?.[0].split(/\s+/).sort(), ["2", "78"]);
    const [execStart] = service.get("ExecStart") ?? [];
    assert.ok(execStart, "no ExecStart");
    const [binary, ...args] = execStart.split(/\s+/);
    assert.equal(binary, "/usr/local/bin/redis-stream-sync");
    // env.conf, which may hold the passwords, is read from the copy systemd hands over.
    assert.deepEqual(args, ["run", "--config", "${CREDENTIALS_DIRECTORY}/env.conf"]);
    assert.deepEqual(service.get("LoadCredential"), ["env.conf:/etc/redis-stream-sync/env.conf"]);
    assert.deepEqual(unit.get("Install")?.get("WantedBy"), ["multi-user.target"]);

    await using dir = await tempDir();
    // The binary is not installed here: point ExecStart at a stand-in executable,
    // so that verify checks everything else of the unit.
    const fake = await fakeBinary(join(dir.path, "redis-stream-sync"));
    const lines = text.split("\n");
    const execLine = lines.findIndex((l) => l.startsWith("ExecStart="));
    lines[execLine] = lines[execLine].replace(binary, fake);
    const staged = join(dir.path, UNIT_NAME);
    await Deno.writeTextFile(staged, lines.join("\n"));
    const result = await run("systemd-analyze", ["verify", staged]);
    assert.equal(result.code, 0, result.stderr);
    // Unknown keys and unparsable values are only warnings (exit code 0): the
    // unit must get none.
    const warnings = (result.stdout + result.stderr).split("\n").filter((l) =>
      l.includes(UNIT_NAME)
    );
    assert.deepEqual(warnings, [], result.stderr);

    // The TLS key example, uncommented, is a valid unit too.
    const tls = join(dir.path, "tls", UNIT_NAME);
    await Deno.mkdir(join(dir.path, "tls"));
    await Deno.writeTextFile(tls, uncommentTls(lines.join("\n")));
    assert.equal(
      (parseUnit(uncommentTls(text)).get("Service")?.get("LoadCredential") ?? []).length,
      3,
    );
    const tlsResult = await run("systemd-analyze", ["verify", tls]);
    assert.equal(tlsResult.code, 0, tlsResult.stderr);
    assert.deepEqual(
      (tlsResult.stdout + tlsResult.stderr).split("\n").filter((l) => l.includes(UNIT_NAME)),
      [],
    );

    // The check above does see mistakes: the same unit with a misspelt key is warned about.
    const broken = join(dir.path, "broken", UNIT_NAME);
    await Deno.mkdir(join(dir.path, "broken"));
    await Deno.writeTextFile(broken, lines.join("\n").replace("\nRestart=", "\nRestrt="));
    const check = await run("systemd-analyze", ["verify", broken]);
    assert.match(check.stdout + check.stderr, /Unknown key 'Restrt'/);
  },
});

/** The unit with its TLS key example uncommented (its `#LoadCredential=` and `#Environment=` lines). */
function uncommentTls(text: string): string {
  return text.replace(/^#(LoadCredential|Environment)=/gm, "$1=");
}

Deno.test("the unit's credentials work with what the tool reads: env.conf with the passwords, and the TLS keys, read from $CREDENTIALS_DIRECTORY as systemd hands them over", async () => {
  await using certs = await makeCertificates();
  await using source = await startTlsServer(certs, {
    clientCerts: true,
    args: ["--requirepass", "source secret"],
  });
  await using target = await startTlsServer(certs, {
    clientCerts: true,
    args: ["--requirepass", "target secret"],
  });
  await using dir = await tempDir();
  // /etc/redis-stream-sync as the operator sets it up, every file root's, mode 0600.
  const etc = join(dir.path, "etc", "redis-stream-sync");
  await Deno.mkdir(join(etc, "tls"), { recursive: true });
  const side = (prefix: string, port: number, password: string) =>
    [
      `${prefix}_REDIS_HOST=127.0.0.1`,
      `${prefix}_REDIS_PORT=${port}`,
      `${prefix}_REDIS_PASSWORD='${password}'`,
      `${prefix}_REDIS_TLS=true`,
      `${prefix}_REDIS_TLS_CA_FILE=${certs.ca}`,
      `${prefix}_REDIS_TLS_CERT_FILE=${certs.clientCert}`,
      `${prefix}_REDIS_MAX_RETRIES=1`,
      `${prefix}_REDIS_BACKOFF_BASE=0.05`,
    ].join("\n");
  await Deno.writeTextFile(
    join(etc, "env.conf"),
    `${side("SOURCE", source.tlsPort, "source secret")}\n${
      side("TARGET", target.tlsPort, "target secret")
    }\nMETRICS_PORT=0\n`,
    { mode: 0o600 },
  );
  for (const name of ["source.key", "target.key"]) {
    await Deno.copyFile(certs.clientKey, join(etc, "tls", name));
    await Deno.chmod(join(etc, "tls", name), 0o600);
  }

  /** What the unit starts, as systemd would: credentials copied, %d and ${...} expanded. */
  const start = async (unitText: string, name: string) => {
    const service = parseUnit(unitText).get("Service")!;
    const credentials = join(dir.path, "credentials", name);
    await Deno.mkdir(credentials, { recursive: true, mode: 0o700 });
    for (const spec of service.get("LoadCredential") ?? []) {
      const [id, path] = spec.split(/:(.*)/s);
      assert.ok(path.startsWith("/etc/redis-stream-sync/"), `LoadCredential=${spec}`);
      await Deno.copyFile(
        join(etc, path.slice("/etc/redis-stream-sync/".length)),
        join(credentials, id),
      );
    }
    const expand = (value: string) =>
      value.replaceAll("%d", credentials).replaceAll("${CREDENTIALS_DIRECTORY}", credentials);
    const env: Record<string, string> = { CREDENTIALS_DIRECTORY: credentials };
    for (const assignment of service.get("Environment") ?? []) {
      const at = assignment.indexOf("=");
      env[assignment.slice(0, at)] = expand(assignment.slice(at + 1));
    }
    const [, command, ...args] = service.get("ExecStart")![0].split(/\s+/).map(expand);
    assert.equal(command, "run");
    // `check` instead of `run`: the same configuration, the same connections, and it ends.
    return await runCli(["check", ...args], { cwd: dir.path, env, timeoutMs: 60_000 });
  };

  const text = await Deno.readTextFile(UNIT_PATH);
  const withTls = await start(uncommentTls(text), "tls");
  assert.equal(withTls.code, 0, `${withTls.stdout}\n${withTls.stderr}`);
  assert.match(withTls.stdout, /^Configuration OK$/m);
  assert.match(withTls.stdout, /^Target "127\.0\.0\.1:\d+" answers/m);
  assert.match(withTls.stdout, /^Source "127\.0\.0\.1:\d+" answers/m);

  // As shipped (the TLS lines commented out), the key is missing: a configuration error.
  const withoutTls = await start(text, "plain");
  assert.equal(withoutTls.code, 78, `${withoutTls.stdout}\n${withoutTls.stderr}`);
  assert.match(withoutTls.stderr, /TLS_KEY_FILE must be set too/);
});

// ---------------------------------------------------------------------------
// install.sh

Deno.test("install.sh --destdir stages the binary, the unit and env.conf, and keeps an edited env.conf", async () => {
  await using dir = await tempDir();
  const binary = await fakeBinary(join(dir.path, "built-binary"));
  const root = join(dir.path, "root");

  const first = await run("bash", [INSTALL_SH, "--destdir", root, "--binary", binary]);
  assert.equal(first.code, 0, first.stderr);
  const installed = join(root, "usr/local/bin/redis-stream-sync");
  assert.equal(await Deno.readTextFile(installed), await Deno.readTextFile(binary));
  assert.equal((await Deno.stat(installed)).mode! & 0o777, 0o755);
  assert.match(first.stdout, /redis-stream-sync 0\.0\.0-fake/, "it runs the installed --version");
  assert.equal(
    await Deno.readTextFile(join(root, "etc/systemd/system", UNIT_NAME)),
    await Deno.readTextFile(UNIT_PATH),
    "with the default prefix the unit is installed unchanged",
  );
  const envConf = join(root, "etc/redis-stream-sync/env.conf");
  assert.equal(
    await Deno.readTextFile(envConf),
    await Deno.readTextFile(join(ROOT, "env.conf.example")),
  );
  // It may hold the passwords: the unit loads it as a credential, so root's alone may read it.
  assert.equal((await Deno.stat(envConf)).mode! & 0o777, 0o600, "env.conf may hold passwords");
  const environment = join(root, "etc/redis-stream-sync/environment");
  assert.equal((await Deno.stat(environment)).mode! & 0o777, 0o600, "environment holds passwords");
  // Nothing lands outside the staging root's usr/ and etc/.
  const top = [];
  for await (const entry of Deno.readDir(root)) top.push(entry.name);
  assert.deepEqual(top.sort(), ["etc", "usr"]);

  // A second run keeps the edited configuration and the environment file.
  const edited = (await Deno.readTextFile(envConf)) + "SOURCE_REDIS_HOST=10.1.2.3\n";
  await Deno.writeTextFile(envConf, edited);
  await Deno.writeTextFile(environment, "SOURCE_REDIS_PASSWORD=secret\n");
  const second = await run("bash", [INSTALL_SH, "--destdir", root, "--binary", binary]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /Kept the existing \/etc\/redis-stream-sync\/env\.conf/);
  assert.equal(await Deno.readTextFile(envConf), edited);
  assert.equal(await Deno.readTextFile(environment), "SOURCE_REDIS_PASSWORD=secret\n");

  // Another prefix: the unit's ExecStart follows it.
  const other = join(dir.path, "other");
  const third = await run("bash", [
    INSTALL_SH,
    "--destdir",
    other,
    "--binary",
    binary,
    "--prefix",
    "/opt/rss",
  ]);
  assert.equal(third.code, 0, third.stderr);
  await Deno.stat(join(other, "opt/rss/bin/redis-stream-sync"));
  const unit = parseUnit(await Deno.readTextFile(join(other, "etc/systemd/system", UNIT_NAME)));
  assert.deepEqual(unit.get("Service")?.get("ExecStart"), [
    "/opt/rss/bin/redis-stream-sync run --config ${CREDENTIALS_DIRECTORY}/env.conf",
  ]);

  // A missing binary is an error that says what to do.
  const missing = await run("bash", [
    INSTALL_SH,
    "--destdir",
    join(dir.path, "none"),
    "--binary",
    join(dir.path, "no-such-binary"),
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /deno task compile/);
});

// ---------------------------------------------------------------------------
// Dockerfile and the compile task

/** The instructions of a Dockerfile (continuation lines joined, comments dropped). */
function dockerInstructions(text: string): Array<{ op: string; args: string }> {
  const joined = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n").replace(
    /\\\n/g,
    " ",
  );
  return joined.split("\n").map((l) => l.trim()).filter((l) => l).map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(" ") };
  });
}

/** The source paths and the destination of a COPY (shell or JSON form), without its flags. */
function copyPaths(args: string): { flags: string[]; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const rest = words.filter((w) => !w.startsWith("--")).join(" ");
  const paths = rest.startsWith("[") ? JSON.parse(rest) as string[] : rest.split(/\s+/);
  return { flags, sources: paths.slice(0, -1), dest: paths[paths.length - 1] };
}

Deno.test("the Dockerfile builds with deno task compile in one stage and runs as non-root from distroless", async () => {
  const steps = dockerInstructions(await Deno.readTextFile(join(ROOT, "Dockerfile")));
  const froms = steps.map((s, i) => ({ ...s, i })).filter((s) => s.op === "FROM");
  assert.equal(froms.length, 2, "two stages");
  const [build, final] = froms;
  assert.match(build.args, /^\S+ AS build$/i);
  assert.match(final.args, /^(gcr\.io\/distroless\/\S+|scratch)$/);
  const buildSteps = steps.slice(build.i + 1, final.i);
  const finalSteps = steps.slice(final.i + 1);
  assert.ok(
    buildSteps.some((s) => s.op === "RUN" && /\bdeno task compile\b/.test(s.args)),
    "the build stage runs deno task compile",
  );
  const users = finalSteps.filter((s) => s.op === "USER");
  assert.equal(users.length, 1, "the final stage sets USER");
  assert.doesNotMatch(users[0].args, /^(root|0)(:|$)/);

  // Every path the build stage COPYs exists and is not excluded by .dockerignore.
  const ignore = dockerIgnore(await Deno.readTextFile(join(ROOT, ".dockerignore")));
  let copied = 0;
  const copiedPaths: string[] = [];
  for (const step of steps.filter((s) => s.op === "COPY")) {
    const { flags, sources } = copyPaths(step.args);
    if (flags.some((f) => f.startsWith("--from="))) continue;
    for (const source of sources) {
      const path = source.replace(/\/$/, "");
      await Deno.stat(join(ROOT, path)).catch(() => assert.fail(`COPY ${source}: not in the repo`));
      assert.ok(!ignore(path), `COPY ${source} is excluded by .dockerignore`);
      copiedPaths.push(path);
      copied++;
    }
  }
  // Every file of the repository that the compile task names (main.ts, the advice
  // script it runs when deno compile fails) is copied into the build stage.
  const compileFiles = compileTaskText().split(/\s+/).filter((w) => /\.ts$/.test(w));
  for (const file of compileFiles) {
    assert.ok(
      copiedPaths.some((p) => file === p || file.startsWith(`${p}/`)),
      `the compile task names ${file}, which the build stage does not COPY`,
    );
  }
  assert.ok(copied >= 3, `only ${copied} paths copied`);

  // The final stage takes the compile task's output from the build stage, and runs it.
  const workdir = buildSteps.filter((s) => s.op === "WORKDIR").at(-1)?.args ?? "/";
  const fromBuild = finalSteps.filter((s) => s.op === "COPY").map((s) => copyPaths(s.args))
    .find((c) => c.flags.includes("--from=build"));
  assert.ok(fromBuild, "no COPY --from=build");
  assert.deepEqual(fromBuild.sources, [join(workdir, compileOutput())]);
  const entrypoint = finalSteps.find((s) => s.op === "ENTRYPOINT");
  assert.ok(entrypoint, "no ENTRYPOINT");
  assert.deepEqual(JSON.parse(entrypoint.args), [fromBuild.dest]);
});

Deno.test("the image's HEALTHCHECK runs the binary's own health command in exec form (distroless has no shell)", async () => {
  const steps = dockerInstructions(await Deno.readTextFile(join(ROOT, "Dockerfile")));
  const final = steps.findLastIndex((s) => s.op === "FROM");
  const finalSteps = steps.slice(final + 1);
  const checks = finalSteps.filter((s) => s.op === "HEALTHCHECK");
  assert.equal(checks.length, 1, "the final stage has one HEALTHCHECK");
  const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(checks[0].args);
  assert.ok(m, `HEALTHCHECK must be "[--option=value...] CMD [...]": ${checks[0].args}`);
  const options = Object.fromEntries(
    m[1].trim().split(/\s+/).filter((o) => o).map((o) => o.slice(2).split("=")),
  );
  // The JSON (exec) form: the shell form needs /bin/sh, which distroless does not have.
  const command = JSON.parse(m[2]) as string[];
  const entrypoint = JSON.parse(finalSteps.find((s) => s.op === "ENTRYPOINT")!.args) as string[];
  assert.deepEqual(command, [entrypoint[0], "health"]);
  // `health` gives up after 5 s of its own: Docker's timeout must leave it that time.
  const seconds = (value: string) => Number(/^(\d+)s$/.exec(value)?.[1] ?? NaN);
  assert.ok(seconds(options.timeout) > 5, `--timeout=${options.timeout} must be above 5s`);
  assert.ok(
    seconds(options.interval) >= seconds(options.timeout),
    `--interval=${options.interval}`,
  );
  // The health command asks METRICS_HOST:METRICS_PORT: the image's listener is on every
  // address, which the command asks on 127.0.0.1 (tests/health_test.ts runs it so).
  assert.ok(
    finalSteps.some((s) => s.op === "ENV" && /^METRICS_HOST=0\.0\.0\.0$/.test(s.args)),
    "ENV METRICS_HOST=0.0.0.0",
  );
});

Deno.test("the compile task builds main.ts into dist/redis-stream-sync", () => {
  const words = taskWords("compile");
  assert.deepEqual(words.slice(0, 2), ["deno", "compile"]);
  assert.equal(compileOutput(), "dist/redis-stream-sync");
  assert.equal(words.at(-1), "main.ts");
  // Its permission flags are those of the start task: asserted (and exercised)
  // in tests/operability_test.ts, "the compile task has the start task's permission flags...".
});

/** Whether `command version` runs and succeeds (a front end that is there but broken does not). */
async function compose(command: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(command[0], {
      args: [...command.slice(1), "version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false; // Not installed.
  }
}

/**
 * The Compose front end that really works here: Debian's `docker-compose`, or
 * the docker CLI's `docker compose` plugin. A docker CLI without the plugin
 * says "docker: unknown command: docker compose": it is passed over.
 */
async function composeFrontEnd(): Promise<string[]> {
  for (const command of [["docker-compose"], ["docker", "compose"]]) {
    if (await compose(command)) return command;
  }
  assert.fail(
    "No Compose front end works here (neither `docker-compose version` nor `docker compose version`): " +
      "scripts/setup.sh installs Debian's docker-compose",
  );
}

/** `config` of compose.yaml in `dir`, by the Compose front end that works here. */
async function composeConfig(
  dir: string,
  args: string[],
  env: Record<string, string>,
): Promise<string> {
  const command = await composeFrontEnd();
  const out = await new Deno.Command(command[0], {
    args: [...command.slice(1), ...args, "config"],
    cwd: dir,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(
    out.success,
    `${command.join(" ")} config failed:\n${new TextDecoder().decode(out.stderr)}`,
  );
  return text;
}

Deno.test("compose.yaml keeps the seed's services, mounts env.conf, and names the image ${REGISTRY}/redis-stream-sync:${TAG}", async () => {
  const text = await Deno.readTextFile(join(ROOT, "compose.yaml"));
  const compose = parseYaml(text) as {
    services: Record<
      string,
      { image?: string; build?: unknown; volumes?: string[]; command?: string[] }
    >;
  };
  assert.deepEqual(Object.keys(compose.services).sort(), [
    "redis-to-redis-sync",
    "source-redis",
    "target-redis",
  ]);
  const sync = compose.services["redis-to-redis-sync"];
  assert.match(
    sync.image ?? "",
    /^\$\{REGISTRY(:-[^}]*)?\}\/redis-stream-sync:\$\{TAG(:-[^}]*)?\}$/,
  );
  assert.equal(sync.build, ".");
  // The image reads /config/env.conf (its working directory's env.conf, see the Dockerfile).
  assert.ok(sync.volumes?.includes("./env.conf:/config/env.conf:ro"), String(sync.volumes));
  const dockerfile = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  assert.match(dockerfile, /^WORKDIR \/config$/m);
  // The example env.conf's hosts are the two server services.
  const example = await Deno.readTextFile(join(ROOT, "env.conf.example"));
  assert.match(example, /^SOURCE_REDIS_HOST=source-redis\b/m);
  assert.match(example, /^TARGET_REDIS_HOST=target-redis\b/m);

  // Validated by Compose itself (Debian's docker-compose, which scripts/setup.sh installs).
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-compose-" });
  try {
    await Deno.copyFile(join(ROOT, "compose.yaml"), join(dir, "compose.yaml"));
    await Deno.writeTextFile(
      join(dir, "env.conf"),
      example.replace(/^REGISTRY=.*$/m, "REGISTRY=reg.example:5000").replace(/^TAG=.*$/m, "TAG=v7"),
    );
    const env = { PATH: Deno.env.get("PATH") ?? "", HOME: dir };
    const fromEnv = await composeConfig(dir, [], { ...env, REGISTRY: "r.example", TAG: "v2" });
    assert.match(fromEnv, /image: r\.example\/redis-stream-sync:v2$/m);
    const fromFile = await composeConfig(dir, ["--env-file", "env.conf"], env);
    assert.match(fromFile, /image: reg\.example:5000\/redis-stream-sync:v7$/m);
    assert.match(fromFile, /env\.conf:\/config\/env\.conf:ro/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
