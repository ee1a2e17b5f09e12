import assert from "node:assert/strict";
import { CONFIG_KEYS } from "../lib/config/keys.ts";
import { loadConfig } from "../lib/config/load_config.ts";
import { formatConfig } from "../lib/config/format_config.ts";
import { runSettings } from "../lib/config/settings.ts";
import type { Config } from "../lib/config/types.ts";
import { parseEnvFile } from "../lib/config/env_file.ts";
import { SEED_ENV_CONF } from "./_fixtures.ts";
import { problemsOf } from "./_config.ts";

/** What the seed's env.conf (and the defaults) give. */
const SEED_CONFIG: Config = {
  source: {
    host: "source-redis",
    port: 6379,
    db: 0,
    maxRetries: 5,
    backoffBase: 1,
    backoffMax: 30,
    healthCheckInterval: 60,
    poolSize: 10,
    commandTimeout: 10,
  },
  target: {
    host: "target-redis",
    port: 6379,
    db: 0,
    maxRetries: 5,
    backoffBase: 1,
    backoffMax: 30,
    healthCheckInterval: 60,
    poolSize: 10,
    commandTimeout: 10,
  },
  targetStreamPrefix: "",
  targetStreamMaxlen: 0,
  targetWaitReplicas: 0,
  targetWaitTimeout: 1,
  mirrorSourceTrim: false,
  targetEphemeral: false,
  streams: [],
  streamsEnabled: true,
  consumerGroup: "redis-sync-group",
  consumerName: "redis-sync-consumer",
  batchSize: 100,
  pollInterval: 1,
  startId: "0",
  pendingCheckInterval: 60,
  consumerIdleTimeout: 3600,
  stallTimeout: 5,
  leases: true,
  leaseTtl: 10,
  instanceId: "",
  autoDiscovery: true,
  discoveryPatterns: ["*-stream", "device:*:stream", "biosignal-*"],
  discoveryInterval: 10,
  autoCreateGroups: true,
  dbSearchRange: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  logLevel: "INFO",
  logFormat: "%(asctime)s - %(name)s - %(levelname)s - %(message)s",
  metricsHost: "127.0.0.1",
  metricsPort: 9108,
  heartbeatInterval: 0,
  groupsSync: [],
  groupsSyncInterval: 5,
  groupsSyncPending: false,
  registry: "localhost:5000",
  tag: "latest",
};

const PASSWORD = "Sup3r-S3cret#pw";

/** The configuration loaded from `fileText` alone. */
function fromFile(fileText: string): Config {
  return loadConfig({}, {}, fileText).config;
}

/** The only problem of a configuration that must fail to load. */
function problemOf(fileText: string, env: Record<string, string | undefined> = {}): string {
  const problems = problemsOf(fileText, env);
  assert.equal(problems.length, 1, problems.join("\n"));
  return problems[0];
}

// --- compatibility with the original service ---------------------------------------------

Deno.test("loadConfig() loads the original README's env.conf verbatim", () => {
  const { config, warnings } = loadConfig({}, {}, SEED_ENV_CONF);
  assert.deepStrictEqual(config, SEED_CONFIG);
  assert.deepStrictEqual(warnings, []);
});

Deno.test("loadConfig() reads the seed's inline comments as comments, not values", () => {
  const config = fromFile(SEED_ENV_CONF);
  assert.equal(config.targetStreamPrefix, "");
  assert.equal(config.consumerName, "redis-sync-consumer");
  assert.equal(config.logLevel, "INFO");
  assert.equal(config.pollInterval, 1);
});

Deno.test("loadConfig() gives the seed's values when there is no file and no environment", () => {
  assert.deepStrictEqual(loadConfig({}, {}, undefined), { config: SEED_CONFIG, warnings: [] });
  assert.deepStrictEqual(loadConfig({}, {}, "").config, SEED_CONFIG);
});

Deno.test("CONFIG_KEYS lists each key once, with a default that loads", () => {
  const keys = CONFIG_KEYS.map((entry) => entry.key);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(keys.length, 82);
  const file = CONFIG_KEYS.map((entry) => `${entry.key}=${entry.default}`).join("\n");
  assert.deepStrictEqual(fromFile(file), SEED_CONFIG);
  for (const entry of CONFIG_KEYS) assert.ok(entry.description.length > 10, entry.key);
  assert.deepStrictEqual(
    CONFIG_KEYS.filter((entry) => entry.secret).map((entry) => entry.key),
    [
      "SOURCE_REDIS_URL",
      "SOURCE_REDIS_PASSWORD",
      "SOURCE_REDIS_SENTINEL_PASSWORD",
      "TARGET_REDIS_URL",
      "TARGET_REDIS_PASSWORD",
      "TARGET_REDIS_SENTINEL_PASSWORD",
    ],
  );
  assert.deepStrictEqual(
    CONFIG_KEYS.filter((entry) => entry.added).map((entry) => entry.key),
    [
      "SOURCE_REDIS_URL",
      "SOURCE_REDIS_USERNAME",
      "SOURCE_REDIS_COMMAND_TIMEOUT",
      "SOURCE_REDIS_CLUSTER",
      "SOURCE_REDIS_SENTINELS",
      "SOURCE_REDIS_SENTINEL_MASTER",
      "SOURCE_REDIS_SENTINEL_USERNAME",
      "SOURCE_REDIS_SENTINEL_PASSWORD",
      "SOURCE_REDIS_SENTINEL_TLS",
      "SOURCE_REDIS_TLS",
      "SOURCE_REDIS_TLS_CA_FILE",
      "SOURCE_REDIS_TLS_CERT_FILE",
      "SOURCE_REDIS_TLS_KEY_FILE",
      "SOURCE_REDIS_TLS_SERVERNAME",
      "SOURCE_REDIS_TLS_INSECURE",
      "TARGET_REDIS_URL",
      "TARGET_REDIS_USERNAME",
      "TARGET_REDIS_COMMAND_TIMEOUT",
      "TARGET_REDIS_CLUSTER",
      "TARGET_REDIS_SENTINELS",
      "TARGET_REDIS_SENTINEL_MASTER",
      "TARGET_REDIS_SENTINEL_USERNAME",
      "TARGET_REDIS_SENTINEL_PASSWORD",
      "TARGET_REDIS_SENTINEL_TLS",
      "TARGET_REDIS_TLS",
      "TARGET_REDIS_TLS_CA_FILE",
      "TARGET_REDIS_TLS_CERT_FILE",
      "TARGET_REDIS_TLS_KEY_FILE",
      "TARGET_REDIS_TLS_SERVERNAME",
      "TARGET_REDIS_TLS_INSECURE",
      "TARGET_STREAM_MAXLEN",
      "TARGET_WAIT_REPLICAS",
      "TARGET_WAIT_TIMEOUT",
      "MIRROR_SOURCE_TRIM",
      "TARGET_EPHEMERAL",
      "STREAM_START_ID",
      "STREAM_PENDING_CHECK_INTERVAL",
      "STREAM_CONSUMER_IDLE_TIMEOUT",
      "STREAM_STALL_TIMEOUT",
      "STREAM_LEASES",
      "STREAM_LEASE_TTL",
      "INSTANCE_ID",
      "STREAM_GROUPS_SYNC",
      "STREAM_GROUPS_SYNC_INTERVAL",
      "STREAM_GROUPS_SYNC_PENDING",
      "METRICS_HOST",
      "METRICS_PORT",
      "HEARTBEAT_INTERVAL",
    ],
  );
});

