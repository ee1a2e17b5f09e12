/**
 * The bench's live-load processes (spawned by scripts/_bench_live.ts, one
 * process each, so that their work neither slows the bench nor each other):
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
import { connect, type TestClient } from "../tests/_redis.ts";
import { now, quantile, sleep, slope } from "./_bench_util.ts";

const KEYS_PER_READER = 100;
const MAX_IN_FLIGHT = 20_000;

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

async function produce(port: number, keys: string[], rate: number, seconds: number) {
  await using client = await connect({ host: "127.0.0.1", port });
  let sent = 0, acked = 0, failed = 0, inFlight = 0, maxLateMs = 0;
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
  console.log(JSON.stringify({ sent, acked, failed, seconds: seconds_, maxLateMs }));
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
  console.log("ready");
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  for await (const text of lines) if (text.includes("stop")) break;
  stopped = true;
  const sorted = Float64Array.from(latencies).sort();
  const t0 = sendTimes.length ? Math.min(...sendTimes.slice(0, 1000)) : 0;
  const xs = sendTimes.map((t) => (t - t0) / 1000);
  console.log(JSON.stringify({
    received: latencies.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    over100: latencies.filter((l) => l > 100).length,
    // Latency trend over the run in ms per second of sending: > 0 is a growing lag.
    slopeMsPerS: slope(xs, latencies),
  }));
  for (const c of clients) await c.close();
  Deno.exit(0);
}

if (import.meta.main) {
  const [mode, port, keys, ...rest] = Deno.args;
  const keyList = keys.split(",");
  if (mode === "produce") await produce(Number(port), keyList, Number(rest[0]), Number(rest[1]));
  else if (mode === "probe") await probe(Number(port), keyList);
  else throw new Error(`unknown mode ${mode}`);
}
