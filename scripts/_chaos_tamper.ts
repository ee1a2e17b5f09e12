/**
 * The tamper faults of `deno task chaos --tamper`: other people's hands on
 * the servers, each of which the tool must heal so that the run still ends
 * exact (the source still holds every entry: chaos never trims it).
 *
 * - `target-flushall`: FLUSHALL on the target (every copy gone);
 * - `target-del`: one target stream deleted;
 * - `target-oom`: the target's maxmemory set just above what it uses, for a
 *   while (writes refused with OOM, or EXECABORT, and retried), then back;
 * - `source-oom`: the same on the source (the producer's writes fail too);
 * - `group-setid`: a stream's consumer group moved to its last entry
 *   (`XGROUP SETID ... $`: the entries it passes are copied from the source);
 * - `group-destroy`: a stream's consumer group destroyed (made again, the
 *   stream read again from its start, what the target holds confirmed).
 *
 * And two that no tool can heal, which must end loud (`LOUD_KINDS`): the
 * stream stops with an error naming it, nothing of it is acked as copied,
 * and the final `run --once` names it:
 * - `target-foreign`: another writer adds an entry above the target
 *   stream's top (the source's next entries can no longer be inserted);
 * - `source-reset`: a source stream deleted and recreated with IDs below
 *   what its target holds;
 * - `target-trim`: another client trims the target stream (XTRIM MAXLEN to
 *   half its length): those entries can never be written again.
 *
 * @module
 */
import type { RedisServer } from "../testing/redis.ts";
import { connect } from "../testing/redis.ts";

const GROUP = "redis-sync-group";

/** The tamper faults, by name. */
export const TAMPER_KINDS = [
  "target-flushall",
  "target-del",
  "target-oom",
  "source-oom",
  "group-setid",
  "group-destroy",
] as const;

/** The tamper faults that must end loud. */
export const LOUD_KINDS = ["target-foreign", "source-reset", "target-trim"] as const;

/** One tamper fault. */
export type TamperKind = typeof TAMPER_KINDS[number] | typeof LOUD_KINDS[number];

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
  /** The stream the loud faults go to (kept apart from the others, whose copies must end exact). */
  loudKey: string;
  /** Whether a loud fault hit it already (the healable faults then leave it alone). */
  loudHit: boolean;
}

/** Runs `kind` against the servers (directly, not through the proxies); returns what it did. */
export async function tamper(kind: TamperKind, ctx: TamperContext): Promise<string> {
  const { source, target, keys, random } = ctx;
  if (!source.running || !target.running) return `${kind} skipped (a server is down)`;
  switch (kind) {
    case "target-flushall": {
      await using dst = await connect(target);
      if (!ctx.loudHit) {
        await dst.send(["FLUSHALL"]);
        return "target FLUSHALL";
      }
      // The loud stream keeps what it holds: its difference must stay to be named.
      const others = keys.filter((k) => k !== ctx.loudKey);
      await dst.send(["DEL", ...others]);
      return `target DEL of every stream but ${ctx.loudKey}`;
    }
    case "target-del": {
      const others = keys.filter((k) => k !== ctx.loudKey);
      const key = others[Math.floor(random() * others.length)];
      await using dst = await connect(target);
      await dst.send(["DEL", key]);
      return `target DEL ${key}`;
    }
    case "target-foreign": {
      const key = ctx.loudKey;
      await using dst = await connect(target);
      const top = await dst.send(["XREVRANGE", key, "+", "-", "COUNT", "1"]) as unknown[][];
      const ms = Number(String(top[0]?.[0] ?? "0-0").split("-")[0]) + 60_000;
      await dst.send(["XADD", key, `${ms}-0`, "written", "by someone else"]);
      return `target XADD ${key} ${ms}-0 by another writer (loud)`;
    }
    case "target-trim": {
      const key = ctx.loudKey;
      await using dst = await connect(target);
      const length = Number(await dst.send(["XLEN", key]));
      await dst.send(["XTRIM", key, "MAXLEN", String(Math.floor(length / 2))]);
      return `target XTRIM ${key} MAXLEN ${Math.floor(length / 2)} by another client (loud)`;
    }
    case "group-setid":
    case "group-destroy": {
      const others = keys.filter((k) => k !== ctx.loudKey);
      const key = others[Math.floor(random() * others.length)];
      await using src = await connect(source);
      if (kind === "group-setid") await src.send(["XGROUP", "SETID", key, GROUP, "$"]);
      else await src.send(["XGROUP", "DESTROY", key, GROUP]);
      return kind === "group-setid"
        ? `source XGROUP SETID ${key} $`
        : `source XGROUP DESTROY ${key}`;
    }
    case "source-reset": {
      const key = ctx.loudKey;
      await using src = await connect(source);
      await src.send(["DEL", key]);
      for (let i = 1; i <= 5; i++) await src.send(["XADD", key, `1-${i}`, "reset", String(i)]);
      return `source DEL ${key}, recreated with IDs 1-1..1-5 (loud)`;
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