Deno.test("CONFIG_KEYS has every key of the seed's env.conf, none added among them", () => {
  const seedKeys = [...parseEnvFile(SEED_ENV_CONF).values.keys()];
  assert.equal(seedKeys.length, 34);
  for (const key of seedKeys) {
    const entry = CONFIG_KEYS.find((candidate) => candidate.key === key);
    assert.ok(entry, key);
    assert.equal(entry.added, false, key);
  }
});

// --- precedence ------------------------------------------------------------------------------

Deno.test("loadConfig() takes a flag over the environment over the file over the default", () => {
  const file = "LOG_LEVEL=ERROR\nSOURCE_REDIS_HOST=from-file\nTAG=file-tag\n";
  const env = { LOG_LEVEL: "WARNING", SOURCE_REDIS_HOST: "from-env" };
  const { config } = loadConfig({ logLevel: "debug" }, env, file);
  assert.equal(config.logLevel, "DEBUG");
  assert.equal(config.source.host, "from-env");
  assert.equal(config.tag, "file-tag");
  assert.equal(config.registry, "localhost:5000");
  assert.equal(loadConfig({}, env, file).config.logLevel, "WARNING");
  assert.equal(loadConfig({}, {}, file).config.logLevel, "ERROR");
});

Deno.test("loadConfig() takes an empty environment variable over the file", () => {
  const { config } = loadConfig({}, { TARGET_STREAM_PREFIX: "" }, "TARGET_STREAM_PREFIX=x:\n");
  assert.equal(config.targetStreamPrefix, "");
});

Deno.test("loadConfig() reads only known keys from the environment", () => {
  const { config, warnings } = loadConfig(
    {},
    { SOURCE_REDIS_POOLSIZE: "0", PATH: "/usr/bin", HOME: "/root", UNDEFINED: undefined },
    undefined,
  );
  assert.deepStrictEqual(config, SEED_CONFIG);
  assert.deepStrictEqual(warnings, []);
});

Deno.test("loadConfig() does not validate a file value that the environment overrides", () => {
  const { config } = loadConfig({}, { SOURCE_REDIS_PORT: "6380" }, "SOURCE_REDIS_PORT=nope\n");
  assert.equal(config.source.port, 6380);
});

Deno.test("loadConfig() says where a bad value comes from", () => {
  assert.deepStrictEqual(problemsOf(undefined, { SOURCE_REDIS_PORT: "x" }), [
    'SOURCE_REDIS_PORT must be an integer from 1 to 65535: got "x" (from the environment)',
  ]);
  assert.deepStrictEqual(problemsOf("\n\nSOURCE_REDIS_PORT=x\n"), [
    'SOURCE_REDIS_PORT must be an integer from 1 to 65535: got "x" (env.conf line 3)',
  ]);
  assert.throws(
    () => loadConfig({}, {}, "SOURCE_REDIS_PORT=x\n", { fileName: "/etc/rss.conf" }),
    {
      message:
        'SOURCE_REDIS_PORT must be an integer from 1 to 65535: got "x" (/etc/rss.conf line 1)',
    },
  );
});

// --- unknown keys ----------------------------------------------------------------------------

Deno.test("loadConfig() warns of an unknown key in the file and suggests the nearest", () => {
  const { config, warnings } = loadConfig({}, {}, "# x\n\nSOURCE_REDIS_POOLSIZE=3\n");
  assert.deepStrictEqual(warnings, [
    'Unknown key "SOURCE_REDIS_POOLSIZE" in env.conf (line 3): did you mean "SOURCE_REDIS_POOL_SIZE"?',
  ]);
  assert.equal(config.source.poolSize, 10);
});

Deno.test("loadConfig() suggests the upper-case key for a lower-case one", () => {
  const { warnings } = loadConfig({}, {}, "log_level=debug\n");
  assert.deepStrictEqual(warnings, [
    'Unknown key "log_level" in env.conf (line 1): did you mean "LOG_LEVEL"?',
  ]);
});

Deno.test("loadConfig() warns of an unknown key unlike any known key, without suggestion", () => {
  const { warnings } = loadConfig({}, {}, "TAG=v1\nCOMPOSE_PROJECT_NAME=sync\n");
  assert.deepStrictEqual(warnings, [
    'Unknown key "COMPOSE_PROJECT_NAME" in env.conf (line 2), ignored',
  ]);
});

