/**
 * The artifacts operators deploy with (deploy/): the Prometheus alert rules
 * (promtool check and unit tests), the Grafana dashboard and the alerts
 * against the real /metrics of a running replicator (every metric, label and
 * state they query must be served), and the Kubernetes manifests (validated
 * by kubernetes-models, then field by field, their configuration loaded by
 * the service's own loader).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { spawnCli, waitFor } from "../testing/cli.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import { CONFIG_KEYS, loadConfig } from "../lib/config/mod.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { makeStreamRef } from "../lib/replication/mod.ts";
import { replicationEnv } from "./_replication.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPLOY = join(ROOT, "deploy");
const ALERTS = join(DEPLOY, "prometheus", "alerts.yml");
const ALERTS_TEST = join(DEPLOY, "prometheus", "alerts_test.yml");
const PROMETHEUS_EXAMPLE = join(DEPLOY, "prometheus", "prometheus.example.yml");
const DASHBOARD = join(DEPLOY, "grafana", "dashboard.json");
const KUBERNETES = join(DEPLOY, "kubernetes");
const JOB = "redis-stream-sync";

// ---------------------------------------------------------------------------
// promtool

/** Runs promtool; fails, saying how to get it, when it is not installed. */
async function promtool(args: string[], cwd = ROOT): Promise<{ code: number; output: string }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("promtool", {
      args,
      cwd,
      stdin: "null",
      signal: AbortSignal.timeout(60_000),
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      assert.fail(
        "promtool is not on PATH: run scripts/setup.sh (it installs Debian's prometheus package, " +
          "which has promtool), or: apt-get install -y --no-install-recommends prometheus",
      );
    }
    throw error;
  }
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

interface AlertRule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const doc = parseYaml(Deno.readTextFileSync(ALERTS)) as {
    groups: Array<{ rules: AlertRule[] }>;
  };
  return doc.groups.flatMap((g) => g.rules);
}

// ---------------------------------------------------------------------------
// PromQL, as far as the checks need it

const PROMQL_KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "offset",
  "bool",
  "inf",
  "nan",
]);
/** Series Prometheus makes for every scrape target: never in /metrics. */
const PROMETHEUS_SERIES = new Set(["up"]);
/** Labels Prometheus adds to every series of a target. */
const TARGET_LABELS = new Set(["job", "instance"]);

/** `expr` without Grafana variables (`$job`, `${datasource}`, `$__rate_interval`). */
function withoutVariables(expr: string): string {
  return expr.replace(/\$\{[^}]*\}|\$\w+/g, "");
}

/** The metric names `expr` selects (not functions, keywords, labels, durations or numbers). */
function metricNames(expr: string): string[] {
  const bare = withoutVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(m[1].toLowerCase())) names.add(m[1]);
  }
  return [...names];
}

