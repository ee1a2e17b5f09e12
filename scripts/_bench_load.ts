/**
 * The bench's live load: {@linkcode livePhase} (used by the rows in
 * scripts/_bench_live.ts) spawns this file as separate processes, one
 * each, so that their work neither slows the bench nor each other:
 *
 *   deno run --allow-net --allow-env --allow-read scripts/_bench_load.ts produce PORT KEYS RATE SECONDS
 *     XADD KEY * (round-robin over KEYS, comma-separated) at a steady RATE
 *     entries/s: every millisecond the entries due by then, pipelined. Each
 *     entry has 5 fields (~100 B), field `t` its send time (ms since the
 *     epoch, sub-ms). Prints one JSON line {sent, acked, failed, seconds}.
 *
 *   deno run ... scripts/_bench_load.ts probe PORT KEYS
 *     Reads every key with XREAD BLOCK 0 from the stream's last ID at start
 *     (one connection per 100 keys), and records arrival minus `t` of every
 *     entry. Prints `ready` once the last IDs are read; on a `stop` line (or
 *     end) on stdin prints one JSON line with the figures and exits.
 *
 * Times are performance.timeOrigin + performance.now(): the same clock in
 * every process of this machine (within ~0.1 ms).
 *
 * @module
 */
import process from "node:process";
import { connect, type TestClient } from "../testing/redis.ts";
import { now, quantile, sleep, slope, tracked, within } from "./_bench_util.ts";

const KEYS_PER_READER = 100;
const MAX_IN_FLIGHT = 20_000;

// ---------------------------------------------------------------------------
// The parent side: the bench spawns these processes and reads their lines.

const LOAD_SCRIPT = new URL(import.meta.url).pathname;
export const RATE = 5000;
/** How long after the producer stops every entry must have arrived. */
export const GRACE_MS = 1000;
/**
 * A lag counts as growing when the median latency of the last quarter of
 * the run exceeds twice the first quarter's plus this many ms (medians of
 * 5 s windows: a 1 s stall does not move them).
 */
export const GROWTH_MARGIN_MS = 5;

