/**
 * A {@linkcode RedisClient} over a whole Redis Cluster: each command goes to
 * the master of its key's slot (commands without a key to the master of
 * slot 0, the same node for every instance); a pipeline is split into one
 * pipeline per node, sent together, and its outcomes put back in order.
 * A redirection inside a pipeline is an error reply in its place (retried
 * by the caller; the router reads the layout again meanwhile), and so is
 * the failure of one master's connection (the other masters' replies stand);
 * a single command follows a redirection at once.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";
import type { RedisClient } from "./client.ts";
import { commandKey } from "./client.ts";
import { nodeAddress } from "./cluster_slots.ts";
import type { ClusterRouter } from "./cluster_router.ts";
import type { RedisConnection } from "./connection.ts";
import type { SendOptions } from "./connection_options.ts";
import type { RedisArg } from "./resp_writer.ts";

/** Routes each command to the master of its key's slot; see the module doc. */
export class ClusterClient implements RedisClient {
  readonly cluster = true;
  readonly #router: ClusterRouter;

  constructor(router: ClusterRouter) {
    this.#router = router;
  }

  get where(): string {
    return this.#router.where;
  }

  /**
   * The connection to the master of `key`'s slot, in the layout last read
   * (for pipelines the caller grouped by {@linkcode ClusterClient.nodeOf}).
   *
   * @throws {ConnectError} before the layout was first read.
   */
  connectionFor(key: RedisArg | undefined): RedisConnection {
    const map = this.#router.current;
    const node = key === undefined ? map?.masterOf(0) : this.#router.masterOf(key);
    if (!node) throw new ConnectError(`The layout of ${this.where} is not known yet`);
    return this.#router.connectionTo(node);
  }

  /** The connection to each master, the layout read again first (discovery after a change). */
  async masters(): Promise<RedisConnection[]> {
    return (await this.#router.refresh()).masters().map((m) => this.#router.connectionTo(m));
  }

  /** `host:port` of the master of `key`'s slot, in the layout last read ("" before the first read). */
  nodeOf(key: RedisArg): string {
    const node = this.#router.masterOf(key);
    return node ? nodeAddress(node) : "";
  }

  async send(
    _db: number | undefined,
    args: readonly RedisArg[],
    options: SendOptions = {},
  ): Promise<unknown> {
    await this.#router.layout();
    const key = commandKey(args);
    if (key === undefined) {
      return await this.connectionFor(undefined).send(undefined, args, options);
    }
    return await this.#router.send(key, args, options);
  }

  async pipeline(
    _db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    if (commands.length === 0) return [];
    await this.#router.layout();
    const byNode = new Map<RedisConnection, number[]>();
    commands.forEach((args, i) => {
      const conn = this.connectionFor(commandKey(args));
      const list = byNode.get(conn);
      if (list) list.push(i);
      else byNode.set(conn, [i]);
    });
    const outcomes = new Array<PromiseSettledResult<unknown>>(commands.length);
    const sent = await Promise.allSettled(
      [...byNode].map(async ([conn, positions]) => {
        try {
          const replies = await conn.pipeline(
            undefined,
            positions.map((i) => commands[i]),
            options,
          );
          positions.forEach((at, j) => (outcomes[at] = replies[j]));
        } catch (error) {
          // A master that failed fails its own commands only (the others' outcomes stand).
          for (const at of positions) outcomes[at] = { status: "rejected", reason: error };
          throw error;
        }
      }),
    );
    // As on one connection when no master answered: the call fails.
    if (sent.every((s) => s.status === "rejected")) throw (sent[0] as PromiseRejectedResult).reason;
    return outcomes;
  }

  async transaction(
    _db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    await this.#router.layout();
    const key = commands.map(commandKey).find((k) => k !== undefined);
    return await this.connectionFor(key).transaction(undefined, commands, options);
  }

  async rename(name: string): Promise<void> {
    await this.#router.rename(name);
  }

  close(): void {
    this.#router.close();
  }
}