/** The label matchers of each `name{...}` selector of `expr`. */
function selectors(
  expr: string,
): Array<{ name: string; matchers: Array<{ label: string; op: string; value: string }> }> {
  const found = [];
  for (const m of expr.matchAll(/([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    const matchers = [...m[2].matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)]
      .map((x) => ({ label: x[1], op: x[2], value: x[3] }));
    found.push({ name: m[1], matchers });
  }
  return found;
}

/** The labels named by `by (...)`, `without (...)`, `on (...)` and `ignoring (...)`. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/gi)]
    .flatMap((m) => m[1].split(",").map((l) => l.trim()).filter((l) => l));
}

/** What a scrape serves: every metric name (with histogram series) and its labels. */
interface Served {
  /** Metric name -> the label names its samples carry (empty when it has no sample). */
  labels: Map<string, Set<string>>;
}

/** Reads a Prometheus text exposition. */
function served(text: string): Served {
  const labels = new Map<string, Set<string>>();
  const add = (name: string) => {
    if (!labels.has(name)) labels.set(name, new Set());
    return labels.get(name)!;
  };
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      add(type[1]);
      if (type[2] === "histogram") {
        for (const suffix of ["_bucket", "_sum", "_count"]) add(type[1] + suffix);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const set = add(sample[1]);
    for (const m of (sample[2] ?? "").matchAll(/(\w+)="/g)) set.add(m[1]);
  }
  return { labels };
}

/** The values the `state` label of `redis_stream_sync_streams` can take (StreamState). */
function streamStates(): Set<string> {
  const source = Deno.readTextFileSync(
    join(ROOT, "lib", "replication", "stream", "stream_life.ts"),
  );
  const union = /export type StreamState =([^;]+);/.exec(source);
  assert.ok(union, "no StreamState type in stream_life.ts");
  return new Set([...union[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]));
}

/**
 * What `query` (found at `where`) names that `scrape` does not serve: a
 * metric, a label of a selector or of a grouping, a state that does not exist.
 * Labels are looked up in `labels` (the scrape's, and those of counters that
 * have no sample in it).
 */
function queryProblems(
  where: string,
  query: string,
  scrape: Served,
  labels: Map<string, Set<string>>,
): string[] {
  const problems: string[] = [];
  const names = metricNames(query);
  if (names.length === 0) problems.push(`${where}: selects no metric: ${query}`);
  const known = new Set(TARGET_LABELS);
  for (const name of names) {
    if (PROMETHEUS_SERIES.has(name)) continue;
    if (!scrape.labels.has(name)) {
      problems.push(`${where}: "${name}" is not served on /metrics: ${query}`);
      continue;
    }
    for (const l of labels.get(name) ?? []) known.add(l);
  }
  for (const { name, matchers } of selectors(withoutVariables(query))) {
    const own = new Set([...TARGET_LABELS, ...(labels.get(name) ?? [])]);
    for (const { label, op, value } of matchers) {
      if (!PROMETHEUS_SERIES.has(name) && !own.has(label)) {
        problems.push(`${where}: ${name} has no label "${label}": ${query}`);
      }
      if (name === "redis_stream_sync_streams" && label === "state" && op === "=") {
        if (!streamStates().has(value)) {
          problems.push(`${where}: no stream state is called "${value}": ${query}`);
        }
      }
    }
  }
  for (const label of groupingLabels(query)) {
    if (!known.has(label)) {
      problems.push(`${where}: groups by "${label}", which none of its metrics has: ${query}`);
    }
  }
  return problems;
}

interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string }>;
  panels?: DashboardPanel[];
}

interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  templating: {
    list: Array<{ name: string; type: string; query?: string | { query: string } }>;
  };
}

function readDashboard(): Dashboard {
  return JSON.parse(Deno.readTextFileSync(DASHBOARD)) as Dashboard;
}

/** Every panel, rows' panels included. */
function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL query of the dashboard, with where it is. */
function dashboardQueries(dashboard: Dashboard): Array<{ where: string; query: string }> {
  const queries = [];
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      queries.push({ where: `panel "${panel.title}" ${target.refId}`, query: target.expr });
    }
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type !== "query") continue;
    const text = typeof variable.query === "string" ? variable.query : variable.query?.query;
    // label_values(<selector>, <label>): the selector is a query, the label one of its labels.
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(text ?? "");
    assert.ok(m, `variable $${variable.name}: not label_values(selector, label): ${text}`);
    queries.push({ where: `variable $${variable.name}`, query: `count by (${m[2]}) (${m[1]})` });
  }
  return queries;
}

/**
 * The label names of every series the service's Metrics can make, counters
 * included that a short run never increments (stalls, trimmed entries...):
 * each hook called once on a registry of this process.
 */
function registeredLabels(): Map<string, Set<string>> {
  const metrics = new Metrics("test");
  const hooks = metrics.hooks();
  const ref = makeStreamRef(0, "orders");
  hooks.onBatch?.(ref, { written: 1, skipped: 1, ms: 1, ids: [], deleted: 0 });
  hooks.onError?.(ref, "OOM");
  hooks.onReadError?.("connection");
  hooks.onTrimmedBeforeCopy?.(ref, 1);
  hooks.onTargetLoss?.(ref);
  hooks.onStall?.(ref);
  hooks.onTargetRemoved?.(ref, 1);
  hooks.onLeases?.({ acquired: 1, takenOver: 1, lost: 1, handedOver: 1 } as never);
  return served(metrics.text()).labels;
}

/** `a` and `b` merged: each name's labels from both. */
function mergeLabels(
  a: Map<string, Set<string>>,
  b: Map<string, Set<string>>,
): Map<string, Set<string>> {
  const merged = new Map<string, Set<string>>();
  for (const map of [a, b]) {
    for (const [name, set] of map) merged.set(name, new Set([...(merged.get(name) ?? []), ...set]));
  }
  return merged;
}

