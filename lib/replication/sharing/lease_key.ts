/**
 * The key of a stream's lease, on the source in the stream's DB. In a Redis
 * Cluster a script may only touch keys of one slot, and the read fence is a
 * script that checks the lease and reads the stream: so the lease key
 * carries a hash tag that maps to its stream's slot. The tag comes from a
 * table of one short tag per slot (computed once, on first use), not from
 * the stream key itself: `{<key>}` fails for keys that contain `}` or whose
 * own hash tag decides their slot.
 *
 * @example
 * ```ts
 * import { clusterSlot, leaseKey } from "./lease_key.ts";
 *
 * const key = new TextEncoder().encode("orders-stream");
 * const lease = leaseKey(key, { group: "redis-sync-group" });
 * clusterSlot(lease) === clusterSlot(key); // true
 * ```
 *
 * @module
 */
import { CLUSTER_SLOTS, clusterSlot, crc16 } from "../../redis/mod.ts";

export { CLUSTER_SLOTS, clusterSlot, crc16 };

/** Every lease key starts with this. */
export const LEASE_KEY_PREFIX = "redis-stream-sync:lease:";

const TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const encoder = new TextEncoder();
let tags: string[] | undefined;

/** A short tag (1-3 letters or digits) whose slot is `slot`. */
export function tagForSlot(slot: number): string {
  tags ??= buildTags();
  return tags[slot];
}

/** Options of {@linkcode leaseKey}. */
export interface LeaseKeyOptions {
  /** The consumer group: instances of another group copy the stream independently. */
  group: string;
}

/**
 * The lease key of the stream `key`:
 * `redis-stream-sync:lease:{<tag>}:<group length>:<group>:<key>`, in the
 * slot of `key`.
 */
export function leaseKey(key: Uint8Array, options: LeaseKeyOptions): Uint8Array {
  const tag = tagForSlot(clusterSlot(key));
  const head = encoder.encode(
    `${LEASE_KEY_PREFIX}{${tag}}:${encoder.encode(options.group).length}:${options.group}:`,
  );
  const out = new Uint8Array(head.length + key.length);
  out.set(head);
  out.set(key, head.length);
  return out;
}

function buildTags(): string[] {
  const table: string[] = new Array(CLUSTER_SLOTS);
  let found = 0;
  const bytes = new Uint8Array(4);
  const visit = (length: number, at: number, text: string): void => {
    if (found === CLUSTER_SLOTS) return;
    if (at === length) {
      const slot = crc16(bytes.subarray(0, length)) % CLUSTER_SLOTS;
      if (table[slot] === undefined) {
        table[slot] = text;
        found++;
      }
      return;
    }
    for (let i = 0; i < TAG_ALPHABET.length; i++) {
      bytes[at] = TAG_ALPHABET.charCodeAt(i);
      visit(length, at + 1, text + TAG_ALPHABET[i]);
    }
  };
  for (let length = 1; length <= 4 && found < CLUSTER_SLOTS; length++) visit(length, 0, "");
  if (found < CLUSTER_SLOTS) throw new Error("No hash tag found for some cluster slots");
  return table;
}
