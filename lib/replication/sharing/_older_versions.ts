/**
 * The gate that keeps this instance from taking buckets while instances of
 * an older version of redis-stream-sync (one lease per stream) are live in
 * its group, and for a TTL after the last of them: their leases and this
 * version's do not exclude each other. Says so at WARNING when the list of
 * such instances changes.
 *
 * @module
 */
import { getLog } from "../../log.ts";

const log = getLog("leases");

/** See the module doc. */
export class OlderVersionGate {
  readonly #group: string;
  readonly #ttlMs: number;
  /** No bucket is taken before this time (ms since epoch): instances of an older version ran. */
  #until = 0;
  #said = "";

  constructor(group: string, ttlMs: number) {
    this.#group = group;
    this.#ttlMs = ttlMs;
  }

  /** Whether buckets may be taken now, given the older instances live now (`older`). */
  mayTake(older: readonly string[]): boolean {
    const said = older.join(", ");
    if (said !== this.#said) {
      this.#said = said;
      if (older.length > 0) {
        log.warning(
          "Instances of an older version of redis-stream-sync (one lease per stream) run in group {group}: {older}. This instance copies no stream until they stop (their leases and this version's do not exclude each other); finish the upgrade by stopping them",
          { group: this.#group, older: said },
        );
      } else {
        log.warning(
          "The instances of the older version are gone; streams are taken after STREAM_LEASE_TTL",
        );
      }
    }
    if (older.length > 0) this.#until = Date.now() + this.#ttlMs;
    return Date.now() >= this.#until;
  }
}