Deno.test("loadConfig() passes on the file's warnings and fails on its bad lines", () => {
  const { warnings } = loadConfig({}, {}, "TAG=a\nTAG=b\n");
  assert.deepStrictEqual(warnings, [
    "env.conf line 2: TAG is set again (first on line 1); the value on line 2 is used",
  ]);
  assert.deepStrictEqual(problemsOf("TAG=a\ngarbage\n"), [
    'env.conf line 2: expected KEY=value, got "garbage"',
  ]);
});

Deno.test("loadConfig() warns when there is nothing to replicate", () => {
  const { warnings } = loadConfig({}, {}, "STREAM_AUTO_DISCOVERY=false\n");
  assert.deepStrictEqual(warnings, [
    "No stream to replicate: REDIS_STREAMS is empty and STREAM_AUTO_DISCOVERY is off",
  ]);
});

// --- validation rules ------------------------------------------------------------------------

Deno.test("loadConfig() rejects a pool size of 0", () => {
  assert.equal(
    problemOf("SOURCE_REDIS_POOL_SIZE=0\n"),
    'SOURCE_REDIS_POOL_SIZE must be an integer >= 1: got "0" (env.conf line 1)',
  );
  assert.equal(
    problemOf("TARGET_REDIS_POOL_SIZE=0\n"),
    'TARGET_REDIS_POOL_SIZE must be an integer >= 1: got "0" (env.conf line 1)',
  );
});

Deno.test("loadConfig() rejects integers that are not plain decimal", () => {
  for (const bad of ["1.5", "abc", "", " 10x", "0x10", "1e3", "10 20", "99999999999999999999"]) {
    assert.equal(
      problemOf("", { SOURCE_REDIS_POOL_SIZE: bad }),
      `SOURCE_REDIS_POOL_SIZE must be an integer >= 1: got ${
        JSON.stringify(bad)
      } (from the environment)`,
    );
  }
  assert.equal(fromFile("SOURCE_REDIS_POOL_SIZE=010\n").source.poolSize, 10);
  assert.equal(loadConfig({}, { SOURCE_REDIS_POOL_SIZE: " 7 " }, "").config.source.poolSize, 7);
});

Deno.test("loadConfig() rejects ports outside 1-65535", () => {
  for (const bad of ["0", "65536", "-1", "http"]) {
    assert.equal(
      problemOf(`TARGET_REDIS_PORT=${bad}\n`),
      `TARGET_REDIS_PORT must be an integer from 1 to 65535: got "${bad}" (env.conf line 1)`,
    );
  }
  assert.equal(fromFile("SOURCE_REDIS_PORT=1\nTARGET_REDIS_PORT=65535\n").target.port, 65535);
});

Deno.test("loadConfig() rejects negative retries and accepts 0", () => {
  assert.equal(
    problemOf("SOURCE_REDIS_MAX_RETRIES=-1\n"),
    'SOURCE_REDIS_MAX_RETRIES must be an integer >= 0: got "-1" (env.conf line 1)',
  );
  assert.equal(fromFile("TARGET_REDIS_MAX_RETRIES=0\n").target.maxRetries, 0);
});

Deno.test("loadConfig() rejects a batch size outside 1-100000", () => {
  for (const bad of ["0", "100001"]) {
    assert.equal(
      problemOf(`STREAM_BATCH_SIZE=${bad}\n`),
      `STREAM_BATCH_SIZE must be an integer from 1 to 100000: got "${bad}" (env.conf line 1)`,
    );
  }
  assert.equal(fromFile("STREAM_BATCH_SIZE=100000\n").batchSize, 100000);
});

Deno.test("loadConfig() rejects intervals and timeouts that are not numbers > 0", () => {
  for (
    const key of [
      "SOURCE_REDIS_HEALTH_CHECK_INTERVAL",
      "TARGET_REDIS_COMMAND_TIMEOUT",
      "STREAM_POLL_INTERVAL",
      "STREAM_DISCOVERY_INTERVAL",
      "SOURCE_REDIS_BACKOFF_MAX",
    ]
  ) {
    for (const bad of ["0", "-1", "abc", "", "NaN", "Infinity", "1s"]) {
      assert.equal(
        problemOf(`${key}=${bad}\n`),
        `${key} must be a number of seconds > 0: got ${JSON.stringify(bad)} (env.conf line 1)`,
      );
    }
  }
});

Deno.test("loadConfig() accepts fractional seconds within timer limits", () => {
  const config = fromFile(
    "STREAM_POLL_INTERVAL=0.25\nSTREAM_DISCOVERY_INTERVAL=.5\nSOURCE_REDIS_COMMAND_TIMEOUT=2.5\n",
  );
  assert.equal(config.pollInterval, 0.25);
  assert.equal(config.discoveryInterval, 0.5);
  assert.equal(config.source.commandTimeout, 2.5);
  assert.equal(
    problemOf("STREAM_POLL_INTERVAL=0.0001\n"),
    'STREAM_POLL_INTERVAL must be a number of seconds > 0: got "0.0001", the smallest is 0.001 (env.conf line 1)',
  );
  assert.equal(
    problemOf("STREAM_DISCOVERY_INTERVAL=3000000\n"),
    'STREAM_DISCOVERY_INTERVAL must be a number of seconds > 0: got "3000000", the largest is 2147483 (env.conf line 1)',
  );
});

Deno.test("loadConfig() rejects a backoff base above the backoff max, naming both keys", () => {
  assert.equal(
    problemOf("SOURCE_REDIS_BACKOFF_BASE=60\nSOURCE_REDIS_BACKOFF_MAX=30\n"),
    'SOURCE_REDIS_BACKOFF_BASE must be <= SOURCE_REDIS_BACKOFF_MAX: got "60" (env.conf line 1) and "30" (env.conf line 2)',
  );
  assert.equal(
    problemOf("TARGET_REDIS_BACKOFF_BASE=45\n"),
    'TARGET_REDIS_BACKOFF_BASE must be <= TARGET_REDIS_BACKOFF_MAX: got "45" (env.conf line 1) and "30.0" (default)',
  );
  assert.equal(
    fromFile("SOURCE_REDIS_BACKOFF_BASE=5\nSOURCE_REDIS_BACKOFF_MAX=5\n").source.backoffMax,
    5,
  );
});

