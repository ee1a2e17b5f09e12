/**
 * A local Redis Cluster for tests: three masters and three replicas
 * (`redis-server --cluster-enabled yes`), on free loopback ports, each node
 * a {@linkcode RedisServer} in its own directory, joined as `redis-cli
 * --cluster create ... --cluster-replicas 1` joins them (slots split
 * evenly, a config epoch per master, CLUSTER MEET, CLUSTER REPLICATE), only
 * without its one-second polls, and with every pair of nodes meeting
 * directly rather than through gossip. `await using` it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { waitFor } from "./cli.ts";
import { connect, freePort, type RedisArg, RedisServer, type TestClient } from "./redis.ts";
import type { TestCertificates } from "./tls.ts";
import type { Entries } from "./redis.ts";

/** The arguments of every node. */
const NODE_ARGS = [
  "--cluster-enabled",
  "yes",
  "--cluster-config-file",
  "nodes.conf",
  "--cluster-node-timeout",
  "2000",
  // A replica's first sync at once (not 5 s later, waiting for more replicas).
  "--repl-diskless-sync-delay",
  "0",
  // CLUSTER SLOTS lists a replica once its offset moved: the master pings it every second.
  "--repl-ping-replica-period",
  "1",
];

/** A running cluster. */
export interface TestCluster extends AsyncDisposable {
  /** Every node, masters first (as created: nodes 0-2 masters, 3-5 their replicas). */
  nodes: RedisServer[];
  /** `127.0.0.1:port` of the first node: a seed address. */
  seed: { host: string; port: number };
  /** With `tls`: each node's TLS port (same order as `nodes`); `nodes[i].port` stays plain. */
  tlsPorts?: number[];
}

/** Options for {@linkcode startCluster}. */
export interface StartClusterOptions {
  /**
   * Masters (each with one replica).
   * @default {3}
   */
  masters?: number;
  /**
   * Every node's `requirepass` and `masterauth`.
   * @default {no password}
   */
  password?: string;
  /**
   * Certificates: every node also listens with TLS, and speaks TLS on the
   * cluster bus and for replication (`tls-cluster`, `tls-replication`).
   * @default {plain TCP only}
   */
  tls?: TestCertificates;
}

/**
 * Makes `nodes` one cluster: the first `masters` share the slots evenly,
 * each of the others replicates one of them.
 */
async function joinNodes(
  nodes: RedisServer[],
  options: { masters: number; password?: string; busPorts?: number[] },
): Promise<void> {
  const { masters, password } = options;
  // The port MEET names: the bus listens 10000 above it (the TLS port with tls-cluster).
  const meetPort = (i: number) => options.busPorts?.[i] ?? nodes[i].port;
  const auth = password === undefined ? {} : { password };
  const ids: string[] = [];
  for (const node of nodes) {
    await using c = await connect(node, auth);
    ids.push(String(await c.send(["CLUSTER", "MYID"])));
  }
  const per = Math.ceil(16384 / masters);
  for (let i = 0; i < masters; i++) {
    await using c = await connect(nodes[i], auth);
    const from = i * per;
    const to = Math.min(16383, from + per - 1);
    await c.send(["CLUSTER", "ADDSLOTSRANGE", String(from), String(to)]);
    await c.send(["CLUSTER", "SET-CONFIG-EPOCH", String(i + 1)]);
  }
  // Every pair meets directly (node i meets every node before it), instead of the first node
  // meeting all and the others learning of each other by gossip, a ping a second.
  for (let i = 1; i < nodes.length; i++) {
    await using c = await connect(nodes[i], auth);
    for (let j = 0; j < i; j++) {
      await c.send(["CLUSTER", "MEET", "127.0.0.1", String(meetPort(j))]);
    }
  }
  await waitFor(async () => {
    for (const node of nodes) {
      await using c = await connect(node, auth);
      const lines = String(await c.send(["CLUSTER", "NODES"])).trim().split("\n");
      if (lines.length !== nodes.length || lines.some((l) => /handshake|noaddr/.test(l))) {
        return false;
      }
    }
    return true;
  }, { timeoutMs: 30_000, message: "every node knowing every other" });
  for (let i = masters; i < nodes.length; i++) {
    await using c = await connect(nodes[i], auth);
    await c.send(["CLUSTER", "REPLICATE", ids[(i - masters) % masters]]);
  }
}

