/**
 * A local Redis Cluster for tests: three masters and three replicas
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster
 * create ... --cluster-replicas 1`), on free loopback ports, each node a
 * {@linkcode RedisServer} in its own directory. `await using` it.
 *
 * @module
 */
import { waitFor } from "./_cli.ts";
import { connect, RedisServer } from "./_redis.ts";

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
