/**
 * The layout of a Redis Cluster as one node reports it (`CLUSTER SLOTS`):
 * which master serves each of the 16,384 hash slots, and its replicas; and
 * what a MOVED or ASK redirection says. The base of a cluster client; it
 * holds no connection.
 *
 * @module
 */
import { RedisReplyError } from "../errors.ts";
import type { RespValue } from "./resp_parser.ts";
import { CLUSTER_SLOTS } from "./key_slot.ts";

/** One node of the cluster. */
export interface ClusterNode {
  /** The address clients use (the one the node announces, or the address asked when it announces none). */
  readonly host: string;
  readonly port: number;
  /** The node's ID (40 hex characters); "" when the server did not report it. */
  readonly id: string;
}

/** A range of slots and the nodes that serve it. */
export interface SlotRange {
  readonly start: number;
  readonly end: number;
  readonly master: ClusterNode;
  readonly replicas: readonly ClusterNode[];
}

/** Which master serves each slot. */
export class SlotMap {
  readonly ranges: readonly SlotRange[];
  readonly #bySlot: (ClusterNode | undefined)[];

  constructor(ranges: readonly SlotRange[]) {
    this.ranges = [...ranges].sort((a, b) => a.start - b.start);
    this.#bySlot = new Array(CLUSTER_SLOTS);
    for (const r of this.ranges) {
      for (let slot = r.start; slot <= r.end; slot++) this.#bySlot[slot] = r.master;
    }
  }

  /** The master of `slot`; undefined when no node serves it (the cluster is not ok). */
  masterOf(slot: number): ClusterNode | undefined {
    return this.#bySlot[slot];
  }

  /** Each master once, in the order of their first slot. */
  masters(): ClusterNode[] {
    const seen = new Map<string, ClusterNode>();
    for (const r of this.ranges) seen.set(nodeAddress(r.master), r.master);
    return [...seen.values()];
  }

  /** Every node named, masters first, each once. */
  nodes(): ClusterNode[] {
    const seen = new Map<string, ClusterNode>();
    for (const r of this.ranges) seen.set(nodeAddress(r.master), r.master);
    for (const r of this.ranges) for (const n of r.replicas) seen.set(nodeAddress(n), n);
    return [...seen.values()];
  }

  /** The slot ranges and their masters, as text: equal for equal layouts. */
  signature(): string {
    return this.ranges.map((r) => `${r.start}-${r.end}@${nodeAddress(r.master)}`).join(",");
  }

  /** Slots no node serves (0 in a healthy cluster). */
  unassigned(): number {
    let count = 0;
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) if (this.#bySlot[slot] === undefined) count++;
    return count;
  }
}

/** `host:port` of a node (`[v6]:port` for IPv6), a key for maps and messages. */
export function nodeAddress(node: { host: string; port: number }): string {
  return node.host.includes(":") ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`;
}

/**
 * The ranges of a `CLUSTER SLOTS` reply. `askedHost` is the address the
 * command was sent to: a node that announces no address (an empty host)
 * is reached at that one, as the Redis documentation says.
 *
 * @throws {Error} when the reply does not have the shape of `CLUSTER SLOTS`.
 */
export function parseClusterSlots(reply: unknown, askedHost: string): SlotRange[] {
  if (!Array.isArray(reply)) throw new Error(`CLUSTER SLOTS replied ${describe(reply)}`);
  return reply.map((item) => {
    if (!Array.isArray(item) || item.length < 3) {
      throw new Error(`CLUSTER SLOTS has a malformed range: ${describe(item)}`);
    }
    const start = Number(item[0]);
    const end = Number(item[1]);
    if (
      !(Number.isInteger(start) && Number.isInteger(end) && start <= end && end < CLUSTER_SLOTS)
    ) {
      throw new Error(`CLUSTER SLOTS has a malformed range: ${describe(item)}`);
    }
    const [master, ...replicas] = item.slice(2).map((n) => parseNode(n, askedHost));
    return { start, end, master, replicas };
  });
}

function parseNode(value: RespValue, askedHost: string): ClusterNode {
  if (!Array.isArray(value) || value.length < 2) {
    throw new Error(`CLUSTER SLOTS has a malformed node: ${describe(value)}`);
  }
  const host = text(value[0]);
  const port = Number(value[1]);
  if (!Number.isInteger(port)) {
    throw new Error(`CLUSTER SLOTS has a malformed node: ${describe(value)}`);
  }
  return {
    host: host === "" || host === "?" ? askedHost : host,
    port,
    id: value[2] === undefined ? "" : text(value[2]),
  };
}

/** What a MOVED or ASK error reply says. */
export interface Redirection {
  kind: "MOVED" | "ASK";
  slot: number;
  host: string;
  port: number;
}

/**
 * The redirection of `-MOVED 3999 127.0.0.1:6381` or `-ASK 3999
 * 127.0.0.1:6381` (an empty host: the node asked); undefined for any other
 * reply.
 */
export function redirection(reply: unknown, askedHost: string): Redirection | undefined {
  if (!(reply instanceof RedisReplyError) || (reply.code !== "MOVED" && reply.code !== "ASK")) {
    return undefined;
  }
  const match = /^(MOVED|ASK) (\d+) (.*):(\d+)$/.exec(reply.message.trim());
  if (!match) return undefined;
  const host = match[3].replace(/^\[(.*)\]$/, "$1");
  return {
    kind: match[1] as "MOVED" | "ASK",
    slot: Number(match[2]),
    host: host === "" ? askedHost : host,
    port: Number(match[4]),
  };
}

function text(value: RespValue): string {
  return value instanceof Uint8Array ? new TextDecoder().decode(value) : String(value);
}

function describe(value: unknown): string {
  const shown = JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? text(v) : v));
  return shown === undefined ? String(value) : shown.slice(0, 200);
}
