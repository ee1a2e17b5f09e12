/**
 * Which instances have a connection to the source now (CLIENT LIST: the
 * `@<id>` of the connection names), so that an instance that died (killed,
 * crashed) drops out at once, not when its registry entry expires.
 * Internal to the sharing folder.
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import { getLog } from "../../log.ts";
import type { RedisClient } from "../../redis/mod.ts";

const log = getLog("leases");

/** Looks which instances are connected; see the module doc. */
export class ConnectedInstances {
  readonly #conn: RedisClient;
  /** Live instances seen without a connection, by id: how many looks in a row. */
  readonly #absent = new Map<string, number>();
  /** The instances with a connection at the last look (undefined: CLIENT LIST refused). */
  #last: Set<string> | undefined;
  #warnedList = false;

  constructor(conn: RedisClient) {
    this.#conn = conn;
  }

  /** The instances with a connection at the last look (undefined: none yet, or refused). */
  get last(): Set<string> | undefined {
    return this.#last;
  }

  /**
   * `live` without the instances that had no connection to the source at
   * two looks in a row (killed: their registry entry outlives them by up to
   * a TTL). So their streams are preferred by, and taken over by, the others
   * at once.
   */
  async withoutGone(live: readonly string[], me: string): Promise<string[]> {
    const connected = await this.look();
    this.#last = connected;
    if (!connected) return [...live];
    for (const id of [...this.#absent.keys()]) if (!live.includes(id)) this.#absent.delete(id);
    for (const id of live) {
      if (id === me || connected.has(id)) this.#absent.delete(id);
      else this.#absent.set(id, (this.#absent.get(id) ?? 0) + 1);
    }
    return live.filter((id) => (this.#absent.get(id) ?? 0) < 2);
  }

  /**
   * The instances with a connection to the source now (CLIENT LIST, the
   * `@<id>` of the connection names); undefined when it cannot be listed.
   */
  async look(): Promise<Set<string> | undefined> {
    try {
      // Every master (of a cluster: an instance may have no connection to one of them yet).
      const ids = new Set<string>();
      for (const conn of this.#conn.cluster ? await this.#conn.masters() : [this.#conn]) {
        const list = String(await conn.send(undefined, ["CLIENT", "LIST", "TYPE", "normal"]));
        for (const m of list.matchAll(/ name=redis-stream-sync-\S*@(\S+)/g)) ids.add(m[1]);
      }
      return ids;
    } catch (error) {
      if (!this.#warnedList) {
        this.#warnedList = true;
        log.info(
          "CLIENT LIST failed ({error}): streams of an instance that died are taken over after STREAM_LEASE_TTL",
          { error: errorMessage(error) },
        );
      }
      return undefined;
    }
  }
}
