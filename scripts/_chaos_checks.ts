/**
 * What `deno task chaos` looks at while and after it runs: the entries on
 * the target, and whether the running replicator caught up.
 *
 * @module
 */
import { compareIds } from "../lib/redis/mod.ts";
import { connect, type RedisServer } from "../testing/redis.ts";
import { tail } from "./_chaos_replicators.ts";

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

/**
 * What `stderr` (a run's log) says of stream `key` (of DB 0) that it cannot
 * copy, as a test of an entry ID: an ID at or above the entry a stopped
 * stream names (not on the target below its top, or there with other
 * bytes); any ID when the whole source stream is refused (recreated below
 * its target's top); an ID below where a target stream trimmed by someone
 * else begins, or up to the highest ID XDEL removed from it. Undefined when
 * the log does not name the stream so.
 */
export function reportedCoverage(
  stderr: string,
  key: string,
): ((id: string) => boolean) | undefined {
  const label = escape(`db0:${key}`);
  const tests: Array<(id: string) => boolean> = [];
  const entry = new RegExp(`Entry (\\d+-\\d+) of ${label} is (?:not )?on target stream`, "g");
  for (const m of stderr.matchAll(entry)) tests.push((id) => compareIds(id, m[1]) >= 0);
  if (new RegExp(`Source stream ${label} cannot be copied in order`).test(stderr)) {
    tests.push(() => true);
  }
  const removed = new RegExp(
    `removed from target stream ${label} by something else \\([^;]*; it begins at (\\S+), XDEL removed up to (\\d+-\\d+)\\)`,
    "g",
  );
  for (const m of stderr.matchAll(removed)) {
    const [first, upTo] = [m[1], m[2]];
    tests.push((id) => (first === "-" || compareIds(id, first) < 0) || compareIds(id, upTo) <= 0);
  }
  return tests.length === 0 ? undefined : (id) => tests.some((t) => t(id));
}

/** The lowest ID `stderr` names as where stream `key` cannot be copied from (see {@linkcode reportedCoverage}). */
export function reportedFrom(stderr: string, key: string): string | undefined {
  const label = escape(`db0:${key}`);
  const found: string[] = [];
  const entry = new RegExp(`Entry (\\d+-\\d+) of ${label} is (?:not )?on target stream`, "g");
  for (const m of stderr.matchAll(entry)) found.push(m[1]);
  if (new RegExp(`Source stream ${label} cannot be copied in order`).test(stderr)) {
    found.push("0-0");
  }
  return found.sort(compareIds)[0];
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The problems with a stream that differs after a fault no tool can heal:
 * none when `stderr` (the final `run --once`) names the stream and the
 * entry from which it cannot be copied, and every difference (missing,
 * extra, changed) lies at or above that entry.
 */
export function loudDifference(
  key: string,
  cmp: { missingIds: string[]; extraIds: string[]; changedIds: string[] },
  stderr: string,
): string[] {
  const covered = reportedCoverage(stderr, key);
  if (covered === undefined) {
    return [`${key} differs and run --once did not name it:\n${tail(stderr, 20)}`];
  }
  const unsaid = [...cmp.missingIds, ...cmp.extraIds, ...cmp.changedIds].filter((id) =>
    !covered(id)
  );
  if (unsaid.length > 0) {
    return [
      `${key} differs where run --once did not say it cannot copy it: ${
        unsaid.sort(compareIds).slice(0, 5).join(", ")
      }`,
    ];
  }
  console.error(`chaos: ${key} differs only where run --once says it cannot be copied`);
  return [];
}
