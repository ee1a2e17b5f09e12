/**
 * The connections to one side (source or target), whatever its topology:
 * one server (`pool.ts`) or a Redis Cluster (`cluster_pool.ts`, one
 * bounded pool per master); `open_pool.ts` makes the right one. The replication
 * layer asks for a connection that reaches a key, and groups its
 * pipelines by {@linkcode ServerPool.nodeOf}.
 *
 * @module
 */
import type { RedisClient } from "./client.ts";
import type { RedisConnection } from "./connection.ts";
import type { RespValue } from "./resp_parser.ts";
import type { RedisArg } from "./resp_writer.ts";

/** Options for {@linkcode ServerPool.dedicate}. */
export interface DedicateOptions {
  /** What it is for (its CLIENT SETNAME is `redis-stream-sync-<name>`). */
  name: string;
  /**
   * The node it goes to (`host:port`, from {@linkcode ServerPool.nodeOf}).
   * @default {"" (one server)}
   */
  node?: string;
  /**
   * Makes it a subscriber's connection: pub/sub messages go here.
   * @default {undefined}
   */
  onPush?: (message: RespValue[]) => void;
}

/** The connections to one side; see the module doc. */
export interface ServerPool {
  /** A Redis Cluster. */
  readonly cluster: boolean;
  /** `*_REDIS_POOL_SIZE`: the bound (per master in a cluster). */
  readonly poolSize: number;
  /** Connections opened or reserved so far, within the bound(s). */
  readonly count: number;
  /** Appended to the names of the connections created from now on (e.g. `@<instance id>`). */
  nameSuffix: string;
  /** Reads a cluster's layout (nothing for one server). */
  prepare(): Promise<void>;
  /** The node `key` lives on now: `host:port` of its master, "" on one server. */
  nodeOf(key: RedisArg): string;
  /** The nodes that serve keys now (`[""]` on one server). */
  nodes(): string[];
  /** Whether `node`'s pool can still dedicate a connection. */
  canDedicate(node: string): boolean;
  /** A connection that only its taker uses (a reader, a subscriber). */
  dedicate(db: number, options: DedicateOptions): RedisConnection;
  /** Closes a dedicated connection and gives its place in the bound back. */
  release(conn: RedisConnection): void;
  /** A shared connection for non-blocking commands on `db` that reaches `key`. */
  pick(db: number, key?: RedisArg): RedisConnection;
  /**
   * A client for pipelines over many keys of `db` (one server: a shared
   * connection; a cluster: the client that splits them per master).
   */
  client(db: number): RedisClient;
  /** The client for control work, outside the bound (one per pool). */
  control(db: number, name: string): RedisClient;
  /** The control connection to `node` (of {@linkcode ServerPool.control}). */
  controlOf(node: string): RedisConnection;
  /** Calls `listener` after a cluster's layout changed. */
  onLayoutChange(listener: () => void): void;
  /** Closes every connection. */
  close(): void;
}