/** A _bench_load.ts process, read line by line. `await using` it: disposal kills it. */
class LoadProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #done: Promise<void>;
  #wake: () => void = () => {};

  constructor(args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-env", LOAD_SCRIPT, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#done = (async () => {
      let rest = "";
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + text).split("\n");
        rest = parts.pop()!;
        this.#lines.push(...parts);
        this.#wake();
      }
      this.#wake();
    })();
  }

  /** The next line printed, or undefined if the process ends or `ms` pass first. */
  async line(ms: number): Promise<string | undefined> {
    const deadline = performance.now() + ms;
    while (this.#lines.length === 0) {
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      const woken = new Promise<boolean>((resolve) => (this.#wake = () => resolve(true)));
      const ended = this.#done.then(() => false);
      if (!(await within(Promise.race([woken, ended]), left))) {
        if (this.#lines.length === 0) return undefined;
      }
    }
    return this.#lines.shift();
  }

  async json<T>(ms: number): Promise<T | undefined> {
    const line = await this.line(ms);
    return line === undefined ? undefined : JSON.parse(line) as T;
  }

  async send(text: string): Promise<void> {
    const writer = this.#child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text)).catch(() => {});
    writer.releaseLock();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await this.#child.status;
    await this.#done.catch(() => {});
  }
}

export interface ProbeResult {
  /** CPU (user + system) of the probe process from ready to stop, as a share of one core. */
  cpuShare: number;
  received: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  over100: number;
  slopeMsPerS: number;
  /** Median latency of the entries sent in the first and in the last quarter of the run. */
  firstQuarterP50: number;
  lastQuarterP50: number;
}

interface ProducerResult {
  /** CPU of the producer process while it sent, as a share of one core. */
  cpuShare: number;
  sent: number;
  acked: number;
  failed: number;
  seconds: number;
  maxLateMs: number;
}

export interface Phase {
  producer?: ProducerResult;
  probes: Record<string, (ProbeResult & { missing: number; behind: boolean }) | { error: string }>;
}

/** Probes on every server in `probePorts`, a producer at RATE for `seconds`, then the figures. */
export async function livePhase(
  keys: string[],
  options: { sourcePort: number; probePorts: Record<string, number>; seconds: number },
): Promise<Phase> {
  const { sourcePort, probePorts, seconds } = options;
  const probes: Array<[string, LoadProcess]> = [];
  try {
    for (const [name, port] of Object.entries(probePorts)) {
      probes.push([name, tracked(new LoadProcess(["probe", String(port), keys.join(",")]))]);
    }
    for (const [name, p] of probes) {
      if (await p.line(30_000) !== "ready") throw new Error(`the ${name} probe did not start`);
    }
    await using producer = tracked(
      new LoadProcess([
        "produce",
        String(sourcePort),
        keys.join(","),
        String(RATE),
        String(seconds),
      ]),
    );
    const result = await producer.json<ProducerResult>((seconds + 60) * 1000);
    await sleep(GRACE_MS);
    const out: Phase = { producer: result, probes: {} };
    for (const [name, p] of probes) {
      await p.send("stop\n");
      const r = await p.json<ProbeResult>(30_000);
      if (!r || !result) {
        out.probes[name] = { error: !result ? "the producer did not finish" : "no figures" };
        continue;
      }
      const missing = result.acked - r.received;
      out.probes[name] = {
        ...r,
        missing,
        behind: missing > 0 || r.lastQuarterP50 > 2 * r.firstQuarterP50 + GROWTH_MARGIN_MS,
      };
    }
    return out;
  } finally {
    for (const [, p] of probes) await p[Symbol.asyncDispose]();
  }
}

// ---------------------------------------------------------------------------
// The processes.

/** The 5 fields of a live entry: 100 bytes with a 17-character `t`. */
function liveFields(seq: number, sent: string): string[] {
  return [
    "seq",
    String(seq).padStart(8, "0"),
    "t",
    sent,
    "src",
    "sensor-0042",
    "kind",
    "reading",
    "payload",
    "x".repeat(39),
  ];
}

async function produce(port: number, keys: string[], options: { rate: number; seconds: number }) {
  const { rate, seconds } = options;
  await using client = await connect({ host: "127.0.0.1", port });
  let sent = 0, acked = 0, failed = 0, inFlight = 0, maxLateMs = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  for (;;) {
    const t = performance.now();
    if (t >= end) break;
    const due = Math.floor(((t - start) * rate) / 1000);
    if (due - sent > rate / 100) maxLateMs = Math.max(maxLateMs, ((due - sent) * 1000) / rate);
    while (sent < due && inFlight < MAX_IN_FLIGHT) {
      const key = keys[sent % keys.length];
      inFlight++;
      client.send(["XADD", key, "*", ...liveFields(sent, now().toFixed(3))]).then(
        () => acked++,
        () => failed++,
      ).finally(() => inFlight--);
      sent++;
    }
    await sleep(1);
  }
  const seconds_ = (performance.now() - start) / 1000;
  while (inFlight > 0) await sleep(5);
  const cpuShare = cpuSeconds(cpu) / ((performance.now() - start) / 1000);
  console.log(JSON.stringify({ sent, acked, failed, seconds: seconds_, maxLateMs, cpuShare }));
}

/** XREAD's reply: per stream its key and its entries ([id, [field, value, ...]]). */
type Reply = Array<[string, Array<[string, string[]]>]>;

async function probe(port: number, keys: string[]) {
  const sendTimes: number[] = [];
  const latencies: number[] = [];
  const groups: string[][] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_READER) {
    groups.push(keys.slice(i, i + KEYS_PER_READER));
  }
  const clients: TestClient[] = [];
  const readers = await Promise.all(groups.map(async (group) => {
    const client = await connect({ host: "127.0.0.1", port });
    clients.push(client);
    const ids = await Promise.all(group.map(async (key) => {
      const last = await client.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as string[][];
      return last.length ? String(last[0][0]) : "0-0";
    }));
    return { client, group, ids };
  }));
  let stopped = false;
  for (const { client, group, ids } of readers) {
    const index = new Map(group.map((k, i) => [k, i]));
    (async () => {
      while (!stopped) {
        const reply = await client.send(["XREAD", "BLOCK", "0", "STREAMS", ...group, ...ids]) as
          | Reply
          | null;
        const arrival = now();
        for (const [key, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            ids[index.get(String(key))!] = String(id);
            for (let f = 0; f + 1 < fields.length; f += 2) {
              if (String(fields[f]) !== "t") continue;
              const sent = Number(fields[f + 1]);
              sendTimes.push(sent);
              latencies.push(arrival - sent);
            }
          }
        }
      }
    })().catch(() => {});
  }
  const cpu = process.cpuUsage();
  const readyAt = performance.now();
  console.log("ready");
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  for await (const text of lines) if (text.includes("stop")) break;
  stopped = true;
  const sorted = Float64Array.from(latencies).sort();
  const t0 = sendTimes.length ? Math.min(...sendTimes.slice(0, 1000)) : 0;
  const xs = sendTimes.map((t) => (t - t0) / 1000);
  const cpuShare = cpuSeconds(cpu) / ((performance.now() - readyAt) / 1000);
  console.log(JSON.stringify({
    cpuShare,
    received: latencies.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    over100: latencies.filter((l) => l > 100).length,
    // Latency trend over the run in ms per second of sending: > 0 is a growing lag.
    slopeMsPerS: slope(xs, latencies),
    ...quarters(xs, latencies),
    timeline: timeline(xs, latencies),
  }));
  for (const c of clients) await c.close();
  Deno.exit(0);
}

/** Median latency of the entries sent in the first and in the last quarter of the run. */
function quarters(xs: number[], latencies: number[]) {
  const span = xs.reduce((m, x) => Math.max(m, x), 0);
  const median = (keep: (x: number) => boolean) =>
    quantile(Float64Array.from(latencies.filter((_, i) => keep(xs[i]))).sort(), 0.5);
  return {
    firstQuarterP50: median((x) => x < span / 4),
    lastQuarterP50: median((x) => x >= (span * 3) / 4),
  };
}

/** CPU seconds (user + system) of this process since `since`. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
}

/** Per second of sending: [second, entries, p50, max] (ms, 2 decimals). */
function timeline(xs: number[], latencies: number[]): number[][] {
  const buckets: number[][] = [];
  xs.forEach((x, i) => (buckets[Math.max(0, Math.floor(x))] ??= []).push(latencies[i]));
  const round = (n: number) => Math.round(n * 100) / 100;
  return [...buckets.entries()].filter(([, b]) => b).map(([second, b]) => {
    const sorted = Float64Array.from(b).sort();
    return [second, b.length, round(quantile(sorted, 0.5)), round(sorted[sorted.length - 1])];
  });
}

if (import.meta.main) {
  const [mode, port, keys, ...rest] = Deno.args;
  const keyList = keys.split(",");
  if (mode === "produce") {
    await produce(Number(port), keyList, { rate: Number(rest[0]), seconds: Number(rest[1]) });
  } else if (mode === "probe") await probe(Number(port), keyList);
  else throw new Error(`unknown mode ${mode}`);
}
