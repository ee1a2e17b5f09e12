/**
 * The commands a server serves, as MONITOR shows them (one line each, with
 * the server's time): for tests that check what the tool sent, in which
 * order, and how often.
 *
 * @module
 */

/** The commands `port` serves from now on, one line each, until `done` says so (or 20 s). */
export async function monitor(
  port: number,
  done: (lines: string[]) => boolean,
): Promise<{ ready: Promise<void>; lines: Promise<string[]> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("MONITOR\r\n"));
  let ready!: () => void;
  const readyP = new Promise<void>((resolve) => (ready = resolve));
  const lines = (async () => {
    const decoder = new TextDecoder();
    const out: string[] = [];
    let rest = "";
    const buf = new Uint8Array(1 << 16);
    const until = Date.now() + 20_000;
    try {
      while (Date.now() < until) {
        const n = await conn.read(buf);
        if (n === null) break;
        const parts = (rest + decoder.decode(buf.subarray(0, n), { stream: true })).split("\r\n");
        rest = parts.pop()!;
        for (const line of parts) {
          if (line === "+OK") ready();
          else out.push(line);
        }
        if (done(out)) break;
      }
    } finally {
      conn.close();
    }
    return out;
  })();
  return { ready: readyP, lines };
}

/** The server time (s) of a MONITOR line. */
export function served(line: string): number {
  return Number(line.slice(1, line.indexOf(" ")));
}
