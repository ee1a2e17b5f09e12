/**
 * The tamper faults of `deno task chaos --tamper`: other people's hands on
 * the servers, each of which the tool must heal so that the run still ends
 * exact (the source still holds every entry: chaos never trims it).
 *
 * - `target-flushall`: FLUSHALL on the target (every copy gone);
 * - `target-del`: one target stream deleted;
 * - `target-oom`: the target's maxmemory set just above what it uses, for a
 *   while (writes refused with OOM, or EXECABORT, and retried), then back;
 * - `source-oom`: the same on the source (the producer's writes fail too).
 *
 * @module
 */
import type { RedisServer } from "../testing/redis.ts";
import { connect } from "../testing/redis.ts";

/** The tamper faults, by name. */
export const TAMPER_KINDS = ["target-flushall", "target-del", "target-oom", "source-oom"] as const;

/** One tamper fault. */
export type TamperKind = typeof TAMPER_KINDS[number];

/** What a tamper fault needs. */
export interface TamperContext {
  /** The source server. */
  source: RedisServer;
  /** The target server. */
  target: RedisServer;
  /** The streams copied. */
  keys: readonly string[];
  /** The run's PRNG. */
  random: () => number;
}

/** Runs `kind` against the servers (directly, not through the proxies); returns what it did. */
export async function tamper(kind: TamperKind, ctx: TamperContext): Promise<string> {
  const { source, target, keys, random } = ctx;
  if (!source.running || !target.running) return `${kind} skipped (a server is down)`;
  switch (kind) {
    case "target-flushall": {
      await using dst = await connect(target);
      await dst.send(["FLUSHALL"]);
      return "target FLUSHALL";
    }
    case "target-del": {
      const key = keys[Math.floor(random() * keys.length)];
      await using dst = await connect(target);
      await dst.send(["DEL", key]);
      return `target DEL ${key}`;
    }
    case "target-oom":
    case "source-oom": {
      const server = kind === "target-oom" ? target : source;
      const ms = 500 + Math.floor(random() * 3000);
      await using client = await connect(server);
      const info = String(await client.send(["INFO", "memory"]));
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
      await client.send(["CONFIG", "SET", "maxmemory", String(used + 64 * 1024)]);
      await new Promise((resolve) => setTimeout(resolve, ms));
      await client.send(["CONFIG", "SET", "maxmemory", "0"]).catch(() => {});
      return `${kind.split("-")[0]} maxmemory at used + 64 KiB for ${ms} ms`;
    }
  }
}
