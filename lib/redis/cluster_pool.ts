/**
 * The connections to a Redis Cluster: one bounded {@linkcode ConnectionPool}
 * per master (`*_REDIS_POOL_SIZE` each, made when the master is first
 * needed), the layout kept by a {@linkcode ClusterRouter} (read at start,
 * on a timer, and soon after any connection hints at a change), and one
 * control client over the router's own connection per master, outside
 * the bound.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";
import { ClusterClient } from "./cluster_client.ts";
import { ClusterRouter } from "./cluster_router.ts";
import { nodeAddress } from "./cluster_slots.ts";
import type { RedisConnection } from "./connection.ts";
import type { Endpoint } from "./endpoint.ts";
import { ConnectionPool, type ConnectionPoolOptions } from "./pool.ts";
import type { RedisArg } from "./resp_writer.ts";
import type { DedicateOptions, ServerPool } from "./server_pool.ts";

/** How often the layout is read again without a hint (a node added, a quiet failover). */
export const LAYOUT_REFRESH_MS = 5000;

/** The pools of a cluster's masters; see the module doc. */
export class ClusterPool implements ServerPool {
  readonly cluster = true;
  readonly #role: string;
  readonly #endpoint: Endpoint;
  readonly #options: ConnectionPoolOptions;
  readonly #router: ClusterRouter;
  readonly #pools = new Map<string, ConnectionPool>();
  #client: ClusterClient | undefined;
  #suffix = "";
  #closed = false;
  #controlTaken = false;

  /** `endpoint`: any node of the cluster (its layout is read from there). */
  constructor(role: string, endpoint: Endpoint, options: ConnectionPoolOptions) {
    this.#role = role;
    this.#options = options;
    this.#endpoint = endpoint;
    this.#router = new ClusterRouter(this.#endpoint, {
      name: "control",
      health: options.health,
      refreshEveryMs: LAYOUT_REFRESH_MS,
    });
  }

  get poolSize(): number {
    return this.#options.poolSize;
  }

  get count(): number {
    let n = 0;
    for (const pool of this.#pools.values()) n += pool.count;
    return n;
  }

  get nameSuffix(): string {
    return this.#suffix;
  }

  set nameSuffix(suffix: string) {
    this.#suffix = suffix;
    for (const pool of this.#pools.values()) pool.nameSuffix = suffix;
  }

  /** Reads the layout (retried by the caller on failure). */
  async prepare(): Promise<void> {
    await this.#router.layout();
  }

  nodeOf(key: RedisArg): string {
    const node = this.#router.masterOf(key);
    return node ? nodeAddress(node) : "";
  }

  nodes(): string[] {
    return (this.#router.current?.masters() ?? []).map(nodeAddress);
  }

  canDedicate(node: string): boolean {
    return this.#poolOf(node).canDedicate();
  }

  dedicate(db: number, options: DedicateOptions): RedisConnection {
    return this.#poolOf(options.node ?? "").dedicate(db, options);
  }

  release(conn: RedisConnection): void {
    for (const pool of this.#pools.values()) pool.release(conn);
  }

  pick(db: number, key?: RedisArg): RedisConnection {
    const node = key === undefined ? this.#router.current?.masterOf(0) : this.#router.masterOf(key);
    return this.#poolOf(node ? nodeAddress(node) : nodeAddress(this.#endpoint)).pick(db);
  }

  /** The cluster client (the router's connections, outside the bound). */
  client(_db: number): ClusterClient {
    return this.#client ??= new ClusterClient(this.#router);
  }

  /** The cluster client over the router's connections (closing it closes the router). */
  control(db: number, name: string): ClusterClient {
    if (!this.#controlTaken && name !== "control") this.#router.rename(name).catch(() => {});
    this.#controlTaken = true;
    return this.client(db);
  }

  controlOf(node: string): RedisConnection {
    const [host, port] = splitAddress(node || nodeAddress(this.#endpoint));
    return this.#router.connectionTo({ host, port });
  }

  onLayoutChange(listener: () => void): void {
    this.#router.onChange(() => listener());
  }

  /** Closes the masters' pools (and the router, unless its control client is still in use). */
  close(): void {
    this.#closed = true;
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
    if (!this.#controlTaken) this.#router.close();
  }

  #poolOf(node: string): ConnectionPool {
    if (this.#closed) throw new ConnectError(`The ${this.#role} connections are closed`);
    let pool = this.#pools.get(node);
    if (!pool) {
      const [host, port] = splitAddress(node || nodeAddress(this.#endpoint));
      pool = new ConnectionPool(this.#role, { ...this.#endpoint, host, port }, {
        ...this.#options,
        health: this.#options.health.node(node || nodeAddress(this.#endpoint)),
        onLayoutHint: () => this.#router.hint(),
      });
      pool.nameSuffix = this.#suffix;
      this.#pools.set(node, pool);
    }
    return pool;
  }
}

/** `host:port` (or `[v6]:port`) split. */
function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  return [host, Number(address.slice(at + 1))];
}
