/**
 * The end-to-end replication delay (`lib/ops/delay.ts`): the histogram
 * `redis_stream_sync_replication_delay_seconds` (every entry written, all
 * streams together) and the per-stream gauge
 * `redis_stream_sync_last_entry_delay_seconds`, fed by a replicator copying
 * between real servers (the heartbeats that keep them moving when no
 * application writes are in `heartbeat_test.ts`).
 *
 * What was chosen for IDs that are not times: an entry up to a minute ahead
 * of this host's clock counts as a delay of 0; further ahead, or more than a
 * year old (`1-1` is 1970), it is not observed, only counted in
 * `redis_stream_sync_replication_delay_ignored_total{reason}`.
 */
import assert from "node:assert/strict";
import { RawEntry } from "../lib/redis/mod.ts";
import { entryTimeMs } from "../lib/ops/delay.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { collectStatus } from "../lib/ops/mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import {
  addEntries,
  quietLogs,
  replicationConfig,
  type Settings,
  startReplicator,
  waitFor,
  waitForCopy,
} from "./_replication.ts";

const PREFIX = "redis_stream_sync_";
const DELAY = `${PREFIX}replication_delay_seconds`;

/** The value of the sample `name{labels}` (exactly those labels), or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
  const head = wanted === "" ? `${name} ` : `${name}{${wanted}} `;
  const line = text.split("\n").find((l) => l.startsWith(head));
  return line === undefined ? undefined : Number(line.slice(head.length));
}

/** A replicator in this process whose metrics are those of a `Metrics` (as /metrics serves them). */
function replicatorWithMetrics(
  source: RedisServer,
  target: RedisServer,
  settings: Settings = {},
) {
  const metrics = new Metrics("test");
  const replicator = startReplicator(replicationConfig(source, target, settings), {
    hooks: metrics.hooks(),
  });
  metrics.setStatusSource(() => replicator.orchestrator.status());
  return { metrics, replicator };
}

/** Waits until `predicate` holds on the metrics text; returns that text (shown on timeout). */
async function metricsWhen(
  metrics: Metrics,
  predicate: (text: string) => boolean,
  message: string,
): Promise<string> {
  let text = "";
  try {
    await waitFor(() => predicate(text = metrics.text()), { timeoutMs: 15_000, message });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- metrics ---\n${text}`);
  }
  return text;
}

Deno.test("entries added with * are each observed in replication_delay_seconds well under 2.5 s, and the stream's last_entry_delay_seconds is set", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("orders-stream", "*", { n: "0" });
  const { metrics, replicator } = replicatorWithMetrics(source, target);
  await using _ = replicator;
  await waitForCopy(src, "orders-stream", dst);
  // Added while it runs: their delay is the copy's own (the first one's includes the start).
  await addEntries(src, "orders-stream", 50);
  await waitForCopy(src, "orders-stream", dst);
  const text = await metricsWhen(
    metrics,
    (t) => sample(t, `${DELAY}_count`) === 51,
    "51 observations of the delay",
  );
  assert.equal(sample(text, `${DELAY}_bucket`, { le: "2.5" }), 51, text);
  assert.equal(sample(text, `${DELAY}_bucket`, { le: "+Inf" }), 51, text);
  const sum = sample(text, `${DELAY}_sum`)!;
  assert.ok(sum >= 0 && sum < 51 * 2.5, `sum ${sum}`);
  const last = sample(text, `${PREFIX}last_entry_delay_seconds`, {
    db: "0",
    stream: "orders-stream",
  });
  assert.ok(last !== undefined && last >= 0 && last < 2.5, `last_entry_delay_seconds ${last}`);
  assert.equal(
    sample(text, `${PREFIX}replication_delay_ignored_total`, { reason: "old" }),
    undefined,
  );
  assert.match(text, new RegExp(`^# TYPE ${DELAY} histogram$`, "m"));
  assert.match(text, new RegExp(`^# TYPE ${PREFIX}last_entry_delay_seconds gauge$`, "m"));
});

