/**
 * A bounded set of connections to one Redis server. Non-blocking commands
 * share connections (node-redis pipelines them); blocking readers take a
 * connection of their own. The pool never opens more than the server's `poolSize`.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";
import { RedisConnection, type RedisConnectionOptions } from "./connection.ts";
import type { Endpoint } from "./endpoint.ts";
import type { RedisArg } from "./resp_writer.ts";
import type { ServerHealth } from "./server_health.ts";
import type { DedicateOptions, ServerPool } from "./server_pool.ts";

/** Options for {@linkcode ConnectionPool}. */
export interface ConnectionPoolOptions {
  /** Shared health of the server. */
  health: ServerHealth;
  /** The most connections it opens (`*_REDIS_POOL_SIZE`). */
  poolSize: number;
  /**
   * Told when a reply or failure hints that a cluster's layout changed.
   * @default {undefined}
   */
  onLayoutHint?: () => void;
}

/** A bounded, lazily filled pool of connections to one server. */
export class ConnectionPool implements ServerPool {
  readonly cluster = false;
  #control: RedisConnection | undefined;
  #role: string;
  #endpoint: Endpoint;
  #options: ConnectionPoolOptions;
  #shared: RedisConnection[] = [];
  #dedicated: RedisConnection[] = [];
  #closed = false;

  constructor(role: string, endpoint: Endpoint, options: ConnectionPoolOptions) {
    this.#role = role;
    this.#endpoint = endpoint;
    this.#options = options;
  }

  /** The bound. */
  get poolSize(): number {
    return this.#options.poolSize;
  }

  /** Connections opened or reserved so far. */
  get count(): number {
    return this.#shared.length + this.#dedicated.length;
  }

  /** Nothing to read first on one server. */
  prepare(): Promise<void> {
    return Promise.resolve();
  }

  /** One server: every key is on it. */
  nodeOf(_key: RedisArg): string {
    return "";
  }

  nodes(): string[] {
    return [""];
  }

  /** Whether a dedicated connection can still be taken. */
  canDedicate(_node = ""): boolean {
    return this.count < this.#options.poolSize;
  }

  /** A shared connection on `db` (one server: it reaches every key). */
  client(db: number): RedisConnection {
    return this.pick(db);
  }

  /** The control connection (made once), outside the bound. */
  control(db: number, name: string): RedisConnection {
    return this.#control ??= this.extra(db, name);
  }

  /** The control connection (one server: every node is this one). */
  controlOf(_node: string): RedisConnection {
    return this.#control ?? this.control(0, "control");
  }

  /** One server's layout never changes. */
  onLayoutChange(_listener: () => void): void {}

  /**
   * A connection for non-blocking commands on `db`: an idle one already on
   * that DB, else a new one while the pool has room, else the least busy.
   */
  pick(db: number, _key?: RedisArg): RedisConnection {
    if (this.#closed) throw new ConnectError(`The ${this.#role} connections are closed`);
    let best: RedisConnection | undefined;
    for (const conn of this.#shared) {
      if (conn.db !== db) continue;
      if (conn.inflight === 0) return conn;
      if (!best || conn.inflight < best.inflight) best = conn;
    }
    if (this.count < this.#options.poolSize) {
      const conn = this.#create(db, `${this.#role}-w${this.#shared.length}`);
      this.#shared.push(conn);
      return conn;
    }
    if (best) return best;
    let least = this.#shared[0];
    for (const conn of this.#shared) if (conn.inflight < least.inflight) least = conn;
    if (!least) throw new Error(`The ${this.#role} pool has no connection to share`);
    return least;
  }

  /** Takes a connection that only its taker uses (for blocking reads). */
  dedicate(db: number, options: DedicateOptions): RedisConnection {
    if (this.#closed) throw new ConnectError(`The ${this.#role} connections are closed`);
    if (!this.canDedicate()) {
      throw new Error(`The ${this.#role} pool is full (${this.#options.poolSize})`);
    }
    const conn = this.#create(db, options.name, { trackClientId: true, onPush: options.onPush });
    this.#dedicated.push(conn);
    return conn;
  }

  /** Closes a dedicated connection and gives its place in the bound back. */
  release(conn: RedisConnection): void {
    conn.close();
    this.#dedicated = this.#dedicated.filter((c) => c !== conn);
  }

  /** A connection outside the bound, for control work (discovery, health, unblocking). */
  extra(db: number, name: string): RedisConnection {
    return this.#create(db, name);
  }

  /** Closes every connection of the pool. */
  close(): void {
    this.#closed = true;
    for (const conn of [...this.#shared, ...this.#dedicated]) conn.close();
    this.#shared = [];
    this.#dedicated = [];
  }

  /** Appended to the names of the connections created from now on (e.g. `@<instance id>`). */
  nameSuffix = "";

  #create(
    db: number,
    name: string,
    extra: Pick<RedisConnectionOptions, "trackClientId" | "onPush"> = {},
  ): RedisConnection {
    return new RedisConnection(this.#endpoint, {
      db,
      name: name + this.nameSuffix,
      health: this.#options.health,
      onLayoutHint: this.#options.onLayoutHint,
      ...extra,
    });
  }
}