Deno.test("loadConfig() rejects DB numbers outside 0-15", () => {
  for (const bad of ["16", "-1", "one"]) {
    assert.equal(
      problemOf(`SOURCE_REDIS_DB=${bad}\n`),
      `SOURCE_REDIS_DB must be a DB number from 0 to 15: got "${bad}" (env.conf line 1)`,
    );
    assert.equal(
      problemOf(`TARGET_REDIS_DB=${bad}\n`),
      `TARGET_REDIS_DB must be a DB number from 0 to 15, or "same": got "${bad}" (env.conf line 1)`,
    );
  }
  assert.equal(fromFile("SOURCE_REDIS_DB=15\n").source.db, 15);
  assert.equal(
    problemOf("SOURCE_REDIS_DB=same\n"),
    'SOURCE_REDIS_DB must be a DB number from 0 to 15: got "same" (env.conf line 1)',
  );
});

Deno.test("loadConfig() accepts TARGET_REDIS_DB=same in any case", () => {
  for (const same of ["same", "SAME", "Same"]) {
    assert.equal(fromFile(`TARGET_REDIS_DB=${same}\n`).target.db, "same");
  }
  assert.equal(fromFile("TARGET_REDIS_DB=3\n").target.db, 3);
});

Deno.test("loadConfig() accepts booleans in any case and rejects others", () => {
  const yes = ["true", "TRUE", "1", "yes", "Yes", "on", "ON"];
  const no = ["false", "False", "0", "no", "NO", "off", "Off"];
  for (const value of yes) {
    assert.equal(fromFile(`REDIS_STREAMS_ENABLED=${value}\n`).streamsEnabled, true);
  }
  for (const value of no) {
    assert.equal(fromFile(`STREAM_AUTO_DISCOVERY=${value}\n`).autoDiscovery, false);
  }
  for (const bad of ["maybe", "", "2", "y"]) {
    assert.equal(
      problemOf(`STREAM_AUTO_CREATE_CONSUMER_GROUPS=${bad}\n`),
      `STREAM_AUTO_CREATE_CONSUMER_GROUPS must be true or false (or 1/0, yes/no, on/off): got "${bad}" (env.conf line 1)`,
    );
  }
});

Deno.test("loadConfig() rejects an empty or spaced host", () => {
  assert.equal(
    problemOf("SOURCE_REDIS_HOST=\n"),
    'SOURCE_REDIS_HOST must be a non-empty host name or IP address, without spaces: got "" (env.conf line 1)',
  );
  assert.equal(
    problemOf("TARGET_REDIS_HOST='a b'\n"),
    'TARGET_REDIS_HOST must be a non-empty host name or IP address, without spaces: got "a b" (env.conf line 1)',
  );
  assert.equal(
    problemOf("METRICS_HOST=\n"),
    'METRICS_HOST must be a non-empty host name or IP address: got "" (env.conf line 1)',
  );
});

Deno.test("loadConfig() rejects an empty consumer group or consumer name", () => {
  assert.deepStrictEqual(problemsOf("STREAM_CONSUMER_GROUP=\nSTREAM_CONSUMER_NAME=' '\n"), [
    'STREAM_CONSUMER_GROUP must be a non-empty consumer group name: got "" (env.conf line 1)',
    'STREAM_CONSUMER_NAME must be a non-empty consumer name: got " " (env.conf line 2)',
  ]);
});

Deno.test("loadConfig() rejects an empty value for keys with a non-empty default", () => {
  const keys = [
    "REDIS_STREAMS_ENABLED",
    "STREAM_START_ID",
    "REDIS_DB_SEARCH_RANGE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_PORT",
    "HEARTBEAT_INTERVAL",
    "REGISTRY",
    "TAG",
  ];
  const problems = problemsOf(keys.map((key) => `${key}=`).join("\n"));
  assert.equal(problems.length, keys.length, problems.join("\n"));
  keys.forEach((key, index) => assert.ok(problems[index].startsWith(`${key} must be `)));
});

Deno.test("loadConfig() accepts empty values for the prefix, the streams, users and passwords", () => {
  const file = [
    "TARGET_STREAM_PREFIX=",
    "REDIS_STREAMS=",
    "SOURCE_REDIS_USERNAME=",
    "SOURCE_REDIS_PASSWORD=",
    "TARGET_REDIS_USERNAME=",
    "TARGET_REDIS_PASSWORD=",
  ].join("\n");
  const config = fromFile(file);
  assert.deepStrictEqual(config, SEED_CONFIG);
  assert.equal("password" in config.source, false);
  assert.equal("username" in config.target, false);
});

Deno.test("loadConfig() reads usernames and passwords as they are", () => {
  const config = fromFile(
    `SOURCE_REDIS_USERNAME=sync\nSOURCE_REDIS_PASSWORD=${PASSWORD}\nTARGET_REDIS_PASSWORD=' p w '\n`,
  );
  assert.equal(config.source.username, "sync");
  assert.equal(config.source.password, PASSWORD);
  assert.equal(config.target.password, " p w ");
  assert.equal(config.target.username, undefined);
});

Deno.test("loadConfig() accepts STREAM_START_ID 0, $ and explicit IDs only", () => {
  for (
    const good of ["0", "$", "0-0", "1700000000000-5", "1700000000000", "18446744073709551615-0"]
  ) {
    assert.equal(fromFile(`STREAM_START_ID=${good}\n`).startId, good);
  }
  for (const bad of ["latest", ">", "1-2-3", "-1", "18446744073709551616", "$$"]) {
    assert.equal(
      problemOf(`STREAM_START_ID=${bad}\n`),
      `STREAM_START_ID must be "0", "$" or a stream ID like "1700000000000-0": got "${bad}" (env.conf line 1)`,
    );
  }
});

