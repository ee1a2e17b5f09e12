/**
 * End-to-end tests of the command line: main.ts run as a subprocess with the
 * permission flags of the `start` task (testing/cli.ts), against real
 * `redis-server` processes (testing/redis.ts). No mocks.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { type CliResult, runCli, spawnCli, writeConfig } from "../testing/cli.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import { SEED_ENV_CONF } from "./_fixtures.ts";

/** A password no test output may ever show. */
const SECRET = "s3cr3t-Hunter2-7f1c";
/** A wrong password, which must not be shown either. */
const WRONG_PASSWORD = "wr0ng-Passw0rd-9e2d";

/** Kills a test that hangs instead of letting it reach runCli's 60 s default. */
const TIMEOUT_MS = 30_000;

/** A fresh temporary directory, removed on disposal: a cwd without (or with our own) env.conf. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-cli-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** The environment that points the service at `source` and `target`. */
function serversEnv(
  source: { host: string; port: number },
  target: { host: string; port: number },
): Record<string, string> {
  return {
    SOURCE_REDIS_HOST: source.host,
    SOURCE_REDIS_PORT: String(source.port),
    TARGET_REDIS_HOST: target.host,
    TARGET_REDIS_PORT: String(target.port),
  };
}

/**
 * Servers that refuse connections and no retries: if a validation that
 * should stop `check` lets it through, the test fails fast with exit 69.
 */
function unreachableEnv(): Record<string, string> {
  return {
    ...serversEnv(
      { host: "127.0.0.1", port: freePort() },
      { host: "127.0.0.1", port: freePort() },
    ),
    SOURCE_REDIS_MAX_RETRIES: "0",
    TARGET_REDIS_MAX_RETRIES: "0",
  };
}

/** The problems listed under "Configuration error:" on stderr. */
function configProblems(stderr: string): string[] {
  const at = stderr.indexOf("Configuration error:\n");
  assert.ok(at >= 0, `no "Configuration error:" on stderr:\n${stderr}`);
  const problems: string[] = [];
  for (const line of stderr.slice(at).split("\n").slice(1)) {
    if (!line.startsWith("  - ")) break;
    problems.push(line.slice(4));
  }
  return problems;
}

