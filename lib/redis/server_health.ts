/**
 * Up/down bookkeeping for one Redis server, shared by all its connections:
 * an outage is logged once when it starts and once when it ends (with how
 * long it lasted), not once per failed command.
 *
 * @module
 */
import { errorMessage } from "../errors.ts";
import { getLog } from "../log.ts";

const log = getLog("connection");

/** A snapshot of one server's health, for status and metrics. */
export interface ServerHealthStatus {
  /** "source" or "target". */
  role: string;
  /** `host:port`. */
  address: string;
  /** Whether the last connection attempt or command succeeded. */
  up: boolean;
  /** Connections (re)opened after a failure. */
  reconnects: number;
  /** Outages seen so far. */
  outages: number;
  /** The last failure's message. */
  lastError?: string;
  /** A cluster's nodes, each with its own health (absent on one server). */
  nodes?: ServerHealthStatus[];
}

/** Shared health of one server. */
export class ServerHealth {
  #role: string;
  #address: string;
  #up = true;
  #downSince = 0;
  #reconnects = 0;
  #outages = 0;
  #lastError: string | undefined;
  #lastRepeat = 0;
  /** A cluster's nodes by address; the masters now, whose health is the cluster's. */
  readonly #nodes = new Map<string, ServerHealth>();
  #masters: ReadonlySet<string> = new Set();

  constructor(role: string, address: string) {
    this.#role = role;
    this.#address = address;
  }

  /** The health of a cluster's node at `address` (made once); it logs under its own address. */
  node(address: string): ServerHealth {
    let health = this.#nodes.get(address);
    if (!health) {
      health = new ServerHealth(this.#role, address);
      this.#nodes.set(address, health);
    }
    return health;
  }

  /** A cluster's masters now: the cluster is up when each of them is (the others do not count). */
  setMasters(addresses: readonly string[]): void {
    this.#masters = new Set(addresses);
  }

  /** A connection opened; `reconnect` when it replaces one that failed. */
  reportUp(reconnect = false): void {
    if (reconnect) this.#reconnects++;
    if (this.#up) return;
    this.#up = true;
    const seconds = ((Date.now() - this.#downSince) / 1000).toFixed(1);
    log.info("Connection to {role} {address} restored after {seconds} s", {
      role: this.#role,
      address: this.#address,
      seconds,
    });
  }

  /** A connection failed or a command found the server gone. */
  reportDown(error: unknown): void {
    const message = errorMessage(error);
    this.#lastError = message;
    if (this.#up) {
      this.#up = false;
      this.#outages++;
      this.#downSince = Date.now();
      this.#lastRepeat = Date.now();
      log.warning("{error}; retrying with backoff", {
        role: this.#role,
        address: this.#address,
        error: message,
      });
    } else if (Date.now() - this.#lastRepeat >= 60_000) {
      this.#lastRepeat = Date.now();
      const seconds = ((Date.now() - this.#downSince) / 1000).toFixed(0);
      log.warning("The {role} server {address} is still unavailable after {seconds} s: {error}", {
        role: this.#role,
        address: this.#address,
        seconds,
        error: message,
      });
    }
  }

  /**
   * Outages and reconnects of the server so far (a cluster: of any of its
   * nodes): it changes as soon as a connection is lost, and again when one
   * is opened anew, so a change means the server may have restarted or
   * failed over since.
   */
  get generation(): number {
    let n = this.#reconnects + this.#outages;
    for (const node of this.#nodes.values()) n += node.generation;
    return n;
  }

  /** Whether the server is taken as up (a cluster: each of its masters). */
  get up(): boolean {
    if (this.#nodes.size === 0) return this.#up;
    for (const [address, node] of this.#nodes) {
      if (this.#masters.has(address) && !node.up) return false;
    }
    return this.#up;
  }

  /** A snapshot for status and metrics (a cluster's: the sums of its nodes, and each node). */
  status(): ServerHealthStatus {
    const own = {
      role: this.#role,
      address: this.#address,
      up: this.up,
      reconnects: this.#reconnects,
      outages: this.#outages,
      lastError: this.#lastError,
    };
    if (this.#nodes.size === 0) return own;
    const nodes = [...this.#nodes.values()].map((n) => n.status());
    for (const n of nodes) {
      own.reconnects += n.reconnects;
      own.outages += n.outages;
      if (!n.up) own.lastError = n.lastError;
    }
    return { ...own, nodes };
  }
}
