/**
 * The Prometheus text exposition written by `lib/ops/prometheus.ts`: what a
 * Prometheus server parses from it (escaping, histogram buckets, series that
 * come and go). The end-to-end scrape of a running service is in
 * `operability_test.ts`.
 */
import assert from "node:assert/strict";
import {
  Counter,
  EXPOSITION_CONTENT_TYPE,
  Gauge,
  Histogram,
  KeyedCounter,
  Registry,
} from "../lib/ops/prometheus.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { makeStreamRef } from "../lib/replication/mod.ts";

Deno.test("counters expose HELP, TYPE and one line per label set, summed, in label order", () => {
  const registry = new Registry();
  const copied = new Counter(registry, {
    name: "copied_total",
    help: "Entries copied",
    labelNames: ["db", "stream"],
  });
  copied.inc({ stream: "orders", db: "0" }, 3);
  copied.inc({ db: "0", stream: "orders" });
  copied.inc({ db: "1", stream: "payments" }, 2);
  assert.equal(
    registry.metrics(),
    "# HELP copied_total Entries copied\n# TYPE copied_total counter\n" +
      'copied_total{db="0",stream="orders"} 4\ncopied_total{db="1",stream="payments"} 2\n',
  );
  copied.remove({ db: "0", stream: "orders" });
  assert.equal(
    registry.metrics(),
    "# HELP copied_total Entries copied\n# TYPE copied_total counter\n" +
      'copied_total{db="1",stream="payments"} 2\n',
  );
});

Deno.test("a keyed counter counts by the caller's key and renders labels (escaped) only when exposed; removing a key drops its series", () => {
  const registry = new Registry();
  let rendered = 0;
  const copied = new KeyedCounter<{ id: string; db: number; key: string }>(registry, {
    name: "copied_total",
    help: "Entries copied",
    labelNames: ["db", "stream"],
    keyOf: (s) => s.id,
    labelsOf: (s) => {
      rendered++;
      return { db: String(s.db), stream: s.key };
    },
  });
  const orders = { id: "0:orders", db: 0, key: 'or"ders' };
  copied.inc(orders, 3);
  copied.inc({ ...orders }); // another object for the same stream: one series
  copied.inc({ id: "1:payments", db: 1, key: "payments" }, 2);
  assert.equal(rendered, 0);
  const text = "# HELP copied_total Entries copied\n# TYPE copied_total counter\n" +
    'copied_total{db="0",stream="or\\"ders"} 4\ncopied_total{db="1",stream="payments"} 2\n';
  assert.equal(registry.metrics(), text);
  assert.equal(registry.metrics(), text); // exposing twice counts nothing twice
  copied.remove(orders);
  assert.equal(
    registry.metrics(),
    "# HELP copied_total Entries copied\n# TYPE copied_total counter\n" +
      'copied_total{db="1",stream="payments"} 2\n',
  );
  assert.throws(() => copied.inc(orders, -1), /cannot go down/);
});

Deno.test("label values with backslashes, quotes and newlines are escaped, HELP text too", () => {
  const registry = new Registry();
  const c = new Counter(registry, { name: "c_total", help: "a\\b\nc", labelNames: ["stream"] });
  c.inc({ stream: 'we"ird\\key\nx' });
  assert.equal(
    registry.metrics(),
    "# HELP c_total a\\\\b\\nc\n# TYPE c_total counter\n" +
      'c_total{stream="we\\"ird\\\\key\\nx"} 1\n',
  );
});

Deno.test("a labelled counter without samples still declares its type; a missing label is an error", () => {
  const registry = new Registry();
  const errors = new Counter(registry, {
    name: "errors_total",
    help: "Errors",
    labelNames: ["kind"],
  });
  assert.equal(registry.metrics(), "# HELP errors_total Errors\n# TYPE errors_total counter\n");
  assert.throws(() => errors.inc({}), /needs a value for its label "kind"/);
  assert.throws(() => errors.inc({ kind: "OOM" }, -1), /cannot go down/);
});

Deno.test("gauges are collected at each exposition; a reset drops series that went away", () => {
  const registry = new Registry();
  let streams = ["a", "b"];
  new Gauge(registry, {
    name: "pending",
    help: "Pending",
    labelNames: ["stream"],
    collect(g) {
      g.reset();
      streams.forEach((s, i) => g.set({ stream: s }, i + 0.5));
    },
  });
  new Gauge(registry, { name: "up", help: "Up", collect: (g) => g.set({}, 1) });
  assert.equal(
    registry.metrics(),
    '# HELP pending Pending\n# TYPE pending gauge\npending{stream="a"} 0.5\npending{stream="b"} 1.5\n' +
      "# HELP up Up\n# TYPE up gauge\nup 1\n",
  );
  streams = ["b"];
  assert.match(
    registry.metrics(),
    /^# HELP pending Pending\n# TYPE pending gauge\npending\{stream="b"\} 0.5\n/,
  );
});