/** What the program printed, for assertion messages. */
function output(result: CliResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** The value of `KEY=` in `--print-config` output. */
function printedValue(stdout: string, key: string): string | undefined {
  const line = stdout.split("\n").find((l) => l.startsWith(`${key}=`));
  return line?.slice(key.length + 1);
}

// ---------------------------------------------------------------------------
// Validation: one bad value at a time, exit 78, a message naming key, value and expectation

interface ValidationCase {
  /** The bad settings (environment variables). */
  env: Record<string, string>;
  /** Extra arguments, e.g. a bad flag. */
  args?: string[];
  /** The command: `check` or `--print-config` (neither needs a server when the config is bad). */
  command: "check" | "--print-config";
  /** The whole problem line, exactly. */
  problem: string;
}

const VALIDATION_CASES: readonly ValidationCase[] = [
  {
    env: { SOURCE_REDIS_POOL_SIZE: "0" },
    command: "check",
    problem: 'SOURCE_REDIS_POOL_SIZE must be an integer >= 1: got "0" (from the environment)',
  },
  {
    env: { TARGET_REDIS_PORT: "70000" },
    command: "--print-config",
    problem:
      'TARGET_REDIS_PORT must be an integer from 1 to 65535: got "70000" (from the environment)',
  },
  {
    env: { SOURCE_REDIS_MAX_RETRIES: "-1" },
    command: "check",
    problem: 'SOURCE_REDIS_MAX_RETRIES must be an integer >= 0: got "-1" (from the environment)',
  },
  {
    env: { STREAM_BATCH_SIZE: "0" },
    command: "--print-config",
    problem:
      'STREAM_BATCH_SIZE must be an integer from 1 to 100000: got "0" (from the environment)',
  },
  {
    env: { STREAM_POLL_INTERVAL: "0" },
    command: "check",
    problem: 'STREAM_POLL_INTERVAL must be a number of seconds > 0: got "0" (from the environment)',
  },
  {
    env: { SOURCE_REDIS_BACKOFF_BASE: "5", SOURCE_REDIS_BACKOFF_MAX: "2" },
    command: "check",
    problem: "SOURCE_REDIS_BACKOFF_BASE must be <= SOURCE_REDIS_BACKOFF_MAX: " +
      'got "5" (from the environment) and "2" (from the environment)',
  },
  {
    env: { SOURCE_REDIS_DB: "16" },
    command: "--print-config",
    problem: 'SOURCE_REDIS_DB must be a DB number from 0 to 15: got "16" (from the environment)',
  },
  {
    env: { TARGET_REDIS_DB: "16" },
    command: "check",
    problem:
      'TARGET_REDIS_DB must be a DB number from 0 to 15, or "same": got "16" (from the environment)',
  },
  {
    env: { REDIS_DB_SEARCH_RANGE: "3-1" },
    command: "check",
    problem: "REDIS_DB_SEARCH_RANGE must be DB numbers from 0 to 15 and ascending ranges, " +
      'like "0-15", "0,1,5" or "0-3,7": got "3-1", where "3-1" is not ascending ' +
      "(from the environment)",
  },
  {
    env: { REDIS_DB_SEARCH_RANGE: "a-b" },
    command: "--print-config",
    problem: "REDIS_DB_SEARCH_RANGE must be DB numbers from 0 to 15 and ascending ranges, " +
      'like "0-15", "0,1,5" or "0-3,7": got "a-b", where "a-b" is not a DB number or range ' +
      "(from the environment)",
  },
  {
    env: { REDIS_STREAMS: "db99:x" },
    command: "check",
    problem: 'REDIS_STREAMS must be a comma-separated list of "key" or "dbN:key" with N from 0 ' +
      'to 15: got "db99:x", where "db99:x" names DB 99 (from the environment)',
  },
  {
    env: { REDIS_STREAMS_ENABLED: "maybe" },
    command: "--print-config",
    problem: "REDIS_STREAMS_ENABLED must be true or false (or 1/0, yes/no, on/off): " +
      'got "maybe" (from the environment)',
  },
  {
    env: { LOG_LEVEL: "LOUD" },
    command: "check",
    problem: "LOG_LEVEL must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL: " +
      'got "LOUD" (from the environment)',
  },
  {
    env: {},
    args: ["--log-level", "LOUD"],
    command: "--print-config",
    problem:
      '--log-level must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL: got "LOUD"',
  },
  {
    env: { STREAM_START_ID: "abc" },
    command: "check",
    problem: 'STREAM_START_ID must be "0", "$" or a stream ID like "1700000000000-0": ' +
      'got "abc" (from the environment)',
  },
];

for (const { env, args = [], command, problem } of VALIDATION_CASES) {
  const setting = Object.entries(env).map(([key, value]) => `${key}=${value}`).join(" ") ||
    args.join(" ");
  Deno.test(`${command} exits 78 and names the key, value and expectation for ${setting}`, async () => {
    await using dir = await tempDir();
    const result = await runCli([command, ...args], {
      cwd: dir.path,
      env: { ...unreachableEnv(), ...env },
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(result.code, 78, output(result));
    assert.deepEqual(configProblems(result.stderr), [problem], output(result));
    assert.equal(result.stdout, "", "nothing is printed on stdout when the config is invalid");
  });
}

Deno.test("check reports every bad key of env.conf and the environment in one run", async () => {
  await using dir = await tempDir();
  const file = await writeConfig(
    dir.path,
    "# bad values\nSOURCE_REDIS_POOL_SIZE=0\nTARGET_REDIS_DB=16\n" +
      "STREAM_BATCH_SIZE=0 # too small\nLOG_LEVEL=LOUD\n",
  );
  const result = await runCli(["check", "--config", file], {
    cwd: dir.path,
    env: { ...unreachableEnv(), STREAM_START_ID: "abc", REDIS_DB_SEARCH_RANGE: "3-1" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 78, output(result));
  const problems = configProblems(result.stderr);
  const expected = [
    `SOURCE_REDIS_POOL_SIZE must be an integer >= 1: got "0" (${file} line 2)`,
    `TARGET_REDIS_DB must be a DB number from 0 to 15, or "same": got "16" (${file} line 3)`,
    `STREAM_BATCH_SIZE must be an integer from 1 to 100000: got "0" (${file} line 4)`,
    `STREAM_START_ID must be "0", "$" or a stream ID like "1700000000000-0": got "abc" ` +
    "(from the environment)",
    'got "3-1", where "3-1" is not ascending (from the environment)',
    `got "LOUD" (${file} line 5)`,
  ];
  assert.equal(problems.length, expected.length, output(result));
  for (const part of expected) {
    assert.ok(problems.some((p) => p.includes(part)), `missing problem ${part}\n${output(result)}`);
  }
});

// ---------------------------------------------------------------------------
// The config file

Deno.test("--config with a missing file exits 78 and names the file", async () => {
  await using dir = await tempDir();
  const result = await runCli(["check", "--config", "missing.conf"], {
    cwd: dir.path,
    env: unreachableEnv(),
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 78, output(result));
  assert.deepEqual(configProblems(result.stderr), ['Config file "missing.conf" not found']);
});

Deno.test("no --config and no ./env.conf runs on the defaults", async () => {
  await using dir = await tempDir();
  const result = await runCli(["--print-config"], { cwd: dir.path, timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 0, output(result));
  assert.equal(result.stderr, "", output(result));
  assert.equal(printedValue(result.stdout, "SOURCE_REDIS_HOST"), "source-redis");
  assert.equal(printedValue(result.stdout, "TARGET_REDIS_HOST"), "target-redis");
  assert.equal(printedValue(result.stdout, "LOG_LEVEL"), "INFO");
});

Deno.test("the log level comes from --log-level, then LOG_LEVEL, then ./env.conf, then the default", async () => {
  await using withFile = await tempDir();
  await writeConfig(withFile.path, "LOG_LEVEL=ERROR\n");
  await using withoutFile = await tempDir();
  const printed = async (cwd: string, args: string[], env: Record<string, string>) => {
    const result = await runCli(["--print-config", ...args], { cwd, env, timeoutMs: TIMEOUT_MS });
    assert.equal(result.code, 0, output(result));
    return printedValue(result.stdout, "LOG_LEVEL");
  };
  const [flag, environment, file, defaults] = await Promise.all([
    printed(withFile.path, ["--log-level", "debug"], { LOG_LEVEL: "WARNING" }),
    printed(withFile.path, [], { LOG_LEVEL: "warn" }),
    printed(withFile.path, [], {}),
    printed(withoutFile.path, [], {}),
  ]);
  assert.equal(flag, "DEBUG");
  assert.equal(environment, "WARNING");
  assert.equal(file, "ERROR");
  assert.equal(defaults, "INFO");
});

Deno.test("an unknown key in env.conf warns with the nearest key and still exits 0", async () => {
  await using dir = await tempDir();
  await writeConfig(dir.path, "STREAM_BATCH_SIZE=50\nSTREAM_BACH_SIZE=5\n");
  const result = await runCli(["--print-config"], { cwd: dir.path, timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 0, output(result));
  assert.match(
    result.stderr,
    /WARNING - Unknown key "STREAM_BACH_SIZE" in env\.conf \(line 2\): did you mean "STREAM_BATCH_SIZE"\?/,
  );
  assert.equal(printedValue(result.stdout, "STREAM_BATCH_SIZE"), "50");
});

Deno.test("check exits 0 with the seed's env.conf, hosts and ports from the environment", async () => {
  await using source = await RedisServer.start();
  // A target that keeps its data: check has nothing to warn about.
  await using target = await RedisServer.start({ appendOnly: true });
  await using dir = await tempDir();
  await writeConfig(dir.path, SEED_ENV_CONF);
  const env = serversEnv(source, target);
  // A stream the seed's patterns find: with none, check warns that nothing would be copied.
  await using src = await connect(source);
  await src.send(["XADD", "orders-stream", "*", "n", "1"]);
  await using empty = await tempDir();
  const [check, seedConfig, defaultConfig] = await Promise.all([
    runCli(["check"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS }),
    runCli(["--print-config"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS }),
    runCli(["--print-config"], { cwd: empty.path, env, timeoutMs: TIMEOUT_MS }),
  ]);
  assert.equal(check.code, 0, output(check));
  assert.match(check.stdout, /^Configuration OK$/m);
  assert.equal(check.stderr, "", output(check));
  // The seed's values are the defaults: its inline comments and trailing spaces are not values.
  assert.equal(seedConfig.code, 0, output(seedConfig));
  assert.equal(seedConfig.stderr, "", output(seedConfig));
  assert.equal(seedConfig.stdout, defaultConfig.stdout);
});

// ---------------------------------------------------------------------------
// Secrets

Deno.test("--print-config shows passwords as *** and never the password", async () => {
  await using dir = await tempDir();
  await writeConfig(dir.path, `TARGET_REDIS_PASSWORD='${SECRET}'\n`);
  const result = await runCli(["--print-config"], {
    cwd: dir.path,
    env: { SOURCE_REDIS_PASSWORD: SECRET, LOG_LEVEL: "DEBUG" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 0, output(result));
  assert.equal(printedValue(result.stdout, "SOURCE_REDIS_PASSWORD"), "***");
  assert.equal(printedValue(result.stdout, "TARGET_REDIS_PASSWORD"), "***");
  assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET), output(result));
});

Deno.test("check with the right password at DEBUG level never prints the password", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using target = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using dir = await tempDir();
  const result = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv(source, target),
      SOURCE_REDIS_PASSWORD: SECRET,
      TARGET_REDIS_PASSWORD: SECRET,
      LOG_LEVEL: "DEBUG",
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 0, output(result));
  assert.match(result.stdout, new RegExp(`Source "127\\.0\\.0\\.1:${source.port}" answers`));
  assert.ok(!result.stdout.includes(SECRET), output(result));
  assert.ok(!result.stderr.includes(SECRET), output(result));
});

Deno.test("check with a wrong password exits 78, says authentication failed, hides the password", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  const result = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv(source, target),
      SOURCE_REDIS_PASSWORD: WRONG_PASSWORD,
      // A refused password is fatal at once: retrying it would be a bug (and slow here).
      SOURCE_REDIS_MAX_RETRIES: "3",
      SOURCE_REDIS_BACKOFF_BASE: "0.1",
      SOURCE_REDIS_BACKOFF_MAX: "0.2",
      LOG_LEVEL: "DEBUG",
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 78, output(result));
  assert.match(
    result.stderr,
    new RegExp(`Authentication to source "127\\.0\\.0\\.1:${source.port}" failed`),
  );
  assert.doesNotMatch(result.stderr, /retry \d/, "a refused password is not retried");
  for (const text of [result.stdout, result.stderr]) {
    assert.ok(!text.includes(WRONG_PASSWORD), output(result));
    assert.ok(!text.includes(SECRET), output(result));
  }
});

// ---------------------------------------------------------------------------
// Log formats

Deno.test("--log-format json writes one JSON object per line, with no password", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  await using cli = spawnCli(["run", "--log-format", "json"], {
    cwd: dir.path,
    env: {
      ...serversEnv(source, target),
      SOURCE_REDIS_PASSWORD: SECRET,
      REDIS_STREAMS_ENABLED: "false",
      LOG_LEVEL: "DEBUG",
      LOG_FORMAT: "%(levelname)s|%(message)s",
    },
    timeoutMs: TIMEOUT_MS,
  });
  await cli.waitForOutput(/Stream processing is disabled/);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, output(result));
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.ok(lines.length >= 3, output(result));
  const records = lines.map((line) => {
    const record = JSON.parse(line);
    assert.equal(typeof record, "object", line);
    assert.ok(record !== null && !Array.isArray(record), line);
    assert.ok(!Number.isNaN(Date.parse(record.time)), `bad time in ${line}`);
    assert.ok(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].includes(record.level), line);
    assert.match(record.logger, /^redis-stream-sync\.\w+$/, line);
    assert.equal(typeof record.message, "string", line);
    return record;
  });
  assert.ok(
    records.some((r) =>
      r.logger === "redis-stream-sync.main" && r.level === "INFO" &&
      r.message.includes(`source 127.0.0.1:${source.port}`)
    ),
    output(result),
  );
  assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET), output(result));
});