Deno.test("loadConfig() parses REDIS_DB_SEARCH_RANGE forms", () => {
  const cases: [string, number[]][] = [
    ["0-15 ", [...Array(16).keys()]],
    ["0,1,5", [0, 1, 5]],
    ["0-3,7", [0, 1, 2, 3, 7]],
    [" 7 , 0 - 2 ,, 1 ", [0, 1, 2, 7]],
    ["5", [5]],
    ["3-3", [3]],
  ];
  for (const [text, expected] of cases) {
    assert.deepStrictEqual(fromFile(`REDIS_DB_SEARCH_RANGE=${text}\n`).dbSearchRange, expected);
  }
});

Deno.test("loadConfig() rejects bad REDIS_DB_SEARCH_RANGE parts, naming each", () => {
  const expected =
    'REDIS_DB_SEARCH_RANGE must be DB numbers from 0 to 15 and ascending ranges, like "0-15", "0,1,5" or "0-3,7"';
  assert.equal(
    problemOf("REDIS_DB_SEARCH_RANGE=0,5-3\n"),
    `${expected}: got "0,5-3", where "5-3" is not ascending (env.conf line 1)`,
  );
  assert.equal(
    problemOf("REDIS_DB_SEARCH_RANGE=0-16,x,-1\n"),
    `${expected}: got "0-16,x,-1", where "0-16" is beyond DB 15, "x" is not a DB number or range, "-1" is not a DB number or range (env.conf line 1)`,
  );
  assert.equal(
    problemOf("REDIS_DB_SEARCH_RANGE=,\n"),
    `${expected}: got "," (env.conf line 1)`,
  );
});

Deno.test("loadConfig() normalises LOG_LEVEL, with WARN as WARNING", () => {
  const cases: [string, string][] = [
    ["debug", "DEBUG"],
    ["Info", "INFO"],
    ["warn", "WARNING"],
    ["WARNING", "WARNING"],
    ["error", "ERROR"],
    ["critical", "CRITICAL"],
  ];
  for (const [text, level] of cases) assert.equal(fromFile(`LOG_LEVEL=${text}\n`).logLevel, level);
  assert.equal(
    problemOf("LOG_LEVEL=verbose\n"),
    'LOG_LEVEL must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL: got "verbose" (env.conf line 1)',
  );
});

Deno.test("loadConfig() takes LOG_FORMAT=json in any case as JSON lines", () => {
  assert.equal(fromFile("LOG_FORMAT=JSON\n").logFormat, "json");
  assert.equal(
    fromFile("LOG_FORMAT=%(levelname)s %(message)s\n").logFormat,
    "%(levelname)s %(message)s",
  );
});

Deno.test("loadConfig() keeps the did-you-mean hint of a mistyped key among the errors when another value is wrong", () => {
  assert.deepStrictEqual(problemsOf("SOURCE_REDIS_PROT=6380\nTARGET_REDIS_PORT=abc\n"), [
    'TARGET_REDIS_PORT must be an integer from 1 to 65535: got "abc" (env.conf line 2)',
    'Unknown key "SOURCE_REDIS_PROT" in env.conf (line 1): did you mean "SOURCE_REDIS_PORT"?',
  ]);
});

Deno.test("loadConfig() refuses a LOG_FORMAT placeholder no line can fill, naming it and those it knows", () => {
  assert.equal(
    problemOf("LOG_FORMAT=%(asctime)s %(threadName)s %(lineno)d %(message)s\n"),
    'LOG_FORMAT must be a format using only %(asctime)s, %(name)s, %(levelname)s, %(message)s, %(process)d, %(levelno)d, %(created)f, %(msecs)d (widths allowed), or "json": got "%(asctime)s %(threadName)s %(lineno)d %(message)s", %(threadName)s, %(lineno)d are not known here (env.conf line 1)',
  );
  assert.equal(
    fromFile("LOG_FORMAT=%(levelname)-8s %(process)d %(msecs)03d %(message)s\n").logFormat,
    "%(levelname)-8s %(process)d %(msecs)03d %(message)s",
  );
});

Deno.test("loadConfig() applies --log-format json and text", () => {
  const text = "LOG_FORMAT=%(message)s\n";
  assert.equal(loadConfig({ logFormat: "json" }, {}, text).config.logFormat, "json");
  assert.equal(loadConfig({ logFormat: "text" }, {}, text).config.logFormat, "%(message)s");
  assert.equal(
    loadConfig({ logFormat: "text" }, { LOG_FORMAT: "json" }, text).config.logFormat,
    SEED_CONFIG.logFormat,
  );
  assert.equal(loadConfig({ logFormat: "json" }, { LOG_FORMAT: "" }, "").config.logFormat, "json");
});

Deno.test("loadConfig() rejects a --log-format other than text or json", () => {
  assert.deepStrictEqual(problemsOf(undefined, {}, { logFormat: "xml" }), [
    '--log-format must be "text" or "json": got "xml"',
  ]);
});

Deno.test("loadConfig() validates --log-level like LOG_LEVEL", () => {
  assert.equal(
    loadConfig({ logLevel: "Warn" }, {}, "LOG_LEVEL=verbose\n").config.logLevel,
    "WARNING",
  );
  assert.deepStrictEqual(problemsOf(undefined, {}, { logLevel: "loud" }), [
    '--log-level must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL: got "loud"',
  ]);
});

Deno.test("loadConfig() accepts METRICS_PORT 0 (off) to 65535", () => {
  assert.equal(fromFile("METRICS_PORT=0\n").metricsPort, 0);
  assert.equal(fromFile("METRICS_PORT=65535\n").metricsPort, 65535);
  assert.equal(
    problemOf("METRICS_PORT=65536\n"),
    'METRICS_PORT must be an integer from 0 to 65535: got "65536" (env.conf line 1)',
  );
});

