/**
 * Prometheus metrics of a running replicator. Counters are
 * fed by the orchestrator's hooks; gauges are read from its status when
 * scraped, so a stream that disappears drops its series.
 *
 * @module
 */
import process from "node:process";
import {
  Counter,
  EXPOSITION_CONTENT_TYPE,
  Gauge,
  Histogram,
  KeyedCounter,
  Registry,
} from "./prometheus.ts";
import { ReplicationDelay } from "./delay.ts";
import type {
  InstanceStatus,
  MirroredGroupStatus,
  OrchestratorHooks,
  OrchestratorStatus,
  StreamRef,
} from "../replication/mod.ts";
import type { ServerHealthStatus } from "../redis/mod.ts";

const PREFIX = "redis_stream_sync_";
const STREAM_LABELS = ["db", "stream"] as const;

/** The service's metrics registry and the hooks that feed it. */
export class Metrics {
  /** The registry served on /metrics. */
  readonly registry: Registry;
  #status: () => OrchestratorStatus | undefined = () => undefined;
  /** The status of the exposition being made (`text`): read once, by every gauge. */
  #scrape: { status: OrchestratorStatus | undefined } | undefined;
  #inScrape = false;
  #replicated: KeyedCounter<StreamRef>;
  #skipped: KeyedCounter<StreamRef>;
  #writeErrors: Counter;
  #readErrors: Counter;
  #trimmed: Counter;
  #targetLosses: Counter;
  #stalls: Counter;
  #targetRemoved: Counter;
  #batchSeconds: Histogram;
  #delay: ReplicationDelay;
  #leaseChanges: Counter;
  #errorKinds = new Map<string, Set<string>>();

