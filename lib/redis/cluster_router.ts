/**
 * Commands to a Redis Cluster, each sent to the master of its key's slot:
 * the layout is read with `CLUSTER SLOTS` from any node it knows (the seed
 * first), refreshed on a MOVED reply and on demand; an ASK reply (a slot
 * being migrated) is followed once, with `ASKING`, on the node it names.
 * Every node discovered gets the seed's credentials, TLS and timeouts (one
 * endpoint, its address changed). One connection per master. Not yet used
 * by the replication layer (issue 11).
 *
 * @module
 */
import { ConnectError, ConnectionError, RedisReplyError } from "../errors.ts";
import {
  type ClusterNode,
  nodeAddress,
  parseClusterSlots,
  redirection,
  SlotMap,
} from "./cluster_slots.ts";
import { RedisConnection } from "./connection.ts";
import type { Endpoint } from "./endpoint.ts";
import { clusterSlot } from "./key_slot.ts";
import type { RedisArg } from "./resp_writer.ts";

/** Redirections one command follows before it fails (a layout changing faster is not settled). */
const MAX_REDIRECTIONS = 5;

/** Options for {@linkcode ClusterRouter}. */
export interface ClusterRouterOptions {
  /**
   * What the connections are for: their CLIENT SETNAME is
   * `redis-stream-sync-<name>`.
   * @default {undefined}
   */
  name?: string;
}

/** Routes commands to the masters of a cluster; see the module doc. */
export class ClusterRouter {
  readonly #seed: Endpoint;
  readonly #options: ClusterRouterOptions;
  readonly #connections = new Map<string, RedisConnection>();
  #map: SlotMap | undefined;
  #refreshing: Promise<SlotMap> | undefined;
  #closed = false;

  /** `seed`: one node of the cluster, and how to talk to every node. */
  constructor(seed: Endpoint, options: ClusterRouterOptions = {}) {
    this.#seed = seed;
    this.#options = options;
  }

  /** The layout, read once (and again after {@linkcode ClusterRouter.refresh}). */
  async layout(): Promise<SlotMap> {
    return this.#map ?? await this.refresh();
  }

  /**
   * Reads the layout again from the first node that answers: the known
   * masters, then the seed. Concurrent calls share one read.
   *
   * @throws {ConnectError} when no node answered with a layout that covers every slot.
   */
  refresh(): Promise<SlotMap> {
    this.#refreshing ??= this.#read().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /** The connection to `node` (made once per node). */
  connectionTo(node: { host: string; port: number }): RedisConnection {
    if (this.#closed) {
      throw new ConnectError(`The ${this.#seed.role} cluster connections are closed`);
    }
    const address = nodeAddress(node);
    let conn = this.#connections.get(address);
    if (!conn) {
      conn = new RedisConnection(
        { ...this.#seed, host: node.host, port: node.port },
        this.#options.name ? { name: this.#options.name } : {},
      );
      this.#connections.set(address, conn);
    }
    return conn;
  }

  /**
   * Sends `args` to the master of `key`'s slot and returns the reply,
   * following MOVED (the layout is read again) and ASK.
   *
   * @throws {RedisReplyError} for an error reply other than a redirection.
   */
  async send(key: RedisArg, args: readonly RedisArg[]): Promise<unknown> {
    const slot = clusterSlot(typeof key === "string" ? new TextEncoder().encode(key) : key);
    let node: { host: string; port: number } | undefined = (await this.layout()).masterOf(slot);
    let asking = false;
    for (let hop = 0;; hop++) {
      if (!node) node = (await this.refresh()).masterOf(slot);
      if (!node) {
        throw new ConnectError(`No node of the ${this.#seed.role} cluster serves slot ${slot}`);
      }
      const conn = this.connectionTo(node);
      try {
        if (!asking) return await conn.send(undefined, args);
        const [, reply] = await conn.pipeline(undefined, [["ASKING"], args]);
        if (reply.status === "rejected") throw reply.reason;
        return reply.value;
      } catch (error) {
        // A node that cannot be reached may have failed over: the layout is read again
        // for the next attempt (the caller's retry).
        if (error instanceof ConnectionError) this.refresh().catch(() => {});
        const moved = redirection(error, node.host);
        if (!moved || hop >= MAX_REDIRECTIONS) throw error;
        asking = moved.kind === "ASK";
        node = { host: moved.host, port: moved.port };
        // A MOVED means the layout changed: read it again (later commands use it).
        if (moved.kind === "MOVED") await this.refresh().catch(() => {});
      }
    }
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#connections.values()) conn.close();
    this.#connections.clear();
  }

  async #read(): Promise<SlotMap> {
    const candidates: ClusterNode[] = [
      ...(this.#map?.masters() ?? []),
      { host: this.#seed.host, port: this.#seed.port, id: "" },
    ];
    const failures: string[] = [];
    for (const node of candidates) {
      try {
        const reply = await this.connectionTo(node).send(undefined, ["CLUSTER", "SLOTS"]);
        const map = new SlotMap(parseClusterSlots(reply, node.host));
        const missing = map.unassigned();
        if (missing > 0) {
          failures.push(`${nodeAddress(node)}: ${missing} slots have no master`);
          continue;
        }
        this.#map = map;
        this.#forgetGone(map);
        return map;
      } catch (error) {
        if (this.#closed) throw error;
        const message = error instanceof RedisReplyError ? error.message : (error as Error).message;
        failures.push(`${nodeAddress(node)}: ${message}`);
      }
    }
    throw new ConnectError(
      `No node of the ${this.#seed.role} cluster gave its layout: ${failures.join("; ")}`,
    );
  }

  /** Connections to nodes that serve no slot any more are closed (the seed's is kept). */
  #forgetGone(map: SlotMap): void {
    const keep = new Set(map.masters().map(nodeAddress));
    keep.add(nodeAddress(this.#seed));
    for (const [address, conn] of this.#connections) {
      if (keep.has(address)) continue;
      conn.close();
      this.#connections.delete(address);
    }
  }
}