Deno.test("histogram buckets are cumulative, with +Inf, _sum and _count", () => {
  const registry = new Registry();
  const h = new Histogram(registry, {
    name: "write_seconds",
    help: "Write time",
    buckets: [0.125, 0.5, 1],
  });
  for (const v of [0.0625, 0.125, 0.25, 0.75, 8]) h.observe(v);
  assert.equal(
    registry.metrics(),
    "# HELP write_seconds Write time\n# TYPE write_seconds histogram\n" +
      'write_seconds_bucket{le="0.125"} 2\nwrite_seconds_bucket{le="0.5"} 3\n' +
      'write_seconds_bucket{le="1"} 4\nwrite_seconds_bucket{le="+Inf"} 5\n' +
      "write_seconds_sum 9.1875\nwrite_seconds_count 5\n",
  );
  assert.throws(
    () => new Histogram(registry, { name: "bad", help: "x", buckets: [1, 0.5] }),
    /finite ascending buckets/,
  );
});

Deno.test("a second metric of the same name and an invalid name are refused; the content type is 0.0.4", () => {
  const registry = new Registry();
  new Counter(registry, { name: "x_total", help: "x" });
  assert.throws(() => new Gauge(registry, { name: "x_total", help: "x" }), /already registered/);
  assert.throws(() => new Counter(registry, { name: "bad-name", help: "x" }), /not a valid/);
  assert.equal(EXPOSITION_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
});

Deno.test("the service's metrics follow Prometheus' conventions: every _total series is a counter, and build_info says which build runs", () => {
  const metrics = new Metrics("9.9.9");
  const text = metrics.text();
  const types = new Map(
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]] as const),
  );
  assert.ok(types.size > 10, text);
  for (const [name, type] of types) {
    if (name.endsWith("_total")) assert.equal(type, "counter", `${name} is a ${type}`);
  }
  assert.ok(types.has("redis_stream_sync_reconnects_total"), text);
  assert.equal(types.get("redis_stream_sync_build_info"), "gauge");
  assert.match(
    text,
    new RegExp(
      `^redis_stream_sync_build_info\\{version="9\\.9\\.9",deno="${
        Deno.version.deno.replaceAll(".", "\\.")
      }",v8="[^"]+"\\} 1$`,
      "m",
    ),
  );
});

Deno.test("a histogram counts a run of equal values at once: the same buckets, sum and count as one by one", () => {
  const options = { name: "delay_seconds", help: "Delay", buckets: [0.001, 0.01, 1] };
  const once = new Registry();
  new Histogram(once, options).observe(0.0078125, 100); // exact in binary: sums alike
  const oneByOne = new Registry();
  const h = new Histogram(oneByOne, options);
  for (let i = 0; i < 100; i++) h.observe(0.0078125);
  assert.equal(once.metrics(), oneByOne.metrics());
  assert.match(once.metrics(), /^delay_seconds_bucket\{le="0\.01"\} 100$/m);
  assert.match(once.metrics(), /^delay_seconds_count 100$/m);
});

Deno.test("a stream's entry counters are dropped when it is gone and kept when it ends otherwise", () => {
  const metrics = new Metrics("test");
  const hooks = metrics.hooks();
  const orders = makeStreamRef(0, "orders");
  const payments = makeStreamRef(0, "payments");
  const batch = { written: 2, skipped: 1, ms: 1, ids: [], deleted: 0 };
  hooks.onBatch?.(orders, batch);
  hooks.onBatch?.(payments, batch);
  hooks.onBatch?.(makeStreamRef(0, "orders"), batch); // the same stream, another ref object
  const line = (name: string, key: string, n: number) =>
    `redis_stream_sync_${name}{db="0",stream="${key}"} ${n}\n`;
  let text = metrics.text();
  assert.ok(text.includes(line("entries_replicated_total", "orders", 4)), text);
  assert.ok(text.includes(line("entries_skipped_total", "orders", 2)), text);
  hooks.onStreamEnd?.(orders, "gone");
  hooks.onStreamEnd?.(payments, "caught-up");
  text = metrics.text();
  assert.ok(!text.includes('stream="orders"'), text);
  assert.ok(text.includes(line("entries_replicated_total", "payments", 2)), text);
  assert.ok(text.includes(line("entries_skipped_total", "payments", 1)), text);
});

Deno.test("one exposition asks for the service's status once, whatever the number of gauges that read it, and the next asks again", () => {
  const metrics = new Metrics("test");
  let asked = 0;
  metrics.setStatusSource(() => {
    asked++; // at 100,000 streams, making it took ~0.35 s
    return undefined;
  });
  metrics.text();
  assert.equal(asked, 1);
  metrics.text();
  assert.equal(asked, 2);
  metrics.registry.metrics(); // outside an exposition of `text`: asked each time, never stale
  assert.ok(asked > 2);
});
