/**
 * lib/config/settings.ts: each component's settings, built once from the
 * configuration, in milliseconds. Pure: no server.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/config/load_config.ts";
import {
  discoverySettings,
  replicationSettings,
  retrySettings,
  runSettings,
} from "../lib/config/settings.ts";

Deno.test("replication settings are the configuration's values, every duration in milliseconds, each side's retries its own", () => {
  const { config } = loadConfig(
    {},
    {},
    [
      "STREAM_CONSUMER_GROUP=g1",
      "STREAM_BATCH_SIZE=250",
      "STREAM_POLL_INTERVAL=0.5",
      "STREAM_PENDING_CHECK_INTERVAL=45",
      "STREAM_CONSUMER_IDLE_TIMEOUT=600",
      "STREAM_STALL_TIMEOUT=2.5",
      "SOURCE_REDIS_BACKOFF_BASE=0.2",
      "SOURCE_REDIS_BACKOFF_MAX=7",
      "SOURCE_REDIS_MAX_RETRIES=4",
      "TARGET_REDIS_BACKOFF_BASE=1.5",
      "TARGET_REDIS_BACKOFF_MAX=20",
      "TARGET_REDIS_MAX_RETRIES=2",
      "TARGET_STREAM_MAXLEN=5000",
      "TARGET_WAIT_REPLICAS=1",
      "TARGET_WAIT_TIMEOUT=0.25",
    ].join("\n"),
  );
  const s = replicationSettings(config);
  assert.equal(s.group, "g1");
  assert.equal(s.batchSize, 250);
  assert.deepEqual(s.read, {
    blockMs: 500,
    retry: { baseMs: 200, maxMs: 7000, immediateRetries: 4 },
  });
  assert.deepEqual(s.write, {
    minWriteEntries: 250,
    targetMaxlen: 5000,
    targetTrims: true,
    waitReplicas: 1,
    waitTimeoutMs: 250,
    retry: { baseMs: 1500, maxMs: 20000, immediateRetries: 2 },
  });
  assert.deepEqual(s.recovery, {
    retry: { baseMs: 200, maxMs: 7000, immediateRetries: 4 },
    pendingCheckEveryMs: 45_000,
    consumerIdleMs: 600_000,
    stallMs: 2500,
  });
  assert.deepEqual(retrySettings(config.target), s.write.retry);
});

Deno.test("the shortest poll interval, 1 ms, is a 1 ms blocking read", () => {
  const { config } = loadConfig({}, {}, "STREAM_POLL_INTERVAL=0.001");
  assert.equal(replicationSettings(config).read.blockMs, 1);
});

Deno.test("the target counts as trimmed by this tool with TARGET_STREAM_MAXLEN or MIRROR_SOURCE_TRIM, and only then", () => {
  const trims = (text: string) =>
    replicationSettings(loadConfig({}, {}, text).config).write.targetTrims;
  assert.equal(trims(""), false);
  assert.equal(trims("TARGET_STREAM_MAXLEN=100"), true);
  assert.equal(trims("MIRROR_SOURCE_TRIM=true"), true);
});

Deno.test("a run's settings: discovery and leases in milliseconds, the manual streams and patterns as configured, no sharing without leases", () => {
  const text = [
    "REDIS_STREAMS=a,db3:b",
    "STREAM_DISCOVERY_PATTERNS=x:*,y:*",
    "STREAM_DISCOVERY_INTERVAL=2.5",
    "REDIS_DB_SEARCH_RANGE=0-2",
    "TARGET_REDIS_DB=same",
    "TARGET_STREAM_PREFIX=dr:",
    "STREAM_LEASES=true",
    "STREAM_LEASE_TTL=9",
    "INSTANCE_ID=node-a",
    "STREAM_CONSUMER_NAME=copier",
    "SOURCE_REDIS_DB=1",
  ].join("\n");
  const s = runSettings(loadConfig({}, {}, text).config);
  assert.deepEqual(s.discovery, {
    manual: [{ db: 1, key: "a" }, { db: 3, key: "b" }],
    auto: true,
    dbs: [0, 1, 2],
    patterns: ["x:*", "y:*"],
    targetDb: "same",
    prefix: "dr:",
    everyMs: 2500,
  });
  assert.deepEqual(s.sharing, {
    group: s.replication.group,
    db: 1,
    ttlMs: 9000,
    instanceId: "node-a",
    consumerName: "copier",
  });
  assert.equal(s.consumer, "copier");
  const off = runSettings(
    loadConfig({}, {}, text.replace("STREAM_LEASES=true", "STREAM_LEASES=false")).config,
  );
  assert.equal(off.sharing, undefined);
  const idle = runSettings(loadConfig({}, {}, `${text}\nREDIS_STREAMS_ENABLED=false`).config);
  assert.equal(idle.sharing, undefined, "no leases are taken when nothing is replicated");
});

Deno.test("HEARTBEAT_INTERVAL: the heartbeats in milliseconds, their stream in SOURCE_REDIS_DB named beside REDIS_STREAMS' streams (once), none at 0 or when nothing is replicated", () => {
  const text = [
    "REDIS_STREAMS=a",
    "STREAM_CONSUMER_GROUP=copy",
    "SOURCE_REDIS_DB=2",
    "HEARTBEAT_INTERVAL=1.5",
  ].join("\n");
  const config = loadConfig({}, {}, text).config;
  const beat = { db: 2, key: "redis-stream-sync:heartbeat:copy" };
  assert.deepEqual(runSettings(config).heartbeat, { everyMs: 1500, stream: beat, maxlen: 1000 });
  assert.deepEqual(runSettings(config).discovery.manual, [{ db: 2, key: "a" }]);
  assert.deepEqual(runSettings(config).discovery.heartbeat, beat);
  // Named already in REDIS_STREAMS: once.
  const named = loadConfig({}, {}, `${text}\nREDIS_STREAMS=${beat.key},a`).config;
  assert.deepEqual(discoverySettings(named).manual, [beat, { db: 2, key: "a" }]);
  assert.equal(discoverySettings(named).heartbeat, undefined);
  const off = loadConfig({}, {}, text.replace("HEARTBEAT_INTERVAL=1.5", "HEARTBEAT_INTERVAL=0"));
  assert.equal(runSettings(off.config).heartbeat, undefined);
  assert.equal(runSettings(off.config).discovery.heartbeat, undefined);
  const idle = loadConfig({}, {}, `${text}\nREDIS_STREAMS_ENABLED=false`).config;
  assert.equal(runSettings(idle).heartbeat, undefined, "no heartbeats when nothing is replicated");
});
