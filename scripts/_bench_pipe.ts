/**
 * A minimal pipelined client for row t (issue 18: what TLS costs the
 * runtime, apart from the tool): `XADD <key> * <entryFields>` in pipelines
 * of 1,000 over one `node:net` or `node:tls` socket (the module the tool's
 * TLS connections use), one pipeline in flight, replies counted by their
 * line ends. See scripts/bench.ts.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { entryFields } from "./_bench_util.ts";

const PIPELINE = 1000;

function encode(args: string[]): Uint8Array {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) parts.push(`$${new TextEncoder().encode(a).length}\r\n${a}\r\n`);
  return new TextEncoder().encode(parts.join(""));
}

/** XADDs per second of `entries` XADDs to `key` on `port`, in plain TCP or over TLS (`tlsCa`). */
export async function pipelinedXadds(
  port: number,
  options: { key: string; entries: number; tlsCa?: string },
): Promise<number> {
  const { key, entries, tlsCa } = options;
  const one = encode(["XADD", key, "*", ...entryFields(1)]);
  const batch = new Uint8Array(one.length * PIPELINE);
  for (let i = 0; i < PIPELINE; i++) batch.set(one, i * one.length);
  const socket = tlsCa
    ? tls.connect({ host: "127.0.0.1", port, ca: await Deno.readTextFile(tlsCa) })
    : net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once(tlsCa ? "secureConnect" : "connect", () => resolve());
    socket.once("error", reject);
  });
  socket.setNoDelay(true);
  let lines = 0;
  let wake: (() => void) | undefined;
  let refused: string | undefined;
  socket.on("data", (chunk: Uint8Array) => {
    if (chunk[0] === 45) refused ??= new TextDecoder().decode(chunk.subarray(0, 200)); // "-ERR"
    for (const byte of chunk) if (byte === 10) lines++;
    wake?.();
  });
  socket.on("close", () => {
    refused ??= "the connection closed";
    wake?.();
  });
  const started = performance.now();
  try {
    for (let sent = 0; sent < entries; sent += PIPELINE) {
      const want = 2 * Math.min(entries, sent + PIPELINE); // "$<len>\r\n<id>\r\n" per reply
      socket.write(
        sent + PIPELINE <= entries ? batch : batch.subarray(0, (entries - sent) * one.length),
      );
      while (lines < want) {
        if (refused) throw new Error(`pipelined XADD failed: ${refused}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
    return entries / ((performance.now() - started) / 1000);
  } finally {
    socket.destroy();
  }
}