/** Starts the nodes, creates the cluster, and waits until every node says `cluster_state:ok`. */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const masters = options.masters ?? 3;
  const password = options.password;
  const auth = password === undefined ? [] : ["--requirepass", password, "--masterauth", password];
  const tlsPorts: number[] = [];
  const tlsArgs = (i: number): string[] => {
    const certs = options.tls;
    if (!certs) return [];
    // The cluster bus listens 10000 above the TLS port: the port must leave room for it.
    do tlsPorts[i] = freePort(); while (tlsPorts[i] > 55_000);
    return [
      "--tls-port",
      String(tlsPorts[i]),
      "--tls-cert-file",
      certs.serverCert,
      "--tls-key-file",
      certs.serverKey,
      // Nodes connect to each other (bus, replication) with a client certificate.
      "--tls-client-cert-file",
      certs.clientCert,
      "--tls-client-key-file",
      certs.clientKey,
      "--tls-ca-cert-file",
      certs.ca,
      "--tls-auth-clients",
      "optional",
      "--tls-cluster",
      "yes",
      "--tls-replication",
      "yes",
    ];
  };
  const nodes: RedisServer[] = [];
  const dispose = async () => {
    for (const node of nodes) await node[Symbol.asyncDispose]();
  };
  try {
    // Started at the same time; nodes[i] is the i-th whatever the order they come up in.
    const args = Array.from(
      { length: masters * 2 },
      (_, i) => [...NODE_ARGS, ...auth, ...tlsArgs(i)],
    );
    const started = await Promise.allSettled(args.map((a) => RedisServer.start({ args: a })));
    for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    await joinNodes(nodes, { masters, password, ...(options.tls ? { busPorts: tlsPorts } : {}) });
    await waitFor(async () => {
      for (const node of nodes) {
        await using c = await connect(node, password === undefined ? {} : { password });
        const info = String(await c.send(["CLUSTER", "INFO"]));
        if (!/cluster_state:ok/.test(info)) return false;
        // Every replica attached: the layout each node reports is complete.
        const slots = await c.send(["CLUSTER", "SLOTS"]) as unknown[][];
        if (slots.length !== masters || slots.some((range) => range.length < 4)) return false;
      }
      return true;
    }, { timeoutMs: 30_000, message: "the cluster ready on every node, with its replicas" });
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    nodes,
    seed: { host: "127.0.0.1", port: nodes[0].port },
    ...(options.tls ? { tlsPorts } : {}),
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * Starts `count` clusters (see {@linkcode startCluster}) at the same time;
 * when one fails, the others are stopped.
 */
export async function startClusters(
  count: number,
  options: StartClusterOptions = {},
): Promise<TestCluster[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startCluster(options)),
  );
  const clusters = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    for (const cluster of clusters) await cluster[Symbol.asyncDispose]();
    throw failed.reason;
  }
  return clusters;
}

/**
 * A test's own client of a cluster (independent of the tool's router): a
 * command goes to the node that the last MOVED named for its slot, or the
 * seed, and follows MOVED and ASK replies.
 */
export class ClusterTestClient implements AsyncDisposable {
  readonly #seed: { host: string; port: number };
  readonly #password: string | undefined;
  readonly #ports: number[];
  readonly #clients = new Map<number, TestClient>();
  readonly #bySlot = new Map<number, number>();
  readonly #slots = new Map<string, number>();

  /** `options.ports`: every node, tried in turn when one cannot be reached (a killed master). */
  constructor(
    seed: { host: string; port: number },
    options: { password?: string; ports?: number[] } = {},
  ) {
    this.#seed = seed;
    this.#password = options.password;
    this.#ports = options.ports ?? [seed.port];
  }

  /** Sends `args` (whose key is `key`) to the node serving `key`. */
  send(key: RedisArg, args: readonly RedisArg[]): Promise<unknown> {
    return this.#route(key, (c) => c.send(args));
  }

  /** As {@linkcode ClusterTestClient.send}, with bulk strings as bytes. */
  sendBuffers(key: RedisArg, args: readonly RedisArg[]): Promise<unknown> {
    return this.#route(key, (c) => c.sendBuffers(args));
  }

  /** Every entry of the stream at `key` (see `TestClient.xrangeAll`). */
  xrangeAll(key: RedisArg): Promise<Entries> {
    return this.#route(key, (c) => c.xrangeAll(key));
  }