Deno.test("loadConfig() reads STREAM_GROUPS_SYNC as glob patterns (empty, the default: off) and STREAM_GROUPS_SYNC_INTERVAL as seconds > 0", () => {
  assert.deepEqual(fromFile("").groupsSync, []);
  assert.equal(runSettings(fromFile("")).groupSync, undefined);
  const config = fromFile(
    "STREAM_GROUPS_SYNC= billing, app-* ,billing\nSTREAM_GROUPS_SYNC_INTERVAL=0.5\n",
  );
  assert.deepEqual(config.groupsSync, ["billing", "app-*"]);
  assert.deepEqual(runSettings(config).groupSync, {
    patterns: ["billing", "app-*"],
    ownGroup: "redis-sync-group",
    everyMs: 500,
    pending: false,
  });
  assert.equal(
    problemOf("STREAM_GROUPS_SYNC_INTERVAL=0\n"),
    'STREAM_GROUPS_SYNC_INTERVAL must be a number of seconds > 0: got "0" (env.conf line 1)',
  );
  // Replication off: nothing to mirror.
  const off = fromFile("STREAM_GROUPS_SYNC=*\nREDIS_STREAMS_ENABLED=false\n");
  assert.equal(runSettings(off).groupSync, undefined);
});

Deno.test("loadConfig() reads HEARTBEAT_INTERVAL: 0 (none, the default) or seconds > 0, fractions allowed", () => {
  assert.equal(fromFile("").heartbeatInterval, 0);
  for (const zero of ["0", "0.0", "00", " 0 "]) {
    assert.equal(fromFile(`HEARTBEAT_INTERVAL=${zero}\n`).heartbeatInterval, 0, zero);
  }
  assert.equal(fromFile("HEARTBEAT_INTERVAL=1\n").heartbeatInterval, 1);
  assert.equal(fromFile("HEARTBEAT_INTERVAL=0.25\n").heartbeatInterval, 0.25);
  assert.equal(
    problemOf("HEARTBEAT_INTERVAL=-1\n"),
    'HEARTBEAT_INTERVAL must be 0 (none) or a number of seconds > 0: got "-1" (env.conf line 1)',
  );
  assert.match(problemOf("HEARTBEAT_INTERVAL=1s\n"), /^HEARTBEAT_INTERVAL must be 0 \(none\) or/);
  assert.match(problemOf("HEARTBEAT_INTERVAL=0.0001\n"), /the smallest is 0\.001/);
  assert.ok(
    formatConfig(fromFile("HEARTBEAT_INTERVAL=2.5\n")).includes("\nHEARTBEAT_INTERVAL=2.5\n"),
  );
});

Deno.test("loadConfig() parses STREAM_DISCOVERY_PATTERNS, trimmed, empty entries ignored", () => {
  assert.deepStrictEqual(
    fromFile("STREAM_DISCOVERY_PATTERNS= a-* , ,b:*:c,a-*,\n").discoveryPatterns,
    ["a-*", "b:*:c"],
  );
});

Deno.test("loadConfig() requires a discovery pattern when discovery is on", () => {
  assert.equal(
    problemOf("STREAM_DISCOVERY_PATTERNS= , \n"),
    'STREAM_DISCOVERY_PATTERNS must list at least one pattern when STREAM_AUTO_DISCOVERY is on: got "," (env.conf line 1)',
  );
  const config = fromFile(
    "STREAM_AUTO_DISCOVERY=off\nSTREAM_DISCOVERY_PATTERNS=\nREDIS_STREAMS=s\n",
  );
  assert.deepStrictEqual(config.discoveryPatterns, []);
});

// --- REDIS_STREAMS ---------------------------------------------------------------------------

Deno.test("loadConfig() parses REDIS_STREAMS keys and dbN:key entries", () => {
  const config = fromFile("SOURCE_REDIS_DB=2\nREDIS_STREAMS=stream1,db1:stream2\n");
  assert.deepStrictEqual(config.streams, [{ db: 2, key: "stream1" }, { db: 1, key: "stream2" }]);
});

Deno.test("loadConfig() keeps colons that are not a DB prefix in REDIS_STREAMS keys", () => {
  const config = fromFile(
    "TARGET_REDIS_DB=same\nREDIS_STREAMS=device:1:stream,db3:device:2:stream,db:x,dbx:y,DB1:z,db0:db3:w\n",
  );
  assert.deepStrictEqual(config.streams, [
    { db: 0, key: "device:1:stream" },
    { db: 3, key: "device:2:stream" },
    { db: 0, key: "db:x" },
    { db: 0, key: "dbx:y" },
    { db: 0, key: "DB1:z" },
    { db: 0, key: "db3:w" },
  ]);
});

Deno.test("loadConfig() trims REDIS_STREAMS entries, ignores empty ones and removes duplicates", () => {
  const config = fromFile('REDIS_STREAMS=" a , ,db1:b,a,db0:a, db1:b ,"\n');
  assert.deepStrictEqual(config.streams, [{ db: 0, key: "a" }, { db: 1, key: "b" }]);
});

Deno.test("loadConfig() rejects REDIS_STREAMS entries with a DB above 15 or no key", () => {
  assert.equal(
    problemOf("REDIS_STREAMS=ok,db16:x,db2:\n"),
    'REDIS_STREAMS must be a comma-separated list of "key" or "dbN:key" with N from 0 to 15: got "ok,db16:x,db2:", where "db16:x" names DB 16, "db2:" has no key (env.conf line 1)',
  );
});

Deno.test("loadConfig() rejects manual streams of two DBs that land on one target stream", () => {
  assert.equal(
    problemOf("REDIS_STREAMS=db0:x,db1:x\n"),
    'REDIS_STREAMS entries "db0:x" and "db1:x" would both be written to target stream "x" in DB 0',
  );
  assert.equal(
    problemOf(
      "SOURCE_REDIS_DB=4\nTARGET_REDIS_DB=7\nTARGET_STREAM_PREFIX=synced:\nREDIS_STREAMS=x,db1:x\n",
    ),
    'REDIS_STREAMS entries "x" and "db1:x" would both be written to target stream "synced:x" in DB 7',
  );
});