Deno.test("explicit IDs that are not times do not land in replication_delay_seconds: 1-1 and a day ahead are counted as ignored (old, future), a few seconds ahead counts as 0", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await src.xadd("ids-stream", "1-1", { n: "1970" }); // 56 years "old": not a delay
  await addEntries(src, "ids-stream", 3);
  const now = Date.now();
  await src.xadd("ids-stream", `${now + 10_000}-0`, { n: "10 s ahead" }); // clocks: counts as 0
  await src.xadd("ids-stream", `${now + 86_400_000}-0`, { n: "a day ahead" }); // not a delay
  const { metrics, replicator } = replicatorWithMetrics(source, target);
  await using _ = replicator;
  await waitForCopy(src, "ids-stream", dst);
  const text = await metricsWhen(
    metrics,
    (t) => sample(t, `${PREFIX}replication_delay_ignored_total`, { reason: "future" }) === 1,
    "the entry a day ahead counted as ignored",
  );
  // Observed: the three entries added with * and the one 10 s ahead (as 0).
  assert.equal(sample(text, `${DELAY}_count`), 4, text);
  assert.equal(sample(text, `${PREFIX}replication_delay_ignored_total`, { reason: "old" }), 1);
  assert.ok(sample(text, `${DELAY}_bucket`, { le: "0.001" })! >= 1, text);
  assert.equal(sample(text, `${DELAY}_bucket`, { le: "86400" }), 4, text);
  const sum = sample(text, `${DELAY}_sum`)!;
  assert.ok(sum >= 0 && sum < 3 * 10, `sum ${sum}: a 56-year delay would be 1.7e9`);
  // The newest entry on the target is a day ahead: no delay to show for the stream.
  assert.equal(
    sample(text, `${PREFIX}last_entry_delay_seconds`, { db: "0", stream: "ids-stream" }),
    undefined,
    text,
  );
});

Deno.test("entries found already on the target (a re-delivery) are not observed: only those written are", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "audit-stream", 30);
  // The first 12 are on the target already, as after a crash between a write and its ack.
  for (const [id, fields] of (await src.xrangeAll("audit-stream")).slice(0, 12)) {
    await dst.xadd("audit-stream", id, fields);
  }
  const { metrics, replicator } = replicatorWithMetrics(source, target);
  await using _ = replicator;
  await waitForCopy(src, "audit-stream", dst);
  const text = await metricsWhen(
    metrics,
    (t) =>
      sample(t, `${PREFIX}entries_replicated_total`, { db: "0", stream: "audit-stream" }) === 18,
    "18 entries replicated",
  );
  assert.equal(
    sample(text, `${PREFIX}entries_skipped_total`, { db: "0", stream: "audit-stream" }),
    12,
  );
  assert.equal(sample(text, `${DELAY}_count`), 18, text);
});

Deno.test("an entry's ID time is read from its bytes: short, 13-digit, 16-digit and 20-digit millisecond parts", () => {
  const encoder = new TextEncoder();
  for (
    const id of ["0-0", "1-1", "12345678-0", "123456789-7", "1712345678901-42", "9007199254740-1"]
  ) {
    const bytes = encoder.encode(`xx${id}yy`);
    const entry = new RawEntry(bytes, 2, 2 + id.length, 2 + id.length, bytes.length, 0);
    assert.equal(entryTimeMs(entry), Number(id.split("-")[0]), id);
  }
  for (const id of ["1234567890123456-0", "18446744073709551615-18446744073709551615"]) {
    const bytes = encoder.encode(id);
    const entry = new RawEntry(bytes, 0, bytes.length, bytes.length, bytes.length, 0);
    assert.equal(entryTimeMs(entry), Number(id.split("-")[0]), id);
  }
});

Deno.test("lag_seconds is the age of the oldest uncopied entry by the source's clock, as status' LAG S, not the span from the last copied entry to the newest", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  // Nothing can be copied: the target key is a string. The oldest uncopied entry is 100 s
  // old, the newest 10 s: the age is ~100 s (the span newest - oldest would be 90 s).
  const now = Date.now();
  await src.send(["XADD", "stuck-stream", `${now - 100_000}-1`, "n", "1"]);
  await src.send(["XADD", "stuck-stream", `${now - 10_000}-1`, "n", "2"]);
  await dst.send(["SET", "stuck-stream", "not a stream"]);
  const settings = { STREAM_DISCOVERY_INTERVAL: "0.2" };
  const { metrics, replicator } = replicatorWithMetrics(source, target, settings);
  await using _replicator = replicator;
  const labels = { db: "0", stream: "stuck-stream" };
  const text = await metricsWhen(
    metrics,
    (t) => (sample(t, `${PREFIX}lag_seconds`, labels) ?? 0) > 0,
    "lag_seconds of stuck-stream",
  );
  const lag = sample(text, `${PREFIX}lag_seconds`, labels)!;
  const [row] = (await collectStatus(replicationConfig(source, target, settings))).streams;
  const age = (Date.now() - now) / 1000;
  assert.ok(lag >= 100 && lag <= 100 + age + 1, `lag_seconds ${lag}, expected 100..${100 + age}`);
  assert.ok(
    row.lagSeconds !== null && Math.abs(row.lagSeconds - lag) <= age + 1,
    JSON.stringify(row),
  );
});
