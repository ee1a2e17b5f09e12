/**
 * What the guarantees rest on, checked at start (lib/ops/_guarantee_check.ts):
 * a source that is its own target is refused; settings that can lose what
 * was copied are said. Redis glob patterns matched as Redis does.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/load_config.ts";
import { ConfigError } from "../lib/errors.ts";
import { globExample, globMatch } from "../lib/redis/mod.ts";
import { judgeGuarantees } from "../lib/ops/_guarantee_check.ts";
import { runCli } from "../testing/cli.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { replicationEnv } from "./_replication.ts";

Deno.test("Redis glob patterns: *, ?, classes with ranges and negation, escapes, as KEYS matches them", async () => {
  const cases: Array<[string, string, boolean]> = [
    ["*", "", true],
    ["*", "anything:at:all", true],
    ["device:*:stream", "device:17:stream", true],
    ["device:*:stream", "device:17:streams", false],
    ["h?llo", "hello", true],
    ["h?llo", "hllo", false],
    ["h[ae]llo", "hallo", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-c]llo", "hbllo", true],
    ["h[c-a]llo", "hbllo", true],
    ["h[a-c]llo", "hdllo", false],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["*stream*", "copy:orders-stream-1", true],
  ];
  for (const [pattern, key, expected] of cases) {
    assert.equal(globMatch(pattern, key), expected, `${pattern} ~ ${key}`);
  }
  // Against the server itself: the same answers as KEYS.
  await using server = await RedisServer.start();
  await using client = await connect(server);
  for (const [, key] of cases) if (key !== "") await client.send(["SET", key, "1"]);
  for (const [pattern, key, expected] of cases) {
    if (key === "") continue;
    const keys = (await client.send(["KEYS", pattern])) as unknown[];
    const found = keys.map(String).includes(key);
    assert.equal(found, expected, `KEYS ${pattern} and ${key}`);
  }
  for (const [pattern] of cases) assert.ok(globMatch(pattern, globExample(pattern)), pattern);
});

const facts = (runId: string, more: Record<string, unknown> = {}) => ({ runId, ...more });

function config(text: string) {
  return loadConfig({}, {}, `SOURCE_REDIS_HOST=127.0.0.1\nTARGET_REDIS_HOST=127.0.0.1\n${text}`)
    .config;
}

Deno.test("a source that is its own target is refused: same server and DB without a prefix, or a prefix the patterns match again", () => {
  const same = { source: facts("a"), target: facts("a") };
  assert.throws(
    () => judgeGuarantees(config("STREAM_DISCOVERY_PATTERNS=orders:*\n"), same),
    (e: unknown) => e instanceof ConfigError && /copied onto itself/.test(e.message),
  );
  assert.throws(
    () =>
      judgeGuarantees(
        config("STREAM_DISCOVERY_PATTERNS=*\nTARGET_STREAM_PREFIX=copy:\n"),
        same,
      ),
    (e: unknown) =>
      e instanceof ConfigError && /pattern "\*" also matches the copies/.test(e.message) &&
      /"copy:x"/.test(e.message),
  );
  // Fine: a prefix the patterns do not match, another DB that is not scanned, another server.
  const ok = [
    "STREAM_DISCOVERY_PATTERNS=orders:*\nTARGET_STREAM_PREFIX=copy:\n",
    "STREAM_DISCOVERY_PATTERNS=*\nREDIS_DB_SEARCH_RANGE=0\nTARGET_REDIS_DB=5\n",
  ];
  for (const text of ok) assert.deepEqual(judgeGuarantees(config(text), same), [], text);
  const other = { source: facts("a"), target: facts("b") };
  assert.deepEqual(judgeGuarantees(config("STREAM_DISCOVERY_PATTERNS=*\n"), other), []);
  // A fixed target DB inside the scanned range: the copies there are found again.
  assert.throws(
    () =>
      judgeGuarantees(
        config("STREAM_DISCOVERY_PATTERNS=*\nREDIS_DB_SEARCH_RANGE=0-1\nTARGET_REDIS_DB=1\n"),
        same,
      ),
    ConfigError,
  );
});

Deno.test("settings that can lose what was copied are said: allkeys eviction, no persistence on the target, a sentinel source without min-replicas-to-write", () => {
  const warnings = judgeGuarantees(
    config("SOURCE_REDIS_SENTINELS=127.0.0.1:26379\nSOURCE_REDIS_SENTINEL_MASTER=m\n"),
    {
      source: facts("a", { minReplicasToWrite: 0 }),
      target: facts("b", { maxmemoryPolicy: "allkeys-lru", persistent: false }),
    },
  );
  assert.equal(warnings.length, 3, warnings.join("\n"));
  assert.match(warnings[0], /maxmemory-policy allkeys-lru/);
  assert.match(warnings[1], /keeps nothing on disk/);
  assert.match(warnings[2], /min-replicas-to-write 0/);
  const quiet = judgeGuarantees(config(""), {
    source: facts("a", { minReplicasToWrite: 0 }),
    target: facts("b", { maxmemoryPolicy: "noeviction", persistent: true }),
  });
  assert.deepEqual(quiet, [], "min-replicas-to-write matters behind sentinels only");
});

Deno.test("with leases, a source whose maxmemory-policy may evict the leases' keys is said; noeviction, or no leases, is not", () => {
  const target = facts("b", { maxmemoryPolicy: "noeviction", persistent: true });
  for (const policy of ["volatile-lru", "volatile-ttl", "allkeys-lru"]) {
    const warnings = judgeGuarantees(config(""), {
      source: facts("a", { maxmemoryPolicy: policy }),
      target,
    });
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      new RegExp(`source .* has maxmemory-policy ${policy}: .*leases' keys`),
    );
  }
  const quiet = [
    judgeGuarantees(config(""), { source: facts("a", { maxmemoryPolicy: "noeviction" }), target }),
    judgeGuarantees(config("STREAM_LEASES=false\n"), {
      source: facts("a", { maxmemoryPolicy: "volatile-lru" }),
      target,
    }),
  ];
  assert.deepEqual(quiet, [[], []]);
});

Deno.test("TARGET_EPHEMERAL=true says a target without persistence is intended: no warning about it, the others stay", () => {
  const target = facts("b", { maxmemoryPolicy: "allkeys-lru", persistent: false });
  const warnings = judgeGuarantees(config("TARGET_EPHEMERAL=true\n"), {
    source: facts("a", {}),
    target,
  });
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /maxmemory-policy allkeys-lru/);
  const said = judgeGuarantees(config("TARGET_EPHEMERAL=false\n"), {
    source: facts("a", {}),
    target,
  });
  assert.match(said[1], /keeps nothing on disk.*set TARGET_EPHEMERAL=true if that is intended/);
});

Deno.test("check against one server as both source and target exits 78 and names the pattern that finds the copies; a target that may lose data is warned about", async () => {
  await using server = await RedisServer.start();
  const self = await runCli(["check"], {
    env: replicationEnv(server, server, {
      STREAM_DISCOVERY_PATTERNS: "*",
      TARGET_STREAM_PREFIX: "copy:",
      LOG_LEVEL: "INFO",
    }),
    timeoutMs: 30_000,
  });
  assert.equal(self.code, 78, self.stderr + self.stdout);
  assert.match(self.stderr + self.stdout, /discovery pattern "\*" also matches the copies/);

  await using source = await RedisServer.start({ args: ["--maxmemory-policy", "volatile-lru"] });
  await using target = await RedisServer.start({
    args: ["--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no"],
  });
  const warned = await runCli(["check"], {
    env: replicationEnv(source, target, { LOG_LEVEL: "INFO" }),
    timeoutMs: 30_000,
  });
  assert.equal(warned.code, 0, warned.stderr + warned.stdout);
  const out = warned.stderr + warned.stdout;
  assert.match(out, /maxmemory-policy allkeys-lru/);
  assert.match(out, /keeps nothing on disk/);
  assert.match(out, /source .* has maxmemory-policy volatile-lru: .*leases' keys/);
});