  /** @param version this program's version, for `redis_stream_sync_build_info`. */
  constructor(version = "unknown") {
    const registry = new Registry();
    this.registry = registry;
    new Gauge(registry, {
      name: `${PREFIX}build_info`,
      help: "Always 1; its labels say which build runs (version, Deno, V8)",
      labelNames: ["version", "deno", "v8"],
      collect: (g) => g.set({ version, deno: Deno.version.deno, v8: Deno.version.v8 }, 1),
    });
    // Counted at every write: kept by stream id, labelled when exposed.
    this.#replicated = new KeyedCounter(registry, {
      name: `${PREFIX}entries_replicated_total`,
      help: "Entries written to the target (and acknowledged on the source)",
      labelNames: STREAM_LABELS,
      keyOf: (ref) => ref.id,
      labelsOf: streamLabels,
    });
    this.#skipped = new KeyedCounter(registry, {
      name: `${PREFIX}entries_skipped_total`,
      help: "Entries found already on the target (re-deliveries) and only acknowledged",
      labelNames: STREAM_LABELS,
      keyOf: (ref) => ref.id,
      labelsOf: streamLabels,
    });
    this.#writeErrors = new Counter(registry, {
      name: `${PREFIX}write_errors_total`,
      help:
        "Failed attempts to copy a batch, by kind (reply code such as OOM or READONLY, or connection)",
      labelNames: ["db", "stream", "kind"],
    });
    this.#readErrors = new Counter(registry, {
      name: `${PREFIX}read_errors_total`,
      help: "Failed reads from the source, by kind",
      labelNames: ["kind"],
    });
    this.#trimmed = new Counter(registry, {
      name: `${PREFIX}entries_trimmed_before_copy_total`,
      help:
        "Entries the source trimmed (MAXLEN, MINID, XTRIM) before they could be copied: lost for the target",
      labelNames: STREAM_LABELS,
    });
    this.#targetLosses = new Counter(registry, {
      name: `${PREFIX}target_losses_total`,
      help:
        "Times a target stream was found holding less than was copied to it (flushed, deleted, restarted without persistence, failed over): what it lost is copied again from the source",
      labelNames: STREAM_LABELS,
    });
    this.#stalls = new Counter(registry, {
      name: `${PREFIX}stalls_total`,
      help:
        "Times the watchdog found a stream stalled: entries on the source beyond its copy, no progress for STREAM_STALL_TIMEOUT (it is read at once, then recovered)",
      labelNames: STREAM_LABELS,
    });
    this.#targetRemoved = new Counter(registry, {
      name: `${PREFIX}target_entries_removed_total`,
      help:
        "Entries found removed from a target stream by something else (XDEL, XTRIM): they cannot be written again below its last entry",
      labelNames: STREAM_LABELS,
    });
    this.#batchSeconds = new Histogram(registry, {
      name: `${PREFIX}batch_write_seconds`,
      help:
        "Time to write one write of a stream (one MULTI/EXEC, up to 25,000 entries) to the target",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    // One status per exposition: made for every gauge, it took 2.3-4.5 s a scrape at 100,000
    // streams (their statuses made and sorted seven times), all of it on the main thread.
    const status = () => {
      if (!this.#inScrape) return this.#status();
      return (this.#scrape ??= { status: this.#status() }).status;
    };
    this.#delay = new ReplicationDelay(registry, { prefix: PREFIX, status });
    const perServer = (name: string, help: string, value: (h: ServerHealthStatus) => number) =>
      new Gauge(registry, {
        name: `${PREFIX}${name}`,
        help,
        labelNames: ["server"],
        collect(g) {
          g.reset();
          const s = status();
          if (!s) return;
          g.set({ server: "source" }, value(s.source));
          g.set({ server: "target" }, value(s.target));
        },
      });
    perServer(
      "reconnects_total",
      "Connections reopened after a failure, per server",
      (h) => h.reconnects,
    );
    perServer("server_up", "1 when the server answers, 0 during an outage", (h) => (h.up ? 1 : 0));
    const perNode = (name: string, help: string, value: (h: ServerHealthStatus) => number) =>
      new Gauge(registry, {
        name: `${PREFIX}${name}`,
        help,
        labelNames: ["server", "node"],
        collect(g) {
          g.reset();
          const s = status();
          if (!s) return;
          for (const [server, health] of [["source", s.source], ["target", s.target]] as const) {
            for (const n of health.nodes ?? []) g.set({ server, node: n.address }, value(n));
          }
        },
      });
    perNode(
      "node_up",
      "Redis Cluster only: 1 when the node answers, 0 during an outage, per node",
      (h) => (h.up ? 1 : 0),
    );
    perNode(
      "node_reconnects_total",
      "Redis Cluster only: connections to the node reopened after a failure",
      (h) => h.reconnects,
    );
    new Gauge(registry, {
      name: `${PREFIX}streams`,
      help: "Streams known to the replicator, by state",
      labelNames: ["state"],
      collect(g) {
        g.reset();
        const counts = new Map<string, number>();
        for (const st of status()?.streams ?? []) {
          counts.set(st.state, (counts.get(st.state) ?? 0) + 1);
        }
        for (const [state, n] of counts) g.set({ state }, n);
      },
    });
    const perStream = (
      name: string,
      help: string,
      value: (st: StreamStatusLike) => number | null,
    ) =>
      new Gauge(registry, {
        name: `${PREFIX}${name}`,
        help,
        labelNames: STREAM_LABELS,
        collect(g) {
          g.reset();
          for (const st of status()?.streams ?? []) {
            const v = value(st);
            if (v !== null) g.set({ db: String(st.db), stream: st.key }, v);
          }
        },
      });
    perStream(
      "pending_entries",
      "Entries delivered to the consumer group and not yet acknowledged",
      (st) => st.stats ? st.stats.pending : null,
    );
    perStream(
      "lag_entries",
      "Entries of the source stream not yet delivered to the group (XINFO GROUPS lag)",
      (st) => st.stats?.lag ?? null,
    );
    perStream(
      "lag_seconds",
      "Age of the oldest source entry not yet copied (the source's clock minus the time in its ID), as status' LAG S; 0 when nothing is left",
      (st) => st.stats ? st.stats.lagSeconds : null,
    );
    perStream(
      "source_length_entries",
      "Entries in the source stream",
      (st) => st.stats ? st.stats.sourceLength : null,
    );
    perStream(
      "target_length_entries",
      "Entries in the target stream",
      (st) => st.stats ? st.stats.targetLength : null,
    );
    const instance = (name: string, help: string, value: (i: InstanceStatus) => number) =>
      new Gauge(registry, {
        name: `${PREFIX}${name}`,
        help,
        collect(g) {
          g.reset();
          const i = status()?.instance;
          if (i) g.set({}, value(i));
        },
      });
    instance("leases_held", "Bucket leases this instance holds (STREAM_LEASES)", (i) => i.leases);
    instance(
      "instances_live",
      "Instances of the consumer group alive at the last lease tick, this one included",
      (i) => i.live.length,
    );
    this.#leaseChanges = new Counter(registry, {
      name: `${PREFIX}lease_changes_total`,
      help:
        "Stream leases this instance took while free (acquired) or from an instance that is gone (taken_over), found taken by another (lost) or expired (not renewed in time: paused, cut off), or gave to the instance that should hold them (handed_over)",
      labelNames: ["change"],
    });
    const perGroup = (name: string, help: string, value: (g: MirroredGroupStatus) => number) =>
      new Gauge(registry, {
        name: `${PREFIX}${name}`,
        help,
        labelNames: ["group"],
        collect(g) {
          g.reset();
          for (const group of status()?.groups ?? []) g.set({ group: group.group }, value(group));
        },
      });
    perGroup(
      "group_sync_delay_seconds",
      "STREAM_GROUPS_SYNC: per mirrored group name, seconds since the longest-behind of its copies on the target was last at the source's position (0: all are); a copy waits while the source's position is past what the target holds",
      (g) => g.delaySeconds,
    );
    perGroup(
      "group_sync_streams_behind",
      "STREAM_GROUPS_SYNC: per mirrored group name, streams whose copy of the group on the target is not at the source's position",
      (g) => g.behind,
    );
    registerProcessMetrics(registry);
  }

  /** Where gauges read the service's state from. */
  setStatusSource(status: () => OrchestratorStatus | undefined): void {
    this.#status = status;
  }

  /** Hooks to pass to the orchestrator. */
  hooks(): OrchestratorHooks {
    return {
      onBatch: (stream, batch) => {
        const { written, skipped, ms } = batch;
        if (written > 0) this.#replicated.inc(stream, written);
        if (skipped > 0) this.#skipped.inc(stream, skipped);
        this.#batchSeconds.observe(ms / 1000);
        this.#delay.observe(batch);
      },
      onError: (stream, kind) => {
        const labels = streamLabels(stream);
        this.#writeErrors.inc({ ...labels, kind });
        const kinds = this.#errorKinds.get(stream.id) ?? new Set();
        kinds.add(kind);
        this.#errorKinds.set(stream.id, kinds);
      },
      onReadError: (kind) => this.#readErrors.inc({ kind }),
      onTrimmedBeforeCopy: (stream, count) => this.#trimmed.inc(streamLabels(stream), count),
      onTargetLoss: (stream) => this.#targetLosses.inc(streamLabels(stream)),
      onStall: (stream) => this.#stalls.inc(streamLabels(stream)),
      onTargetRemoved: (stream, count) => this.#targetRemoved.inc(streamLabels(stream), count),
      onLeases: ({ acquired, takenOver, lost, expired = 0, handedOver }) => {
        this.#leaseChanges.inc({ change: "acquired" }, acquired);
        this.#leaseChanges.inc({ change: "taken_over" }, takenOver);
        this.#leaseChanges.inc({ change: "lost" }, lost);
        this.#leaseChanges.inc({ change: "expired" }, expired);
        this.#leaseChanges.inc({ change: "handed_over" }, handedOver);
      },
      onStreamEnd: (stream, outcome) => {
        if (outcome !== "gone") return;
        const labels = streamLabels(stream);
        this.#replicated.remove(stream);
        this.#skipped.remove(stream);
        for (const kind of this.#errorKinds.get(stream.id) ?? []) {
          this.#writeErrors.remove({ ...labels, kind });
        }
        this.#errorKinds.delete(stream.id);
      },
    };
  }

  /** The Prometheus text exposition. */
  text(): string {
    this.#inScrape = true;
    try {
      return this.registry.metrics();
    } finally {
      this.#inScrape = false;
      this.#scrape = undefined;
    }
  }

  /** The content type of {@linkcode Metrics.text}. */
  get contentType(): string {
    return EXPOSITION_CONTENT_TYPE;
  }
}

type StreamStatusLike = OrchestratorStatus["streams"][number];

function streamLabels(stream: StreamRef): { db: string; stream: string } {
  return { db: String(stream.db), stream: stream.keyLabel };
}

function registerProcessMetrics(registry: Registry): void {
  const startTime = Math.round(Date.now() / 1000 - performance.now() / 1000);
  new Gauge(registry, {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    collect(g) {
      g.set({}, Deno.memoryUsage().rss);
    },
  });
  new Gauge(registry, {
    name: "process_heap_used_bytes",
    help: "V8 heap in use, in bytes",
    collect(g) {
      g.set({}, Deno.memoryUsage().heapUsed);
    },
  });
  new Gauge(registry, {
    name: "process_heap_total_bytes",
    help: "V8 heap size, in bytes",
    collect(g) {
      g.set({}, Deno.memoryUsage().heapTotal);
    },
  });
  new Gauge(registry, {
    name: "process_cpu_seconds_total",
    help: "User and system CPU time spent, in seconds",
    collect(g) {
      const { user, system } = process.cpuUsage();
      g.set({}, (user + system) / 1e6);
    },
  });
  new Gauge(registry, {
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, in seconds",
    collect(g) {
      g.set({}, startTime);
    },
  });
}
