/**
 * The client interface the replication and ops layers talk to: one
 * connection to one server ({@linkcode RedisConnection}) or a cluster
 * client that sends each command to the master of its key's slot
 * (`cluster_client.ts`). Commands name their key in the usual place (see
 * {@linkcode commandKey}); a pipeline may mix keys, a transaction may not.
 *
 * @module
 */
import type { SendOptions } from "./connection_options.ts";
import type { RespValue } from "./resp_parser.ts";
import type { RespWriter } from "./resp_writer.ts";
import type { RedisArg } from "./resp_writer.ts";

/** What callers need of a connection, whatever the server's topology. */
export interface RedisClient {
  /** A Redis Cluster: a script or transaction must keep to the keys of one slot. */
  readonly cluster: boolean;
  /** `source "host:port"` (or the cluster's seed), for messages. */
  readonly where: string;
  /** Sends one command (to the node of its key) and returns its reply; error replies are thrown. */
  send(db: number | undefined, args: readonly RedisArg[], options?: SendOptions): Promise<unknown>;
  /** Sends several commands in one pipeline per node; each outcome in order. */
  pipeline(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options?: SendOptions,
  ): Promise<PromiseSettledResult<unknown>[]>;
  /** Runs `commands` (all on keys of one slot) as one MULTI/EXEC; each outcome in order. */
  transaction(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options?: SendOptions,
  ): Promise<PromiseSettledResult<unknown>[]>;
  /** The connection that reaches `key` (of one server: itself; a pipeline must be grouped by {@linkcode RedisClient.nodeOf}). */
  connectionFor(key?: RedisArg): NodeConnection;
  /** A connection to each master (the layout read again first); one server: itself. */
  masters(): Promise<NodeConnection[]>;
  /** Where `key` lives: `host:port` of its master in a cluster, "" on one server. */
  nodeOf(key: RedisArg): string;
  /** Names the connections `redis-stream-sync-<name>` from now on. */
  rename(name: string): Promise<void>;
  /** Closes every connection. */
  close(): void;
}

/** One connection to one node: a client that also sends pre-encoded pipelines. */
export interface NodeConnection extends RedisClient {
  /** Opens the connection now. */
  connect(): Promise<void>;
  /** Sends `count` commands encoded by `encode` in one pipeline; the replies in order. */
  batch(
    db: number | undefined,
    count: number,
    encode: (writer: RespWriter) => void,
    options?: SendOptions,
  ): Promise<RespValue[]>;
}

/** Commands whose first key is the third argument (`XINFO STREAM key`, `XGROUP CREATE key`). */
const KEY_THIRD = new Set(["XINFO", "XGROUP", "OBJECT", "MEMORY"]);
/** Commands without a key. */
const KEYLESS = new Set([
  "PING",
  "INFO",
  "CLIENT",
  "CONFIG",
  "SCAN",
  "CLUSTER",
  "WAIT",
  "PUBLISH",
  "SUBSCRIBE",
  "TIME",
  "ROLE",
  "DBSIZE",
  "SELECT",
  "SCRIPT",
  "MULTI",
  "EXEC",
  "ASKING",
]);

/**
 * The key that decides where `args` runs in a cluster; undefined for a
 * command without one. `EVAL`/`EVALSHA`: the first of its keys;
 * `XREAD`/`XREADGROUP`: the first key after `STREAMS`.
 */
export function commandKey(args: readonly RedisArg[]): RedisArg | undefined {
  const name = String(args[0]).toUpperCase();
  if (KEYLESS.has(name)) return undefined;
  if (name === "EVAL" || name === "EVALSHA") {
    return Number(String(args[2])) > 0 ? args[3] : undefined;
  }
  if (name === "XREAD" || name === "XREADGROUP") {
    const at = args.findIndex((a) => typeof a === "string" && a.toUpperCase() === "STREAMS");
    return at < 0 ? undefined : args[at + 1];
  }
  return KEY_THIRD.has(name) ? args[2] : args[1];
}