Deno.test("loadConfig() never finds collisions with TARGET_REDIS_DB=same", () => {
  const config = fromFile("TARGET_REDIS_DB=SAME\nREDIS_STREAMS=db0:x,db1:x\n");
  assert.deepStrictEqual(config.streams, [{ db: 0, key: "x" }, { db: 1, key: "x" }]);
  assert.equal(config.target.db, "same");
});

// --- all problems at once, passwords ---------------------------------------------------------

Deno.test("loadConfig() reports every problem at once, in key order", () => {
  const file = [
    "SOURCE_REDIS_PORT=0",
    "SOURCE_REDIS_POOL_SIZE=0",
    "TARGET_REDIS_DB=16",
    "STREAM_BATCH_SIZE=abc",
    "STREAM_POLL_INTERVAL=0",
    "LOG_LEVEL=loud",
    "garbage",
  ].join("\n");
  assert.deepStrictEqual(problemsOf(file, { METRICS_PORT: "-5" }, { logFormat: "xml" }), [
    'env.conf line 7: expected KEY=value, got "garbage"',
    'SOURCE_REDIS_PORT must be an integer from 1 to 65535: got "0" (env.conf line 1)',
    'SOURCE_REDIS_POOL_SIZE must be an integer >= 1: got "0" (env.conf line 2)',
    'TARGET_REDIS_DB must be a DB number from 0 to 15, or "same": got "16" (env.conf line 3)',
    'STREAM_BATCH_SIZE must be an integer from 1 to 100000: got "abc" (env.conf line 4)',
    'STREAM_POLL_INTERVAL must be a number of seconds > 0: got "0" (env.conf line 5)',
    'LOG_LEVEL must be one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL: got "loud" (env.conf line 6)',
    '--log-format must be "text" or "json": got "xml"',
    'METRICS_PORT must be an integer from 0 to 65535: got "-5" (from the environment)',
  ]);
});

Deno.test("loadConfig() never puts a password in a ConfigError", () => {
  const file = [
    `SOURCE_REDIS_PASSWORD=${PASSWORD}`,
    `TARGET_REDIS_PASSWORD="${PASSWORD}`,
    `SOURCE_REDIS_PASWORD=${PASSWORD}`,
    `SOURCE_REDIS_PASSWORD ${PASSWORD}`,
    "SOURCE_REDIS_PORT=0",
    `TARGET_REDIS_PASSWORD='${PASSWORD}'junk`,
  ].join("\n");
  const problems = problemsOf(file, { TARGET_REDIS_PASSWORD: PASSWORD, SOURCE_REDIS_DB: "x" });
  assert.ok(problems.length >= 4, problems.join("\n"));
  for (const problem of problems) assert.ok(!problem.includes("S3cret"), problem);
});

Deno.test("loadConfig() never puts a password in a warning", () => {
  const { warnings } = loadConfig({}, {}, `SOURCE_REDIS_PASWORD=${PASSWORD}\nTAG=1\nTAG=2\n`);
  assert.deepStrictEqual(warnings, [
    "env.conf line 3: TAG is set again (first on line 2); the value on line 3 is used",
    'Unknown key "SOURCE_REDIS_PASWORD" in env.conf (line 1): did you mean "SOURCE_REDIS_PASSWORD"?',
  ]);
});

// --- formatConfig ----------------------------------------------------------------------------

Deno.test("formatConfig() prints one KEY=value line per key, in CONFIG_KEYS order", () => {
  const text = formatConfig(SEED_CONFIG);
  const lines = text.trimEnd().split("\n");
  assert.deepStrictEqual(lines.map((line) => line.split("=")[0]), CONFIG_KEYS.map((e) => e.key));
  assert.ok(lines.includes("SOURCE_REDIS_PASSWORD="));
  assert.ok(lines.includes("REDIS_DB_SEARCH_RANGE=0-15"));
  assert.ok(lines.includes("LOG_FORMAT=%(asctime)s - %(name)s - %(levelname)s - %(message)s"));
  assert.ok(text.endsWith("\n"));
});

Deno.test("formatConfig() prints passwords as *** and never the password", () => {
  const config = fromFile(
    `SOURCE_REDIS_PASSWORD=${PASSWORD}\nTARGET_REDIS_PASSWORD=${PASSWORD}\nSOURCE_REDIS_USERNAME=sync\n`,
  );
  const text = formatConfig(config);
  assert.ok(!text.includes("S3cret"));
  assert.ok(text.includes("\nSOURCE_REDIS_PASSWORD=***\n"));
  assert.ok(text.includes("\nTARGET_REDIS_PASSWORD=***\n"));
  assert.ok(text.includes("\nSOURCE_REDIS_USERNAME=sync\n"));
});

Deno.test("formatConfig() output loads back to the same configuration", () => {
  const file = [
    "SOURCE_REDIS_HOST=10.0.0.5",
    "SOURCE_REDIS_USERNAME=replicator",
    "SOURCE_REDIS_DB=3",
    "SOURCE_REDIS_BACKOFF_BASE=0.5",
    "TARGET_REDIS_DB=same",
    `TARGET_STREAM_PREFIX=" copy #1 's' "`,
    "REDIS_STREAMS=a,db1:device:1:stream,db3:x,db0:db3:y",
    "REDIS_STREAMS_ENABLED=no",
    "STREAM_CONSUMER_NAME='#hash'",
    "STREAM_POLL_INTERVAL=0.25",
    "STREAM_START_ID=$",
    "STREAM_DISCOVERY_PATTERNS=x:*, y-*",
    "REDIS_DB_SEARCH_RANGE=0-3,7,9-10,12",
    "LOG_LEVEL=warn",
    `LOG_FORMAT="%(asctime)s #\\t%(message)s\\n"`,
    "METRICS_PORT=0",
    "TAG=v1.2.3",
  ].join("\n");
  const config = fromFile(file);
  assert.equal(config.targetStreamPrefix, " copy #1 's' ");
  const printed = formatConfig(config);
  assert.ok(printed.includes(`\nTARGET_STREAM_PREFIX=" copy #1 's' "\n`), printed);
  assert.ok(printed.includes("\nSTREAM_CONSUMER_NAME='#hash'\n"), printed);
  assert.ok(
    printed.includes("\nREDIS_STREAMS=db3:a,db1:device:1:stream,db3:x,db0:db3:y\n"),
    printed,
  );
  assert.ok(printed.includes("\nREDIS_DB_SEARCH_RANGE=0-3,7,9-10,12\n"), printed);
  assert.deepStrictEqual(parseEnvFile(printed).problems, []);
  assert.deepStrictEqual(loadConfig({}, {}, printed), { config, warnings: [] });
  assert.deepStrictEqual(fromFile(formatConfig(SEED_CONFIG)), SEED_CONFIG);
});