// ---------------------------------------------------------------------------
// Alerts

Deno.test("alerts.yml passes promtool check rules and its unit tests (alerts_test.yml) pass promtool test rules", async () => {
  const check = await promtool(["check", "rules", ALERTS]);
  assert.equal(check.code, 0, check.output);
  assert.match(check.output, /SUCCESS: \d+ rules found/);
  const test = await promtool(["test", "rules", ALERTS_TEST]);
  assert.equal(test.code, 0, test.output);
  assert.match(test.output, /SUCCESS/);
});

Deno.test("alerts.yml alerts on stalls, lag, delay, trimmed entries, streams in error and instances down; alerts_test.yml has a firing and a silent case for each alert", () => {
  const rules = alertRules();
  const names = rules.map((r) => r.alert);
  assert.equal(new Set(names).size, names.length, `an alert name twice: ${names}`);
  const using = (metric: string) => rules.filter((r) => metricNames(r.expr).includes(metric));
  assert.ok(using("redis_stream_sync_stalls_total").length > 0, "an alert on stalls_total");
  assert.ok(
    rules.some((r) => /redis_stream_sync_streams\{[^}]*state="stalled"/.test(r.expr)),
    'an alert on streams{state="stalled"}',
  );
  assert.ok(using("redis_stream_sync_lag_seconds").length > 0, "an alert on lag_seconds");
  assert.ok(
    using("redis_stream_sync_replication_delay_seconds_bucket").length > 0,
    "an alert on the replication delay histogram",
  );
  assert.ok(using("redis_stream_sync_entries_trimmed_before_copy_total").length > 0);
  assert.ok(rules.some((r) => /redis_stream_sync_streams\{[^}]*state="error"/.test(r.expr)));
  assert.ok(rules.some((r) => /^up\{job="redis-stream-sync"\} == 0$/.test(r.expr)), "up == 0");
  assert.ok(rules.some((r) => /^absent\(up\{job="redis-stream-sync"\}\)$/.test(r.expr)), "absent");
  for (const rule of rules) {
    assert.match(rule.labels?.severity ?? "", /^(warning|critical)$/, `${rule.alert} severity`);
    for (const s of selectors(rule.expr).filter((s) => s.name === "up")) {
      assert.deepEqual(s.matchers, [{ label: "job", op: "=", value: JOB }], rule.expr);
    }
  }

  const tests = parseYaml(Deno.readTextFileSync(ALERTS_TEST)) as {
    rule_files: string[];
    tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
  };
  assert.deepEqual(tests.rule_files, ["alerts.yml"]);
  const cases = tests.tests.flatMap((t) => t.alert_rule_test);
  for (const name of names) {
    const mine = cases.filter((c) => c.alertname === name);
    assert.ok(mine.some((c) => c.exp_alerts.length > 0), `no test where ${name} fires`);
    assert.ok(mine.some((c) => c.exp_alerts.length === 0), `no test where ${name} stays silent`);
  }
  for (const c of cases) {
    assert.ok(names.includes(c.alertname), `alerts_test.yml tests "${c.alertname}", not an alert`);
  }
  const readme = Deno.readTextFileSync(join(DEPLOY, "README.md"));
  for (const name of names) assert.ok(readme.includes(`\`${name}\``), `deploy/README.md: ${name}`);
});