Deno.test("the seed's LOG_FORMAT renders Python-style lines", async () => {
  await using dir = await tempDir();
  await writeConfig(dir.path, "LOG_FORMAT=%(asctime)s - %(name)s - %(levelname)s - %(message)s\n");
  const env = unreachableEnv();
  const result = await runCli(["run"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 69, output(result));
  const line = new RegExp(
    String.raw`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - redis-stream-sync\.main - INFO - ` +
      String.raw`redis-stream-sync ${denoJson.version.replaceAll(".", "\\.")} starting: ` +
      String
        .raw`source 127\.0\.0\.1:${env.SOURCE_REDIS_PORT}, target 127\.0\.0\.1:${env.TARGET_REDIS_PORT}$`,
    "m",
  );
  assert.match(result.stderr, line);
});

Deno.test("a custom LOG_FORMAT renders %(levelname)s|%(message)s", async () => {
  await using dir = await tempDir();
  const env = { ...unreachableEnv(), LOG_FORMAT: "%(levelname)s|%(message)s" };
  const result = await runCli(["run"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 69, output(result));
  assert.match(result.stderr, /^INFO\|redis-stream-sync \S+ starting: source 127\.0\.0\.1:\d+/m);
  const logLines = result.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("Error: "));
  for (const line of logLines) assert.match(line, /^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\|/);
});

// ---------------------------------------------------------------------------
// Connectivity

Deno.test("check exits 0 against live servers and names both", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  const result = await runCli(["check"], {
    cwd: dir.path,
    env: { ...serversEnv(source, target), TARGET_REDIS_DB: "3", REDIS_DB_SEARCH_RANGE: "0-2" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 0, output(result));
  assert.match(result.stdout, /^Configuration OK$/m);
  assert.match(
    result.stdout,
    new RegExp(`^Target "127\\.0\\.0\\.1:${target.port}" answers \\(Redis [\\d.]+\\), DB 3$`, "m"),
  );
  assert.match(
    result.stdout,
    new RegExp(
      `^Source "127\\.0\\.0\\.1:${source.port}" answers \\(Redis [\\d.]+\\), DBs 0,1,2$`,
      "m",
    ),
  );
});

Deno.test("check exits 69 when the target port is closed, after the configured retries", async () => {
  await using source = await RedisServer.start();
  await using dir = await tempDir();
  const port = freePort();
  const result = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv(source, { host: "127.0.0.1", port }),
      TARGET_REDIS_MAX_RETRIES: "2",
      TARGET_REDIS_BACKOFF_BASE: "0.1",
      TARGET_REDIS_BACKOFF_MAX: "0.2",
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 69, output(result));
  assert.match(
    result.stderr,
    new RegExp(
      `^Error: Cannot connect to target "127\\.0\\.0\\.1:${port}" after 3 attempts: connection refused$`,
      "m",
    ),
  );
  assert.equal(result.stderr.match(/retry \d of 2/g)?.length, 2, output(result));
  assert.doesNotMatch(result.stdout, /Configuration OK/);
});

Deno.test("check exits 69 when the source port is closed, after the configured retries", async () => {
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  const port = freePort();
  const result = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv({ host: "127.0.0.1", port }, target),
      SOURCE_REDIS_MAX_RETRIES: "2",
      SOURCE_REDIS_BACKOFF_BASE: "0.1",
      SOURCE_REDIS_BACKOFF_MAX: "0.2",
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 69, output(result));
  assert.match(
    result.stderr,
    new RegExp(
      `^Error: Cannot connect to source "127\\.0\\.0\\.1:${port}" after 3 attempts: connection refused$`,
      "m",
    ),
  );
  assert.equal(result.stderr.match(/retry \d of 2/g)?.length, 2, output(result));
});