Deno.test("formatConfig() output loads back to the same configuration but for passwords", () => {
  const config = fromFile(`SOURCE_REDIS_PASSWORD=${PASSWORD}\nSTREAM_AUTO_DISCOVERY=false\n`);
  const reloaded = fromFile(formatConfig(config));
  assert.equal(reloaded.source.password, "***");
  assert.deepStrictEqual(
    { ...reloaded, source: { ...reloaded.source, password: PASSWORD } },
    config,
  );
});

Deno.test("loadConfig() reads and validates the group maintenance keys", () => {
  const { config } = loadConfig(
    {},
    {},
    "STREAM_PENDING_CHECK_INTERVAL=2.5\nSTREAM_CONSUMER_IDLE_TIMEOUT=120\n",
  );
  assert.equal(config.pendingCheckInterval, 2.5);
  assert.equal(config.consumerIdleTimeout, 120);
  assert.throws(
    () => loadConfig({}, {}, "STREAM_PENDING_CHECK_INTERVAL=0\nSTREAM_CONSUMER_IDLE_TIMEOUT=x\n"),
    (error: Error) =>
      /STREAM_PENDING_CHECK_INTERVAL must be .*: got "0"/.test(error.message) &&
      /STREAM_CONSUMER_IDLE_TIMEOUT must be .*: got "x"/.test(error.message),
  );
});

Deno.test("loadConfig() reads the lease keys and names what a bad value should be", () => {
  const config = fromFile("STREAM_LEASES=false\nSTREAM_LEASE_TTL=2.5\nINSTANCE_ID=web-7\n");
  assert.equal(config.leases, false);
  assert.equal(config.leaseTtl, 2.5);
  assert.equal(config.instanceId, "web-7");
  assert.throws(
    () => fromFile("STREAM_LEASE_TTL=0.5\n"),
    (e: Error) => /STREAM_LEASE_TTL/.test(e.message) && /seconds >= 1/.test(e.message),
  );
  assert.throws(
    () => fromFile("INSTANCE_ID=web 1\n"),
    (e: Error) => /INSTANCE_ID/.test(e.message) && /letters, digits/.test(e.message),
  );
});

// --- *_REDIS_URL -----------------------------------------------------------------------------

Deno.test("a redis:// URL sets host, port, user, percent-decoded password and DB, over the separate keys, with a warning for each of those set", () => {
  const { config, warnings } = loadConfig(
    {},
    {},
    "SOURCE_REDIS_URL=redis://copier:p%40ss%3Aw0rd@10.0.0.5:6380/3\nSOURCE_REDIS_HOST=old-host\n" +
      "TARGET_REDIS_URL=redis://:only-a-password@[::1]\n",
  );
  assert.equal(config.source.host, "10.0.0.5");
  assert.equal(config.source.port, 6380);
  assert.equal(config.source.username, "copier");
  assert.equal(config.source.password, "p@ss:w0rd");
  assert.equal(config.source.db, 3);
  assert.equal(config.target.host, "::1");
  assert.equal(config.target.port, 6379);
  assert.equal(config.target.username, undefined);
  assert.equal(config.target.password, "only-a-password");
  assert.equal(config.target.db, 0, "no path: TARGET_REDIS_DB applies");
  assert.deepEqual(warnings, [
    "SOURCE_REDIS_HOST (env.conf line 2) is ignored: SOURCE_REDIS_URL is set",
  ]);
});

Deno.test("bad URLs are configuration errors that say what is wrong and never show the URL", () => {
  const cases: Array<[string, RegExp]> = [
    ["rediss://u:pw-secret-1@h:0", /its port is not 1-65535/],
    ["http://u:pw-secret-1@h", /the scheme is "http:\/\/"/],
    ["redis://u:pw-secret-1@h/16", /its path is not a DB number from 0 to 15/],
    ["redis://u:pw-secret-1@h/0?x=1", /a query or a fragment/],
    ["not a url pw-secret-1", /it is not a URL/],
  ];
  for (const [url, reason] of cases) {
    const problems = problemsOf(`SOURCE_REDIS_URL=${url}\n`);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(
      problems[0],
      /^SOURCE_REDIS_URL must be a URL redis:\/\/ or rediss:\/\/\[user\[:password\]@\]host/,
    );
    assert.match(problems[0], reason);
    assert.ok(!problems[0].includes("pw-secret-1"), problems[0]);
  }
});

Deno.test("formatConfig() prints a URL with its password as *** and the values it set", () => {
  const text = formatConfig(
    fromFile("TARGET_REDIS_URL=redis://copier:pw-secret-2@t.example:6390/2\n"),
  );
  assert.match(text, /^TARGET_REDIS_URL=redis:\/\/copier:\*\*\*@t\.example:6390\/2$/m);
  assert.match(text, /^TARGET_REDIS_HOST=t\.example$/m);
  assert.match(text, /^TARGET_REDIS_PASSWORD=\*\*\*$/m);
  assert.match(text, /^TARGET_REDIS_DB=2$/m);
  assert.match(text, /^SOURCE_REDIS_URL=$/m);
  assert.ok(!text.includes("pw-secret-2"), text);
});
