/**
 * The two servers `status` reads, each allowed to be down: both are
 * connected at once, once; a side that does not answer is kept with the
 * reason (its passwords never shown), and `status` shows what the other
 * side says. Only both down is an error (exit 69); a refused password or
 * TLS handshake stays a configuration error (78).
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { makeRedact } from "../_redact.ts";
import { errorMessage, UnreachableError } from "../errors.ts";
import { escapeBytes } from "../log.ts";
import { clientFor, type RedisClient, serverAddress } from "../redis/mod.ts";
import { connectOrThrow } from "./check.ts";

/** One server as `status` found it. Field names are the `status --json` format. */
export interface ServerStatus {
  /** `host:port` (or `<master> via sentinels`). */
  address: string;
  /** Whether it answered. */
  up: boolean;
  /** Why it is down: the connection error ("" when up). */
  error: string;
}

/** The two sides: a client for each that answered. */
export interface Sides {
  /** The source's client; undefined when it is down. */
  source?: RedisClient;
  /** The target's client; undefined when it is down. */
  target?: RedisClient;
  /** How each side was found. */
  servers: { source: ServerStatus; target: ServerStatus };
  /** Closes what was opened. */
  close(): void;
}

/**
 * Connects to both servers at once. Throws {@linkcode UnreachableError}
 * (exit 69) when neither answers, and the configuration errors of either
 * (a refused password, a TLS handshake: 78).
 */
export async function openSides(config: Config): Promise<Sides> {
  const redact = makeRedact(
    [config.source, config.target].flatMap((s) => [s.password ?? "", s.sentinel?.password ?? ""]),
    escapeBytes,
  );
  const roles = ["source", "target"] as const;
  const servers = { source: config.source, target: config.target };
  const clients = {
    source: clientFor("source", config.source, { db: config.source.db }),
    target: clientFor("target", config.target, {
      db: config.target.db === "same" ? 0 : config.target.db,
    }),
  };
  const results = await Promise.allSettled(
    roles.map((role) => connectOrThrow(clients[role], { role, server: servers[role] })),
  );
  const close = () => roles.forEach((role) => clients[role].close());
  const fatal = results.find((r) =>
    r.status === "rejected" && !(r.reason instanceof UnreachableError)
  );
  if (fatal?.status === "rejected") {
    close();
    throw fatal.reason;
  }
  const status = (role: "source" | "target", i: number): ServerStatus => {
    const r = results[i];
    return {
      address: serverAddress(servers[role]),
      up: r.status === "fulfilled",
      error: r.status === "fulfilled" ? "" : String(redact(reason(errorMessage(r.reason)))),
    };
  };
  const found = { source: status("source", 0), target: status("target", 1) };
  for (const role of roles) if (!found[role].up) clients[role].close();
  if (!found.source.up && !found.target.up) {
    close();
    throw new UnreachableError(
      `Neither server answers: source "${found.source.address}": ${found.source.error}; target "${found.target.address}": ${found.target.error}`,
    );
  }
  return {
    source: found.source.up ? clients.source : undefined,
    target: found.target.up ? clients.target : undefined,
    servers: found,
    close,
  };
}

/** The connection error without its `Cannot connect to <role> "<address>": ` prefix. */
function reason(message: string): string {
  return message.replace(/^Cannot connect to \w+ "[^"]*": /, "");
}
