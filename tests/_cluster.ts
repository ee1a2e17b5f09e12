/**
 * A local Redis Cluster for tests: three masters and three replicas
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster
 * create ... --cluster-replicas 1`), on free loopback ports, each node a
 * {@linkcode RedisServer} in its own directory. `await using` it.
 *
 * @module
 */
import { waitFor } from "./_cli.ts";
import { connect, type RedisArg, RedisServer, type TestClient } from "./_redis.ts";
import type { Entries } from "./_replication.ts";

/** A running cluster. */
export interface TestCluster extends AsyncDisposable {
  /** Every node, masters first (as created: nodes 0-2 masters, 3-5 their replicas). */
  nodes: RedisServer[];
  /** `127.0.0.1:port` of the first node: a seed address. */
  seed: { host: string; port: number };
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
}

/** Starts the nodes, creates the cluster, and waits until every node says `cluster_state:ok`. */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const masters = options.masters ?? 3;
  const password = options.password;
  const auth = password === undefined ? [] : ["--requirepass", password, "--masterauth", password];
  const nodes: RedisServer[] = [];
  const dispose = async () => {
    for (const node of nodes) await node[Symbol.asyncDispose]();
  };
  try {
    for (let i = 0; i < masters * 2; i++) {
      nodes.push(
        await RedisServer.start({
          args: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            ...auth,
          ],
        }),
      );
    }
    const out = await new Deno.Command("redis-cli", {
      args: [
        ...(password === undefined ? [] : ["-a", password, "--no-auth-warning"]),
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        "1",
        "--cluster-yes",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `redis-cli --cluster create failed:\n${new TextDecoder().decode(out.stdout)}${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
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
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * A test's own client of a cluster (independent of the tool's router): a
 * command goes to the node that the last MOVED named for its slot, or the
 * seed, and follows MOVED and ASK replies.
 */
export class ClusterTestClient implements AsyncDisposable {
  readonly #seed: { host: string; port: number };
  readonly #password: string | undefined;
  readonly #clients = new Map<number, TestClient>();
  readonly #bySlot = new Map<number, number>();

  constructor(seed: { host: string; port: number }, options: { password?: string } = {}) {
    this.#seed = seed;
    this.#password = options.password;
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
    const slot = Number(
      await (await this.#client(this.#seed.port)).send(["CLUSTER", "KEYSLOT", key]),
    );
    let port = this.#bySlot.get(slot) ?? this.#seed.port;
    let asking = false;
    for (let hop = 0;; hop++) {
      const c = await this.#client(port);
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
