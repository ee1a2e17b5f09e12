/**
 * Commands to a Redis Cluster, each sent to the master of its key's slot:
 * the layout is read with `CLUSTER SLOTS` from any node it knows (the seed
 * first), refreshed on a MOVED reply and on demand; an ASK reply (a slot
 * being migrated) is followed once, with `ASKING`, on the node it names.
 * Every node discovered gets the seed's credentials, TLS and timeouts (one
 * endpoint, its address changed). One connection per master. The layout
 * is also read again on a timer, and soon after any connection of the
 * cluster hints at a change (a redirection, a lost node); listeners hear
 * of every change.
 *
 * @module
 */
import { AuthError, ConnectError, ConnectionError, RedisReplyError, TlsError } from "../errors.ts";
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
import type { SendOptions } from "./connection_options.ts";
import type { RedisArg } from "./resp_writer.ts";
import type { ServerHealth } from "./server_health.ts";

/** Redirections one command follows before it fails (a layout changing faster is not settled). */
const MAX_REDIRECTIONS = 5;
/** After a hint, the layout is read again at most this often. */
const HINT_DELAY_MS = 200;

/** Options for {@linkcode ClusterRouter}. */
export interface ClusterRouterOptions {
  /**
   * What the connections are for: their CLIENT SETNAME is
   * `redis-stream-sync-<name>`.
   * @default {undefined}
   */
  name?: string;
  /**
   * Up/down bookkeeping: each node's connections report to `health.node(address)`,
   * and the masters of every layout read are told to it.
   * @default {undefined}
   */
  health?: ServerHealth;
  /**
   * Read the layout again this often (ms); 0 = only on hints and demand.
   * @default {0}
   */
  refreshEveryMs?: number;
}

/** Routes commands to the masters of a cluster; see the module doc. */
export class ClusterRouter {
  readonly #seed: Endpoint;
  #options: ClusterRouterOptions;
  readonly #connections = new Map<string, RedisConnection>();
  #map: SlotMap | undefined;
  #refreshing: Promise<SlotMap> | undefined;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #hinted: ReturnType<typeof setTimeout> | undefined;
  readonly #listeners: Array<(map: SlotMap) => void> = [];

  /** `seed`: one node of the cluster, and how to talk to every node. */
  constructor(seed: Endpoint, options: ClusterRouterOptions = {}) {
    this.#seed = seed;
    this.#options = options;
    const every = options.refreshEveryMs ?? 0;
    if (every > 0) {
      this.#timer = setInterval(() => this.refresh().catch(() => {}), every);
    }
  }

  /** The layout, read once (and again after {@linkcode ClusterRouter.refresh}). */
  async layout(): Promise<SlotMap> {
    return this.#map ?? await this.refresh();
  }

  /** `source cluster "host:port"` (the seed), for messages. */
  get where(): string {
    return `${this.#seed.role} cluster "${nodeAddress(this.#seed)}"`;
  }

  /** Names the connections `redis-stream-sync-<name>`, those open now and those to come. */
  async rename(name: string): Promise<void> {
    this.#options = { ...this.#options, name };
    await Promise.all([...this.#connections.values()].map((c) => c.rename(name)));
  }

  /** The layout last read; undefined before the first read. */
  get current(): SlotMap | undefined {
    return this.#map;
  }

  /** The master of `key`'s slot in the layout last read (undefined before the first read). */
  masterOf(key: RedisArg): ClusterNode | undefined {
    return this.#map?.masterOf(slotOf(key));
  }

  /** Calls `listener` with the new layout whenever it changes (the first one read included). */
  onChange(listener: (map: SlotMap) => void): void {
    this.#listeners.push(listener);
  }

  /** Something hints that the layout changed: it is read again soon (once for many hints). */
  hint(): void {
    if (this.#closed || this.#hinted !== undefined) return;
    this.#hinted = setTimeout(() => {
      this.refresh().catch(() => {}).finally(() => (this.#hinted = undefined));
    }, HINT_DELAY_MS);
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
      conn = new RedisConnection({ ...this.#seed, host: node.host, port: node.port }, {
        ...(this.#options.name ? { name: this.#options.name } : {}),
        health: this.#options.health?.node(address),
        onLayoutHint: () => this.hint(),
      });
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
  async send(
    key: RedisArg,
    args: readonly RedisArg[],
    options: SendOptions = {},
  ): Promise<unknown> {
    const slot = slotOf(key);
    let node: { host: string; port: number } | undefined = (await this.layout()).masterOf(slot);
    let asking = false;
    for (let hop = 0;; hop++) {
      if (!node) node = (await this.refresh()).masterOf(slot);
      if (!node) {
        throw new ConnectError(`No node of the ${this.#seed.role} cluster serves slot ${slot}`);
      }
      const conn = this.connectionTo(node);
      try {
        if (!asking) return await conn.send(undefined, args, options);
        const [, reply] = await conn.pipeline(undefined, [["ASKING"], args], options);
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
    clearInterval(this.#timer);
    clearTimeout(this.#hinted);
    for (const conn of this.#connections.values()) conn.close();
    this.#connections.clear();
  }

  async #read(): Promise<SlotMap> {
    const candidates: ClusterNode[] = [
      ...(this.#map?.nodes() ?? []),
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
        // The first layout counts as a change too (from none).
        const changed = this.#map === undefined || this.#map.signature() !== map.signature();
        this.#map = map;
        this.#options.health?.setMasters(map.masters().map(nodeAddress));
        this.#forgetGone(map);
        if (changed) { for (const listener of this.#listeners) listener(map); }
        return map;
      } catch (error) {
        // Credentials or TLS refused: no other node will take them either (exit 78, not 69).
        if (this.#closed || error instanceof AuthError || error instanceof TlsError) throw error;
        const message = error instanceof RedisReplyError ? error.message : (error as Error).message;
        failures.push(`${nodeAddress(node)}: ${message}`);
      }
    }
    throw new ConnectError(
      `No node of the ${this.#seed.role} cluster gave its layout: ${failures.join("; ")}`,
    );
  }

  /** Connections to nodes the layout no longer names are closed (the seed's is kept). */
  #forgetGone(map: SlotMap): void {
    const keep = new Set(map.nodes().map(nodeAddress));
    keep.add(nodeAddress(this.#seed));
    for (const [address, conn] of this.#connections) {
      if (keep.has(address)) continue;
      conn.close();
      this.#connections.delete(address);
    }
  }
}

const encoder = new TextEncoder();

function slotOf(key: RedisArg): number {
  return clusterSlot(typeof key === "string" ? encoder.encode(key) : key);
}