  /** XADD `key` `*` with `fields`; returns the new ID. */
  async xadd(key: RedisArg, fields: Record<string, string>): Promise<string> {
    return String(await this.send(key, ["XADD", key, "*", ...Object.entries(fields).flat()]));
  }

  async #route<T>(key: RedisArg, run: (c: TestClient) => Promise<T>): Promise<T> {
    const slot = await this.#slotOf(key);
    let port = this.#bySlot.get(slot) ?? this.#seed.port;
    let asking = false;
    for (let hop = 0;; hop++) {
      let c: TestClient;
      try {
        c = await this.#client(port);
      } catch (error) {
        // Gone (killed): ask another node, which redirects to the slot's master now.
        this.#bySlot.delete(slot);
        if (hop > this.#ports.length + 5) throw error;
        port = this.#ports[(this.#ports.indexOf(port) + 1) % this.#ports.length];
        continue;
      }
      try {
        if (asking) await c.send(["ASKING"]);
        return await run(c);
      } catch (error) {
        const m = /^(MOVED|ASK) \d+ [^:]+:(\d+)/.exec(String((error as Error).message));
        if (!m || hop > 5) throw error;
        port = Number(m[2]);
        asking = m[1] === "ASK";
        if (!asking) this.#bySlot.set(slot, port);
      }
    }
  }

  /** CLUSTER KEYSLOT `key`, asked once per (text) key: a key's slot never changes. */
  async #slotOf(key: RedisArg): Promise<number> {
    const known = typeof key === "string" ? this.#slots.get(key) : undefined;
    if (known !== undefined) return known;
    const slot = Number(await this.#anyNode((c) => c.send(["CLUSTER", "KEYSLOT", key])));
    if (typeof key === "string") this.#slots.set(key, slot);
    return slot;
  }

