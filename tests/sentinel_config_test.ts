/** The Sentinel keys as loadConfig() reads them (pure), and how they are printed. */
import assert from "node:assert/strict";
import { formatConfig } from "../lib/config/format_config.ts";
import { loadConfig } from "../lib/config/load_config.ts";
import { problemsOf } from "./_config.ts";

Deno.test("SENTINELS and SENTINEL_MASTER give the server's sentinels; HOST and PORT are then ignored, with a warning", () => {
  const { config, warnings } = loadConfig(
    {},
    {},
    "SOURCE_REDIS_HOST=ignored.example\n" +
      "SOURCE_REDIS_SENTINELS=10.0.0.1:26379, [::1]:26380 ,s3.example:26381\n" +
      "SOURCE_REDIS_SENTINEL_MASTER=orders\nSOURCE_REDIS_SENTINEL_PASSWORD=sentinel-secret-9\n",
  );
  assert.deepStrictEqual(config.source.sentinel, {
    addresses: [
      { host: "10.0.0.1", port: 26379 },
      { host: "::1", port: 26380 },
      { host: "s3.example", port: 26381 },
    ],
    masterName: "orders",
    password: "sentinel-secret-9",
    tls: false,
  });
  assert.equal(config.target.sentinel, undefined);
  assert.deepStrictEqual(warnings, [
    "SOURCE_REDIS_HOST (env.conf line 1) is ignored: SOURCE_REDIS_SENTINELS is set",
  ]);
  const printed = formatConfig(config);
  assert.match(
    printed,
    /^SOURCE_REDIS_SENTINELS=10\.0\.0\.1:26379,\[::1\]:26380,s3\.example:26381$/m,
  );
  assert.match(printed, /^SOURCE_REDIS_SENTINEL_PASSWORD=\*\*\*$/m);
  assert.ok(!printed.includes("sentinel-secret-9"));
  // Printed, it loads back to the same sentinels.
  const again = loadConfig(
    {},
    {},
    printed.replace("SENTINEL_PASSWORD=***", "SENTINEL_PASSWORD=sentinel-secret-9"),
  );
  assert.deepStrictEqual(again.config.source.sentinel, config.source.sentinel);
});

Deno.test("SENTINEL_TLS follows TLS unless set, and may not be on alone", () => {
  const on = loadConfig(
    {},
    {},
    "TARGET_REDIS_TLS=true\nTARGET_REDIS_SENTINELS=h:1\nTARGET_REDIS_SENTINEL_MASTER=m\n",
  );
  assert.equal(on.config.target.sentinel?.tls, true);
  const off = loadConfig(
    {},
    {},
    "TARGET_REDIS_TLS=true\nTARGET_REDIS_SENTINELS=h:1\nTARGET_REDIS_SENTINEL_MASTER=m\nTARGET_REDIS_SENTINEL_TLS=false\n",
  );
  assert.equal(off.config.target.sentinel?.tls, false);
  assert.deepStrictEqual(
    problemsOf(
      "TARGET_REDIS_SENTINELS=h:1\nTARGET_REDIS_SENTINEL_MASTER=m\nTARGET_REDIS_SENTINEL_TLS=true\n",
    ),
    [
      "TARGET_REDIS_SENTINEL_TLS is true, but TARGET_REDIS_TLS is off: the sentinels' TLS uses the " +
      "server's TLS settings, so set TARGET_REDIS_TLS=true too",
    ],
  );
});

Deno.test("bad sentinel settings are configuration errors that say what is expected", () => {
  assert.deepStrictEqual(problemsOf("SOURCE_REDIS_SENTINELS=h:1\n"), [
    "SOURCE_REDIS_SENTINEL_MASTER must be set: SOURCE_REDIS_SENTINELS is set, and the sentinels " +
    "are asked for a master by its name",
  ]);
  assert.deepStrictEqual(problemsOf("SOURCE_REDIS_SENTINEL_MASTER=m\n"), [
    "SOURCE_REDIS_SENTINEL_MASTER is set (env.conf line 1), but SOURCE_REDIS_SENTINELS is empty: " +
    "set the sentinels' addresses, or empty SOURCE_REDIS_SENTINEL_MASTER",
  ]);
  for (const bad of ["h", "h:0", "h:70000", "h:1,:2", "a b:1"]) {
    const [problem] = problemsOf(`SOURCE_REDIS_SENTINELS=${bad}\nSOURCE_REDIS_SENTINEL_MASTER=m\n`);
    assert.match(
      problem,
      /^SOURCE_REDIS_SENTINELS must be a comma-separated list of host:port/,
      bad,
    );
  }
});
