/**
 * The instances that share the streams of one consumer group: a hash on
 * the source (`redis-stream-sync:instances:<group>`) where each live
 * instance renews its entry every third of STREAM_LEASE_TTL. It gives each
 * instance a distinct name (INSTANCE_ID, or the host name and the lowest
 * free number) and every instance the list of the live ones, over which the
 * streams are spread.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import type { RedisClient } from "../../redis/mod.ts";
import { sleep } from "../../backoff.ts";
import { InstanceConflictError } from "../../errors.ts";
import { REGISTER, UNREGISTER } from "./_lease_scripts.ts";

const log = getLog("leases");

/**
 * How long the id of an instance that stopped renewing is not given to a
 * new process (at least 10 TTLs): if the old one was only paused, it finds
 * its id still free when it comes back.
 */
const ID_KEPT_MS = 10 * 60_000;

/** Every registry key starts with this. */
/** This instance among those sharing the streams (with leases). */
export interface InstanceStatus {
  /** Its id (INSTANCE_ID or `<host>-<n>`). */
  id: string;
  /** Its consumer name in the group. */
  consumer: string;
  /** The live instances at the last lease tick, this one included. */
  live: string[];
  /** Leases it holds. */
  leases: number;
}

export const INSTANCES_KEY_PREFIX = "redis-stream-sync:instances:";

/** Who this instance is, once registered. */
export interface InstanceIdentity {
  /** Its name among the instances (INSTANCE_ID or `<host>-<n>`). */
  id: string;
  /** Its consumer name in the group: STREAM_CONSUMER_NAME-<id>. */
  consumer: string;
  /** What its leases hold: `<id>/<random token of this process>`. */
  leaseValue: string;
}

/** Options of {@linkcode InstanceRegistry}. */
export interface InstanceRegistryOptions {
  /** The consumer group the instances share. */
  group: string;
  /** The source DB of the registry (SOURCE_REDIS_DB). */
  db: number;
  /** STREAM_LEASE_TTL in milliseconds. */
  ttlMs: number;
  /** INSTANCE_ID; "" to choose `<host>-<n>`. */
  instanceId: string;
  /** STREAM_CONSUMER_NAME. */
  consumerName: string;
  /**
   * The host name for automatic ids.
   * @default {Deno.hostname()}
   */
  hostname?: string;
  /**
   * `run --once`: registered for its name, not listed among the instances
   * that share the streams.
   * @default {false}
   */
  passive?: boolean;
}

/** The registry key of `group`. */
export function instancesKey(group: string): string {
  return `${INSTANCES_KEY_PREFIX}${new TextEncoder().encode(group).length}:${group}`;
}

/** This instance's entry in the registry of the instances of its group. */
export class InstanceRegistry {
  readonly #conn: RedisClient;
  readonly #o: InstanceRegistryOptions;
  readonly #key: string;
  readonly #token = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  #identity: InstanceIdentity | undefined;
  #live: string[] = [];
  #older: string[] = [];

  constructor(conn: RedisClient, options: InstanceRegistryOptions) {
    this.#conn = conn;
    this.#o = options;
    this.#key = instancesKey(options.group);
  }

  /** Who this instance is (after {@linkcode InstanceRegistry.register}). */
  get identity(): InstanceIdentity {
    if (!this.#identity) throw new Error("The instance is not registered yet");
    return this.#identity;
  }

  /**
   * The live instances of an older version (one lease per stream) at the
   * last registration or heartbeat: their leases and this version's do not
   * exclude each other.
   */
  get older(): readonly string[] {
    return this.#older;
  }

  /** The live instances at the last registration or heartbeat, this one included, sorted. */
  get live(): readonly string[] {
    return this.#live;
  }

  /**
   * Registers this instance. An INSTANCE_ID held by another live instance
   * is waited for (it may be this instance's previous process, killed less
   * than a TTL ago), with a WARNING; an automatic id is never waited for.
   */
  async register(signal: AbortSignal): Promise<InstanceIdentity> {
    let warned = false;
    while (true) {
      // A passive instance (`run --once`) never waits for its INSTANCE_ID: it takes
      // `<INSTANCE_ID or host>-once-<n>`, beside the service that may hold the id.
      const id = await this.#register(this.#o.passive ? "" : this.#o.instanceId);
      if (id !== undefined) {
        this.#identity = {
          id,
          consumer: `${this.#o.consumerName}-${id}`,
          leaseValue: `${id}/${this.#token}`,
        };
        return this.#identity;
      }
      if (!warned) {
        warned = true;
        log.warning(
          "INSTANCE_ID {id} is held by another live instance of group {group}; waiting for it to stop (at most STREAM_LEASE_TTL after it died)",
          { id: this.#o.instanceId, group: this.#o.group },
        );
      }
      await sleep(this.#o.ttlMs / 3, signal);
      if (signal.aborted) throw signal.reason ?? new Error("Stopped");
    }
  }

  /**
   * Renews this instance's entry; returns the live instances. Throws when
   * the entry was taken by another instance with the same id (this one was
   * paused or cut off for longer than the TTL): its leases are gone too.
   */
  async heartbeat(): Promise<readonly string[]> {
    const id = await this.#register(this.identity.id);
    if (id === undefined) {
      throw new InstanceConflictError(
        `Instance id "${this.identity.id}" was taken by another process while this one was paused or cut off for longer than STREAM_LEASE_TTL; stopping (restarted, it registers under a new id)`,
      );
    }
    return this.#live;
  }

  /** Removes this instance's entry (at shutdown: the others take its streams at once). */
  async unregister(): Promise<void> {
    if (!this.#identity) return;
    await this.#conn.send(this.#o.db, [
      "EVAL",
      UNREGISTER,
      "1",
      this.#key,
      this.#identity.id,
      this.#token,
    ]);
  }

  async #register(id: string): Promise<string | undefined> {
    const reply = await this.#conn.send(this.#o.db, [
      "EVAL",
      REGISTER,
      "1",
      this.#key,
      this.#token,
      String(Math.round(this.#o.ttlMs)),
      id,
      this.#o.passive
        ? `${this.#o.instanceId || (this.#o.hostname ?? hostName())}-once`
        : this.#o.hostname ?? hostName(),
      String(Math.max(ID_KEPT_MS, 10 * this.#o.ttlMs)),
      this.#o.passive ? "q" : "b",
    ]);
    const [got, others, older] = Array.isArray(reply) ? reply : [];
    if (typeof got !== "string") return undefined;
    // A passive instance is not among those that share the streams, not even for itself.
    const live = (Array.isArray(others) ? others : []).map(String);
    this.#live = (this.#o.passive ? live : [got, ...live]).sort();
    this.#older = (Array.isArray(older) ? older : []).map(String).filter((o) => o !== got).sort();
    return got;
  }
}

/** The host name, reduced to the characters of an instance id. */
function hostName(): string {
  let name = "host";
  try {
    name = Deno.hostname();
  } catch {
    // No --allow-sys=hostname: a fixed name; the number keeps instances apart.
  }
  return name.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 48) || "host";
}