// ---------------------------------------------------------------------------
// Usage

Deno.test("--help exits 0 and lists the commands and exit codes", async () => {
  const result = await runCli(["--help"], { timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 0, output(result));
  assert.match(result.stdout, /^Usage: redis-stream-sync/m);
  for (const command of ["run", "check"]) {
    assert.match(result.stdout, new RegExp(`^  ${command} +\\S`, "m"), `command ${command}`);
  }
  for (const code of [0, 1, 2, 69, 78]) {
    assert.match(result.stdout, new RegExp(`^  ${code} +\\S`, "m"), `exit code ${code}`);
  }
  assert.equal(result.stderr, "");
});

Deno.test("--version prints the version of deno.json", async () => {
  const result = await runCli(["--version"], { timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 0, output(result));
  assert.equal(result.stdout, `redis-stream-sync ${denoJson.version}\n`);
});

Deno.test("an unknown command exits 2", async () => {
  const result = await runCli(["frobnicate"], { timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 2, output(result));
  assert.match(result.stderr, /Unknown command "frobnicate": expected one of run, check/);
  assert.match(result.stderr, /--help/);
});

Deno.test("an unknown flag exits 2", async () => {
  await using dir = await tempDir();
  const result = await runCli(["check", "--frobnicate"], {
    cwd: dir.path,
    env: unreachableEnv(),
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 2, output(result));
  assert.match(result.stderr, /Unknown option '--frobnicate'/);
  assert.match(result.stderr, /--help/);
});

Deno.test("--once with check exits 2", async () => {
  await using dir = await tempDir();
  const result = await runCli(["check", "--once"], {
    cwd: dir.path,
    env: unreachableEnv(),
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 2, output(result));
  assert.match(result.stderr, /The flag --once does not apply to the "check" command/);
});

// ---------------------------------------------------------------------------
// run

Deno.test("run with REDIS_STREAMS_ENABLED=false idles and exits 0 on SIGTERM", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  await using cli = spawnCli(["run"], {
    cwd: dir.path,
    env: { ...serversEnv(source, target), REDIS_STREAMS_ENABLED: "false" },
    timeoutMs: TIMEOUT_MS,
  });
  await cli.waitForOutput(/Stream processing is disabled \(REDIS_STREAMS_ENABLED=false\)/);
  assert.ok(!cli.exited, "run must keep running while stream processing is disabled");
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, output(result));
  assert.equal(result.signal, null);
  assert.match(result.stderr, /Received SIGTERM; shutting down/);
  assert.match(result.stderr, /- INFO - Stopped$/m);
});

Deno.test("run stopped by SIGTERM while waiting for the target exits 0, not 69", async () => {
  await using dir = await tempDir();
  const env = {
    ...unreachableEnv(),
    TARGET_REDIS_MAX_RETRIES: "5",
    TARGET_REDIS_BACKOFF_BASE: "20",
    TARGET_REDIS_BACKOFF_MAX: "30",
  };
  await using cli = spawnCli(["run"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  await cli.waitForOutput(/Cannot connect to target 127\.0\.0\.1:\d+ yet .*retry 1 of 5/);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, output(result));
  assert.match(result.stderr, /Received SIGTERM; shutting down/);
  assert.doesNotMatch(result.stderr, /^Error:/m, output(result));
});

Deno.test("check with leases and a source user that may not run EVAL exits 78 naming STREAM_LEASES; with STREAM_LEASES=false it passes", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using admin = await connect(source);
  // Everything but scripting.
  await admin.send([
    "ACL",
    "SETUSER",
    "copier",
    "on",
    `>${SECRET}`,
    "~*",
    "&*",
    "+@all",
    "-@scripting",
  ]);
  await using dir = await tempDir();
  const env = {
    ...serversEnv(source, target),
    SOURCE_REDIS_USERNAME: "copier",
    SOURCE_REDIS_PASSWORD: SECRET,
  };
  const refused = await runCli(["check"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(refused.code, 78, output(refused));
  assert.match(refused.stderr, /refused EVAL/);
  assert.match(refused.stderr, /STREAM_LEASES=false/);
  assert.ok(!refused.stderr.includes(SECRET), output(refused));
  const single = await runCli(["check"], {
    cwd: dir.path,
    env: { ...env, STREAM_LEASES: "false" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(single.code, 0, output(single));
});

Deno.test("run --once through SOURCE_REDIS_URL and TARGET_REDIS_URL (ACL user, password, DB) copies into the URL's DBs and never prints the passwords", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using target = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using src = await connect(source, { db: 2, password: SECRET });
  await using dst = await connect(target, { db: 5, password: SECRET });
  await using admin = await connect(source, { password: SECRET });
  await admin.send(["ACL", "SETUSER", "copier", "on", ">c0pier-pw:x@y", "~*", "&*", "+@all"]);
  for (let i = 1; i <= 20; i++) await src.send(["XADD", "url-stream", `${i}-0`, "n", String(i)]);
  await using dir = await tempDir();
  const env = {
    SOURCE_REDIS_URL: `redis://copier:${
      encodeURIComponent("c0pier-pw:x@y")
    }@127.0.0.1:${source.port}/2`,
    TARGET_REDIS_URL: `redis://:${encodeURIComponent(SECRET)}@127.0.0.1:${target.port}/5`,
    REDIS_DB_SEARCH_RANGE: "2",
    STREAM_DISCOVERY_PATTERNS: "url-*",
    LOG_LEVEL: "DEBUG",
  };
  const result = await runCli(["run", "--once"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(result.code, 0, output(result));
  assert.equal(Number(await dst.send(["XLEN", "url-stream"])), 20);
  const printed = await runCli(["--print-config"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.match(printed.stdout, /^SOURCE_REDIS_URL=redis:\/\/copier:\*\*\*@127\.0\.0\.1:\d+\/2$/m);
  for (const out of [result, printed]) {
    for (const secret of [SECRET, "c0pier-pw", encodeURIComponent("c0pier-pw:x@y")]) {
      assert.ok(!out.stdout.includes(secret) && !out.stderr.includes(secret), output(out));
    }
  }
});

Deno.test("check says which streams a run would copy, per DB, and warns, naming the patterns and DBs, when discovery finds none; run --once warns too", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dir = await tempDir();
  const env = { ...serversEnv(source, target), REDIS_DB_SEARCH_RANGE: "0-3,7" };
  const none = await runCli(["check"], {
    cwd: dir.path,
    env: { ...env, STREAM_DISCOVERY_PATTERNS: "nomatch*" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(none.code, 0, output(none));
  assert.match(none.stdout, /^Streams to copy: none found$/m);
  assert.match(
    none.stderr,
    /WARNING.*No streams to copy: no stream matches STREAM_DISCOVERY_PATTERNS "nomatch\*" in DBs 0-3,7 \(REDIS_DB_SEARCH_RANGE\), and REDIS_STREAMS is empty/,
  );
  const once = await runCli(["run", "--once"], {
    cwd: dir.path,
    env: { ...env, STREAM_DISCOVERY_PATTERNS: "nomatch*" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(once.code, 0, output(once));
  assert.match(once.stderr, /WARNING.*No streams to copy: no stream matches/);
  await src.send(["XADD", "a-stream", "*", "n", "1"]);
  await src.send(["XADD", "b-stream", "*", "n", "1"]);
  await src.send(["SELECT", "2"]);
  await src.send(["XADD", "c-stream", "*", "n", "1"]);
  await src.send(["SELECT", "0"]);
  const some = await runCli(["check"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(some.code, 0, output(some));
  assert.match(some.stdout, /^Streams to copy: 3 \(db0: 2, db2: 1\)$/m);
  assert.doesNotMatch(some.stderr, /No streams to copy/);
});

Deno.test("run --once with one stream of one entry says so in the singular: 1 stream, 1 entry, 1 new stream, 1 consumer group", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dir = await tempDir();
  await src.send(["XADD", "one-stream", "*", "n", "1"]);
  const result = await runCli(["run", "--once"], {
    cwd: dir.path,
    env: serversEnv(source, target),
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 0, output(result));
  assert.match(result.stderr, /Done: 1 stream, 1 entry copied$/m);
  assert.match(result.stderr, /; \d+ instances? of group /);
  assert.match(
    result.stderr,
    /Replicating 1 new stream \(1 consumer group created\): db0:one-stream$/m,
  );
  assert.doesNotMatch(result.stderr, /\b1 (streams|entries|instances|consumer groups)\b/);
});

Deno.test("check looks at both sides at once: a target that refuses connections and a source with a wrong password are both told (exit 78), and a host that does not resolve is not retried", async () => {
  await using source = await RedisServer.start({ args: ["--requirepass", SECRET] });
  await using dir = await tempDir();
  const closedPort = freePort();
  const retries = {
    SOURCE_REDIS_MAX_RETRIES: "2",
    TARGET_REDIS_MAX_RETRIES: "2",
    SOURCE_REDIS_BACKOFF_BASE: "0.1",
    TARGET_REDIS_BACKOFF_BASE: "0.1",
  };
  const both = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv(source, { host: "127.0.0.1", port: closedPort }),
      SOURCE_REDIS_PASSWORD: WRONG_PASSWORD,
      ...retries,
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(both.code, 78, output(both));
  assert.match(
    both.stderr,
    new RegExp(`Authentication to source "127\\.0\\.0\\.1:${source.port}" failed`),
  );
  assert.match(
    both.stderr,
    new RegExp(`cannot connect to target "127\\.0\\.0\\.1:${closedPort}"`, "i"),
  );
  assert.ok(!both.stderr.includes(WRONG_PASSWORD), output(both));
  // The target down, the source fine: said to answer, exit 69 for the target.
  await using plain = await RedisServer.start();
  const oneSide = await runCli(["check"], {
    cwd: dir.path,
    env: { ...serversEnv(plain, { host: "127.0.0.1", port: closedPort }), ...retries },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(oneSide.code, 69, output(oneSide));
  assert.match(oneSide.stderr, new RegExp(`The source 127\\.0\\.0\\.1:${plain.port} answers`));
  // A name that does not resolve: one attempt, no retry.
  const unknown = await runCli(["check"], {
    cwd: dir.path,
    env: {
      ...serversEnv(plain, { host: "no-such-host.invalid", port: 6379 }),
      TARGET_REDIS_MAX_RETRIES: "5",
    },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(unknown.code, 69, output(unknown));
  assert.match(
    unknown.stderr,
    /target "no-such-host\.invalid:6379" after 1 attempt: host not found/,
  );
  assert.doesNotMatch(unknown.stderr, /retry \d/);
});

Deno.test("with --log-format json (or LOG_FORMAT=json in the environment) configuration errors are a JSON line too, exit 78", async () => {
  await using dir = await tempDir();
  for (
    const [args, env] of [
      [["check", "--log-format", "json"], { STREAM_BATCH_SIZE: "many" }],
      [["check"], { STREAM_BATCH_SIZE: "many", LOG_FORMAT: "json" }],
    ] as const
  ) {
    const result = await runCli([...args], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
    assert.equal(result.code, 78, output(result));
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, output(result));
    const line = JSON.parse(lines[0]);
    assert.equal(line.level, "CRITICAL");
    assert.equal(line.exitCode, 78);
    assert.equal(line.problems.length, 1, output(result));
    assert.match(line.problems[0], /^STREAM_BATCH_SIZE must be .*: got "many"/);
  }
});