  async #anyNode<T>(run: (c: TestClient) => Promise<T>): Promise<T> {
    let failure: unknown;
    for (const port of [this.#seed.port, ...this.#ports]) {
      try {
        return await run(await this.#client(port));
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }

  async #client(port: number): Promise<TestClient> {
    let c = this.#clients.get(port);
    if (!c || !c.isOpen) {
      c = await connect(
        { host: this.#seed.host, port },
        this.#password === undefined ? {} : { password: this.#password },
      );
      this.#clients.set(port, c);
    }
    return c;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const c of this.#clients.values()) await c.close();
    this.#clients.clear();
  }
}

/** A master and its replica, as `CLUSTER NODES` on a live node says now. */
export interface MasterPair {
  master: RedisServer;
  /** Undefined for a master without a live replica. */
  replica?: RedisServer;
}

/** The master that serves `key` now, and its replica. */
export async function masterOf(cluster: TestCluster, key: RedisArg): Promise<MasterPair> {
  const live = cluster.nodes.find((n) => n.running)!;
  await using c = await connect(live);
  const slot = Number(await c.send(["CLUSTER", "KEYSLOT", key]));
  const lines = String(await c.send(["CLUSTER", "NODES"])).trim().split("\n").map((l) =>
    l.split(" ")
  );
  const byPort = (field: string) =>
    cluster.nodes.find((n) => n.port === Number(/:(\d+)@/.exec(field)?.[1]))!;
  for (const f of lines) {
    if (!f[2].includes("master") || f[2].includes("fail")) continue;
    const owns = f.slice(8).some((range) => {
      const [a, b = a] = range.split("-").map(Number);
      return a <= slot && slot <= b;
    });
    if (!owns) continue;
    const replica = lines.find((r) => r[3] === f[0] && !r[2].includes("fail"));
    return { master: byPort(f[1]), ...(replica ? { replica: byPort(replica[1]) } : {}) };
  }
  throw new Error(`no master serves slot ${slot}`);
}

/** Waits until `node` is a master and every live node's layout says so (the cluster ok). */
export async function waitPromoted(cluster: TestCluster, node: RedisServer): Promise<void> {
  await waitFor(async () => {
    for (const n of cluster.nodes.filter((x) => x.running)) {
      await using c = await connect(n);
      if (!/cluster_state:ok/.test(String(await c.send(["CLUSTER", "INFO"])))) return false;
      const slots = await c.send(["CLUSTER", "SLOTS"]) as unknown[][];
      if (!slots.some((r) => Number((r[2] as unknown[])[1]) === node.port)) return false;
    }
    return true;
  }, { timeoutMs: 60_000, message: `node ${node.port} promoted, on every node's layout` });
}

/** `CLUSTER FAILOVER` on `pair.replica` (after the master's writes reached it); waits for it. */
export async function clusterFailover(cluster: TestCluster, pair: MasterPair): Promise<void> {
  assert.ok(pair.replica, "the master has no live replica");
  await using r = await connect(pair.replica);
  assert.equal(await r.send(["CLUSTER", "FAILOVER"]), "OK");
  await waitPromoted(cluster, pair.replica);
}

/**
 * SIGKILLs `pair.master` and waits until the cluster promoted its replica;
 * with `rejoin`, starts the killed node again and waits until it serves the
 * new master as its replica.
 */
export async function killMaster(
  cluster: TestCluster,
  pair: MasterPair,
  options: { rejoin?: boolean } = {},
): Promise<void> {
  const replica = pair.replica;
  assert.ok(replica, "the master has no live replica");
  await pair.master.kill();
  await waitPromoted(cluster, replica);
  if (!options.rejoin) return;
  await pair.master.start();
  await waitFor(async () => {
    await using m = await connect(replica);
    return /connected_slaves:[1-9]/.test(String(await m.send(["INFO", "replication"])));
  }, { timeoutMs: 60_000, message: `node ${pair.master.port} back as a replica` });
}

/**
 * Moves `slot` from the node that serves it to `to`, key by key, as
 * `redis-cli --cluster reshard` does: SETSLOT IMPORTING / MIGRATING, MIGRATE
 * in batches of `batch` keys (pausing `pauseMs` between them, so that the
 * slot stays half moved for a while), then SETSLOT NODE on every master.
 */
export async function migrateSlot(
  cluster: TestCluster,
  slot: number,
  to: RedisServer,
  options: { batch?: number; pauseMs?: number } = {},
): Promise<void> {
  const { batch = 1, pauseMs = 0 } = options;
  await using dst = await connect(to);
  const sample = String(await dst.send(["CLUSTER", "NODES"])).trim().split("\n").map((l) =>
    l.split(" ")
  );
  const id = (node: RedisServer) => sample.find((f) => f[1].includes(`:${node.port}@`))![0];
  const owner = sample.find((f) =>
    f[2].includes("master") && f.slice(8).some((range) => {
      const [a, b = a] = range.split("-").map(Number);
      return a <= slot && slot <= b;
    })
  )!;
  const from = cluster.nodes.find((n) => owner[1].includes(`:${n.port}@`))!;
  await using src = await connect(from);
  await dst.send(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", id(from)]);
  await src.send(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", id(to)]);
  for (;;) {
    const keys = await src.send([
      "CLUSTER",
      "GETKEYSINSLOT",
      String(slot),
      String(batch),
    ]) as string[];
    if (keys.length === 0) break;
    await src.send(["MIGRATE", "127.0.0.1", String(to.port), "", "0", "10000", "KEYS", ...keys]);
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  for (const node of cluster.nodes.filter((n) => n.running)) {
    await using c = await connect(node);
    const role = String(await c.send(["ROLE"]).then((r) => (r as unknown[])[0]));
    if (role === "master") await c.send(["CLUSTER", "SETSLOT", String(slot), "NODE", id(to)]);
  }
}

/** Starts one more node, joins it to the cluster (CLUSTER MEET) as a master without slots. */
export async function addMaster(cluster: TestCluster): Promise<RedisServer> {
  const node = await RedisServer.start({ args: NODE_ARGS });
  cluster.nodes.push(node); // disposed with the others
  // Every running node meets it (rather than one, the others learning of it by gossip).
  for (const n of cluster.nodes.filter((x) => x.running && x !== node)) {
    await using c = await connect(n);
    await c.send(["CLUSTER", "MEET", "127.0.0.1", String(node.port)]);
  }
  await waitFor(async () => {
    for (const n of cluster.nodes.filter((x) => x.running)) {
      await using c = await connect(n);
      const known = String(await c.send(["CLUSTER", "NODES"])).trim().split("\n");
      if (known.length !== cluster.nodes.filter((x) => x.running).length) return false;
      if (known.some((l) => /handshake|noaddr/.test(l))) return false;
      if (!/cluster_state:ok/.test(String(await c.send(["CLUSTER", "INFO"])))) return false;
    }
    return true;
  }, { timeoutMs: 30_000, message: `node ${node.port} known to every node, the cluster ok` });
  return node;
}