Deno.test("scripts/setup.sh installs promtool: without it on PATH it says how (SETUP_NO_INSTALL=1), with it it says nothing of it", async () => {
  const setup = join(ROOT, "scripts", "setup.sh");
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-setup-" });
  try {
    // A PATH with the shell's utilities only: no promtool (nor the other tools).
    for (const tool of ["bash", "id", "sed", "mktemp", "cat", "rm", "env", "dirname", "readlink"]) {
      const found = (Deno.env.get("PATH") ?? "").split(":").map((d) => join(d, tool))
        .find((p) => {
          try {
            return Deno.statSync(p).isFile;
          } catch {
            return false;
          }
        });
      if (found) await Deno.symlink(found, join(dir, tool));
    }
    const run = async (path: string) => {
      const out = await new Deno.Command(join(dir, "bash"), {
        args: [setup],
        env: { PATH: path, SETUP_NO_INSTALL: "1" },
        clearEnv: true,
        stdin: "null",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const without = await run(dir);
    assert.equal(without.code, 1, without.stderr);
    assert.match(
      without.stderr,
      /^setup: promtool needed for the tests of deploy\/prometheus; install with: apt-get update && apt-get install -y --no-install-recommends prometheus \(as root\)$/m,
    );
    const present = await run(Deno.env.get("PATH") ?? "");
    assert.doesNotMatch(present.stderr, /promtool/, "promtool is installed here");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("promtool test rules fails when an alert is wrong: a stall alert that misses a stream's first stall", async () => {
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-alerts-" });
  try {
    const alerts = Deno.readTextFileSync(ALERTS);
    // increase() alone: a counter series that appears with its first stall never increases.
    const broken = alerts.replace(
      /\n\s*or\n\s*\(redis_stream_sync_stalls_total unless redis_stream_sync_stalls_total offset 15m\)/,
      "",
    );
    assert.notEqual(broken, alerts, "the stall alert's second half was not found");
    await Deno.writeTextFile(join(dir, "alerts.yml"), broken);
    await Deno.copyFile(ALERTS_TEST, join(dir, "alerts_test.yml"));
    const result = await promtool(["test", "rules", "alerts_test.yml"], dir);
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /alertname: RedisStreamSyncStreamStalled, time: 22m/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prometheus.example.yml passes promtool check config, loads alerts.yml and scrapes the job the alerts select", async () => {
  const result = await promtool(["check", "config", PROMETHEUS_EXAMPLE]);
  assert.equal(result.code, 0, result.output);
  const config = parseYaml(Deno.readTextFileSync(PROMETHEUS_EXAMPLE)) as {
    rule_files: string[];
    scrape_configs: Array<{ job_name: string }>;
  };
  assert.deepEqual(config.rule_files, ["alerts.yml"]);
  assert.deepEqual(config.scrape_configs.map((s) => s.job_name), [JOB]);
});

// ---------------------------------------------------------------------------
// Dashboard and alerts against a real scrape

Deno.test("every metric, label and stream state that the dashboard and the alerts query is served on a running replicator's /metrics", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-deploy-" });
  try {
    for (let i = 0; i < 20; i++) await src.xadd("orders-stream", "*", { n: String(i) });
    const port = freePort();
    await using run = spawnCli(["run"], {
      cwd: dir,
      env: replicationEnv(source, target, { METRICS_PORT: port }),
      timeoutMs: 90_000,
    });
    let text = "";
    await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      text = response ? await response.text() : "";
      return /^redis_stream_sync_entries_replicated_total\{db="0",stream="orders-stream"\} 20$/m
        .test(text) && /^redis_stream_sync_lag_seconds\{/m.test(text);
    }, { timeoutMs: 30_000, intervalMs: 200, message: "the stream copied and its gauges set" });
    run.signal("SIGTERM");
    assert.equal((await run.wait()).code, 0);

    const scrape = served(text);
    const labels = mergeLabels(scrape.labels, registeredLabels());
    const dashboard = readDashboard();
    const queries = [
      ...dashboardQueries(dashboard),
      ...alertRules().map((r) => ({ where: `alert ${r.alert}`, query: r.expr })),
    ];
    assert.ok(queries.length > 30, `only ${queries.length} queries`);
    const problems = queries.flatMap((q) => queryProblems(q.where, q.query, scrape, labels));
    assert.deepEqual(problems, [], `--- /metrics ---\n${text}`);

    // The dashboard shows what operators look for.
    const used = new Set(dashboardQueries(dashboard).flatMap((q) => metricNames(q.query)));
    for (
      const metric of [
        "redis_stream_sync_lag_seconds",
        "redis_stream_sync_replication_delay_seconds_bucket",
        "redis_stream_sync_entries_replicated_total",
        "redis_stream_sync_stalls_total",
        "redis_stream_sync_write_errors_total",
        "redis_stream_sync_entries_trimmed_before_copy_total",
        "redis_stream_sync_reconnects_total",
        "redis_stream_sync_streams",
        "redis_stream_sync_server_up",
        "up",
      ]
    ) {
      assert.ok(used.has(metric), `the dashboard does not show ${metric}`);
    }

    // The same check finds a mistake: a misspelt metric, a label it lacks, a state that
    // does not exist, a grouping by a label no metric of the query has.
    const wrong = [
      'rate(redis_stream_sync_entries_copied_total{job=~"$job"}[$__rate_interval])',
      'max by (db, stream) (redis_stream_sync_lag_seconds{steam=~"$stream"})',
      'redis_stream_sync_streams{state="stuck"} > 0',
      "sum by (queue) (redis_stream_sync_lag_entries)",
    ].map((query) => queryProblems("mutant", query, scrape, labels));
    assert.match(wrong[0].join("\n"), /"redis_stream_sync_entries_copied_total" is not served/);
    assert.match(wrong[1].join("\n"), /redis_stream_sync_lag_seconds has no label "steam"/);
    assert.match(wrong[2].join("\n"), /no stream state is called "stuck"/);
    assert.match(wrong[3].join("\n"), /groups by "queue"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PromQL metric names are told from functions, keywords, labels, durations and Grafana variables", () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job",x="y z"}[$__rate_interval])))',
    ),
    ["a_bucket"],
  );
  assert.deepEqual(
    metricNames("increase(b_total[15m]) > 0 or (b_total unless b_total offset 15m)"),
    ["b_total"],
  );
  assert.deepEqual(metricNames("sum(c) / on (instance) group_left d * 1e3"), ["c", "d"]);
  assert.deepEqual(metricNames('absent(up{job="x"})'), ["up"]);
  assert.deepEqual(groupingLabels("max by (db, stream) (x) * on(instance) y"), [
    "db",
    "stream",
    "instance",
  ]);
});

Deno.test("the dashboard is importable: JSON with a uid, unique panel ids, the data source variable on every query, refIds, panels within 24 columns", () => {
  const dashboard = readDashboard();
  assert.equal(dashboard.uid, "redis-stream-sync");
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  const variables = dashboard.templating.list.map((v) => v.name);
  assert.deepEqual(variables.slice(0, 2), ["datasource", "job"]);
  assert.equal(dashboard.templating.list[0].type, "datasource");
  const panels = allPanels(dashboard);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, `panel ids repeat: ${ids}`);
  for (const panel of panels) {
    const { x, w, h } = panel.gridPos;
    assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${panel.title}: gridPos ${panel.gridPos}`);
    if (panel.type === "row") continue;
    assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
    assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`);
    const refIds = (panel.targets ?? []).map((t) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${panel.title}: refIds repeat`);
    for (const target of panel.targets ?? []) {
      assert.match(target.expr, /job=~"\$job"/, `${panel.title} ${target.refId}: not by $job`);
    }
  }
});

// ---------------------------------------------------------------------------
// Kubernetes

type Manifest =
  & { apiVersion: string; kind: string; metadata: { name: string } }
  & Record<
    string,
    unknown
  >;

// deno-lint-ignore no-explicit-any
type Json = any;

const MODELS: Record<string, new (data: Json) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

function manifest(file: string): Json {
  return parseYaml(Deno.readTextFileSync(join(KUBERNETES, file)));
}

Deno.test("every Kubernetes manifest validates against the Kubernetes API schema (kubernetes-models), and a broken one does not", () => {
  const files = [...Deno.readDirSync(KUBERNETES)].map((e) => e.name).filter((n) =>
    n.endsWith(".yaml") && n !== "kustomization.yaml"
  ).sort();
  assert.deepEqual(files, [
    "configmap.yaml",
    "deployment.yaml",
    "poddisruptionbudget.yaml",
    "secret.example.yaml",
    "service.yaml",
  ]);
  for (const file of files) {
    const doc = manifest(file) as Manifest;
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(Model, `${file}: no model for ${doc.apiVersion} ${doc.kind}`);
    try {
      new Model(doc).validate();
    } catch (error) {
      assert.fail(`${file} is not a valid ${doc.kind}: ${(error as Error).message}`);
    }
  }
  // The validation does look at the values: a port that is not a number is refused.
  const broken = manifest("deployment.yaml");
  broken.spec.template.spec.containers[0].ports[0].containerPort = "metrics";
  assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);

  // kustomization.yaml applies every manifest but the Secret's example.
  const kustomization = manifest("kustomization.yaml");
  assert.deepEqual(
    [...kustomization.resources].sort(),
    files.filter((f) => f !== "secret.example.yaml"),
  );
});

Deno.test("the Deployment runs 2 replicas with leases, probes /healthz and /readyz on the metrics port, sets resources, and runs non-root on a read-only root file system", () => {
  const deployment = manifest("deployment.yaml");
  const pod = deployment.spec.template.spec;
  const podLabels = deployment.spec.template.metadata.labels;
  assert.equal(deployment.spec.replicas, 2);
  assert.deepEqual(deployment.spec.selector.matchLabels, podLabels);
  // A rolling update starts the new pod before the old one stops.
  assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
  // Docker link variables (SOURCE_REDIS_PORT=tcp://...) of a Service named source-redis.
  assert.equal(pod.enableServiceLinks, false);
  assert.equal(pod.automountServiceAccountToken, false);
  assert.ok(pod.terminationGracePeriodSeconds >= 10);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");

  assert.equal(pod.containers.length, 1);
  const [container] = pod.containers;
  assert.deepEqual(container.args, ["run"]);
  const metricsPort = container.ports.find((p: Json) => p.name === "metrics");
  assert.ok(metricsPort, "a container port named metrics");
  assert.deepEqual(container.livenessProbe.httpGet, { path: "/healthz", port: "metrics" });
  assert.deepEqual(container.readinessProbe.httpGet, { path: "/readyz", port: "metrics" });
  assert.match(container.resources.requests.cpu, /^\d+m?$/);
  assert.match(container.resources.requests.memory, /^\d+[MG]i$/);
  assert.match(container.resources.limits.memory, /^\d+[MG]i$/);
  const security = container.securityContext;
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.runAsNonRoot, true);
  assert.deepEqual(security.capabilities.drop, ["ALL"]);
  const tmp = container.volumeMounts.find((m: Json) => m.mountPath === "/tmp");
  assert.ok(pod.volumes.some((v: Json) => v.name === tmp?.name && v.emptyDir), "/tmp emptyDir");

  // Configuration: the ConfigMap's keys, the passwords from the Secret.
  const configMap = manifest("configmap.yaml");
  assert.deepEqual(container.envFrom, [{ configMapRef: { name: configMap.metadata.name } }]);
  const secret = manifest("secret.example.yaml");
  const passwords = container.env.map((e: Json) => e.name).sort();
  assert.deepEqual(passwords, ["SOURCE_REDIS_PASSWORD", "TARGET_REDIS_PASSWORD"]);
  for (const env of container.env) {
    assert.deepEqual(env.valueFrom.secretKeyRef, { name: secret.metadata.name, key: env.name });
    assert.ok(env.name in secret.stringData, `the example Secret has no ${env.name}`);
  }
  const secretKeys = new Set(CONFIG_KEYS.filter((k) => k.secret).map((k) => k.key));
  const keys = new Set(CONFIG_KEYS.map((k) => k.key));
  for (const key of passwords) assert.ok(secretKeys.has(key), `${key} is not a password key`);
  for (const key of Object.keys(configMap.data)) {
    // The environment is read for known keys only: a misspelt key would be ignored silently.
    assert.ok(keys.has(key), `ConfigMap key ${key} is not a configuration key`);
    assert.ok(!secretKeys.has(key), `ConfigMap key ${key} is a password: put it in the Secret`);
  }
  // What the pod's environment gives the service loads without a problem or a warning.
  const { config, warnings } = loadConfig(
    {},
    { ...configMap.data, ...secret.stringData },
    undefined,
  );
  assert.deepEqual(warnings, []);
  assert.equal(config.metricsHost, "0.0.0.0", "the probes reach the listener on the pod's address");
  assert.equal(config.metricsPort, metricsPort.containerPort);
  assert.equal(config.leases, true, "two replicas need STREAM_LEASES=true");
  assert.equal(config.logFormat, "json");

  // The PodDisruptionBudget keeps one, and the metrics Service selects these pods.
  const pdb = manifest("poddisruptionbudget.yaml");
  assert.deepEqual(pdb.spec.selector.matchLabels, podLabels);
  assert.equal(pdb.spec.minAvailable, 1);
  assert.equal(pdb.spec.unhealthyPodEvictionPolicy, "AlwaysAllow");
  const service = manifest("service.yaml");
  assert.deepEqual(service.spec.selector, podLabels);
  assert.deepEqual(service.spec.ports.map((p: Json) => [p.name, p.port, p.targetPort]), [
    ["metrics", metricsPort.containerPort, "metrics"],
  ]);
});
