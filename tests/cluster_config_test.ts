/** The Redis Cluster keys as loadConfig() reads them (pure): DB 0 only, and what is printed. */
import assert from "node:assert/strict";
import { formatConfig } from "../lib/config/format_config.ts";
import { loadConfig } from "../lib/config/load_config.ts";
import { problemsOf } from "./_config.ts";

Deno.test("SOURCE_REDIS_CLUSTER=true: the discovery range left at its default becomes DB 0 alone, and is printed so", () => {
  const { config, warnings } = loadConfig({}, {}, "SOURCE_REDIS_CLUSTER=true\n");
  assert.equal(config.source.cluster, true);
  assert.equal(config.target.cluster, undefined);
  assert.deepStrictEqual(config.dbSearchRange, [0]);
  assert.deepStrictEqual(warnings, []);
  const printed = formatConfig(config);
  assert.match(printed, /^SOURCE_REDIS_CLUSTER=true$/m);
  assert.match(printed, /^TARGET_REDIS_CLUSTER=false$/m);
  assert.match(printed, /^REDIS_DB_SEARCH_RANGE=0$/m);
  // Printed, it loads back the same.
  assert.deepStrictEqual(loadConfig({}, {}, printed).config, config);
  // Without the key: the range of the original service.
  assert.equal(loadConfig({}, {}, "").config.dbSearchRange.length, 16);
});

Deno.test("a cluster source with DBs other than 0 is refused, each key named with its value and origin", () => {
  assert.deepStrictEqual(
    problemsOf(
      "SOURCE_REDIS_CLUSTER=true\nSOURCE_REDIS_DB=3\nREDIS_DB_SEARCH_RANGE=0-2\n" +
        "REDIS_STREAMS=orders,db5:audit\n",
    ),
    [
      'SOURCE_REDIS_DB must be 0 when SOURCE_REDIS_CLUSTER is true (a cluster has DB 0 only): got "3" (env.conf line 2)',
      'REDIS_DB_SEARCH_RANGE must be "0" when SOURCE_REDIS_CLUSTER is true (a cluster has DB 0 only): got "0-2" (env.conf line 3)',
      'REDIS_STREAMS entry "orders" names DB 3, but SOURCE_REDIS_CLUSTER is true and a cluster has DB 0 only: write it without "db3:"',
      'REDIS_STREAMS entry "db5:audit" names DB 5, but SOURCE_REDIS_CLUSTER is true and a cluster has DB 0 only: write it without "db5:"',
    ],
  );
  // DB 0 spelled out is fine.
  const ok = loadConfig(
    {},
    {},
    "SOURCE_REDIS_CLUSTER=true\nREDIS_DB_SEARCH_RANGE=0\n" +
      "REDIS_STREAMS=db0:orders,audit\n",
  );
  assert.deepStrictEqual(ok.config.streams.map((s) => s.db), [0, 0]);
});

Deno.test("a cluster target takes DB 0 or same; another DB, or same with source DBs other than 0, is refused", () => {
  assert.deepStrictEqual(problemsOf("TARGET_REDIS_CLUSTER=true\nTARGET_REDIS_DB=2\n"), [
    'TARGET_REDIS_DB must be 0 (or "same") when TARGET_REDIS_CLUSTER is true (a cluster has DB 0 only): got "2" (env.conf line 2)',
  ]);
  assert.deepStrictEqual(
    problemsOf("TARGET_REDIS_CLUSTER=true\nTARGET_REDIS_DB=same\nREDIS_DB_SEARCH_RANGE=0,4\n"),
    [
      'TARGET_REDIS_DB is "same", but TARGET_REDIS_CLUSTER is true (DB 0 only) and source DBs 4 are replicated (REDIS_DB_SEARCH_RANGE, REDIS_STREAMS): set TARGET_REDIS_DB=0, or replicate DB 0 only',
    ],
  );
  // From many source DBs into the cluster's DB 0 (the default): allowed.
  const many = loadConfig({}, {}, "TARGET_REDIS_CLUSTER=true\n").config;
  assert.equal(many.target.db, 0);
  assert.equal(many.dbSearchRange.length, 16);
  // same with a cluster on both sides: DB 0 to DB 0.
  const both = loadConfig(
    {},
    { SOURCE_REDIS_CLUSTER: "yes" },
    "TARGET_REDIS_CLUSTER=1\nTARGET_REDIS_DB=same\n",
  );
  assert.equal(both.config.target.db, "same");
});

Deno.test("CLUSTER and SENTINELS on one side are refused; a bad CLUSTER value names what is expected", () => {
  assert.deepStrictEqual(
    problemsOf(
      "TARGET_REDIS_CLUSTER=true\nTARGET_REDIS_SENTINELS=10.0.0.1:26379\nTARGET_REDIS_SENTINEL_MASTER=m\n",
    ),
    [
      "TARGET_REDIS_CLUSTER and TARGET_REDIS_SENTINELS are both set: a cluster finds its masters itself, so empty TARGET_REDIS_SENTINELS (or set TARGET_REDIS_CLUSTER=false)",
    ],
  );
  const [problem] = problemsOf("SOURCE_REDIS_CLUSTER=maybe\n");
  assert.match(problem, /^SOURCE_REDIS_CLUSTER must be .*got "maybe" \(env\.conf line 1\)$/);
});
