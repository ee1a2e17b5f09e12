/**
 * What `deno task chaos` looks at while and after it runs: the entries on
 * the target, and whether the running replicator caught up.
 *
 * @module
 */
import { connect, type RedisServer } from "../testing/redis.ts";

const GROUP = "redis-sync-group";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The entries of `keys` on `server` together; undefined when it cannot be read now. */
export async function totalLength(
  server: RedisServer,
  keys: string[],
): Promise<number | undefined> {
  try {
    await using client = await connect(server);
    let total = 0;
    for (const key of keys) total += Number(await client.send(["XLEN", key]));
    return total;
  } catch {
    return undefined;
  }
}

/**
 * Waits until every target stream has the same last entry as its source and
 * nothing is pending in the group (the replicator caught up).
 */
export async function waitForCatchUp(
  source: RedisServer,
  target: RedisServer,
  keys: string[],
  timeoutMs: number,
): Promise<{ ok: boolean; seconds: number; detail: string }> {
  const started = performance.now();
  let detail = "";
  await using src = await connect(source);
  await using dst = await connect(target);
  while (performance.now() - started < timeoutMs) {
    detail = "";
    for (const key of keys) {
      const [a, b, p] = await Promise.all([
        src.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]),
        dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]),
        src.send(["XPENDING", key, GROUP]).catch((error) => [errorText(error)]),
      ]) as [unknown[], unknown[], unknown[]];
      const last = (reply: unknown[]) => String((reply[0] as unknown[] | undefined)?.[0] ?? "-");
      if (last(a) !== last(b) || String(p[0]) !== "0") {
        detail += ` ${key}: source last ${last(a)}, target last ${last(b)}, pending ${p[0]};`;
      }
    }
    if (detail === "") return { ok: true, seconds: (performance.now() - started) / 1000, detail };
    await delay(250);
  }
  return { ok: false, seconds: (performance.now() - started) / 1000, detail };
}
