/**
 * A bounded set of connections to one Redis server. Non-blocking commands
 * share connections (node-redis pipelines them); blocking readers take a
 * connection of their own. The pool never opens more than the server's `poolSize`.
 *
 * @module
 */
import type { RedisServerConfig } from "../config/types.ts";
import { ConnectError } from "../errors.ts";
import { RedisConnection } from "./connection.ts";
import { type Endpoint, endpointFor } from "./endpoint.ts";
import type { ServerHealth } from "./server_health.ts";

/** Options for {@linkcode ConnectionPool}. */
export interface ConnectionPoolOptions {
  /** Shared health of the server. */
  health: ServerHealth;
}

/** A bounded, lazily filled pool of connections to one server. */
export class ConnectionPool {
  #role: string;
  #server: RedisServerConfig;
  #endpoint: Endpoint;
  #options: ConnectionPoolOptions;
  #shared: RedisConnection[] = [];
  #dedicated: RedisConnection[] = [];
  #closed = false;

  constructor(role: string, server: RedisServerConfig, options: ConnectionPoolOptions) {
    this.#role = role;
    this.#server = server;
    this.#endpoint = endpointFor(role, server, { healthChecks: true });
    this.#options = options;
  }

  /** Connections opened or reserved so far. */
  get count(): number {
    return this.#shared.length + this.#dedicated.length;
  }

  /** Whether a dedicated connection can still be taken. */
  get canDedicate(): boolean {
    return this.count < this.#server.poolSize;
  }

  /**
   * A connection for non-blocking commands on `db`: an idle one already on
   * that DB, else a new one while the pool has room, else the least busy.
   */
  pick(db: number): RedisConnection {
    if (this.#closed) throw new ConnectError(`The ${this.#role} connections are closed`);
    let best: RedisConnection | undefined;
    for (const conn of this.#shared) {
      if (conn.db !== db) continue;
      if (conn.inflight === 0) return conn;
      if (!best || conn.inflight < best.inflight) best = conn;
    }
    if (this.count < this.#server.poolSize) {
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
  dedicate(db: number, name: string): RedisConnection {
    if (this.#closed) throw new ConnectError(`The ${this.#role} connections are closed`);
    if (!this.canDedicate) {
      throw new Error(`The ${this.#role} pool is full (${this.#server.poolSize})`);
    }
    const conn = this.#create(db, name, true);
    this.#dedicated.push(conn);
    return conn;
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

  #create(db: number, name: string, trackClientId = false): RedisConnection {
    return new RedisConnection(this.#endpoint, {
      db,
      name: name + this.nameSuffix,
      health: this.#options.health,
      trackClientId,
    });
  }
}
