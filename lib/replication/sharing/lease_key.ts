/**
 * The lease keys. Streams are leased in buckets, not one by one: a
 * stream's bucket is its cluster slot (in a Redis Cluster, where a script
 * may only touch keys of one slot, and the read fence is a script that
 * checks the lease and reads the stream), or that slot modulo
 * {@linkcode STANDALONE_BUCKETS} on one server. So renewing the leases
 * costs the same at 100 or 100,000 streams. A bucket's lease key, on the
 * source in the DB of its streams, carries a hash tag that maps to the
 * bucket's slot; the tag comes from a table of one short tag per slot
 * (computed once, on first use), not from a stream key: `{<key>}` fails for
 * keys that contain `}` or whose own hash tag decides their slot.
 *
 * @example
 * ```ts
 * import { bucketOf, clusterSlot, leaseKey } from "./lease_key.ts";
 *
 * const key = new TextEncoder().encode("orders-stream");
 * const lease = leaseKey(key, { group: "redis-sync-group", cluster: true });
 * clusterSlot(lease) === clusterSlot(key); // true
 * bucketOf(key, { cluster: false }) < 256; // true
 * ```
 *
 * @module
 */
import { CLUSTER_SLOTS, clusterSlot, crc16 } from "../../redis/mod.ts";

export { CLUSTER_SLOTS, clusterSlot, crc16 };

/** Every lease key starts with this (a bucket's: streams are leased in buckets). */
export const LEASE_KEY_PREFIX = "redis-stream-sync:bucket:";

/** Buckets of the streams of one DB on one server (a cluster has one per slot). */
export const STANDALONE_BUCKETS = 256;

const TAG_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const encoder = new TextEncoder();
let tags: string[] | undefined;

/** A short tag (1-3 letters or digits) whose slot is `slot`. */
export function tagForSlot(slot: number): string {
  tags ??= buildTags();
  return tags[slot];
}

/** Options of {@linkcode leaseKey} and {@linkcode bucketLeaseKey}. */
export interface LeaseKeyOptions {
  /** The consumer group: instances of another group copy the stream independently. */
  group: string;
  /**
   * A Redis Cluster: a bucket is a slot.
   * @default {false}
   */
  cluster?: boolean;
}

/** The bucket of the stream `key`: its cluster slot, or that slot modulo {@linkcode STANDALONE_BUCKETS}. */
export function bucketOf(key: Uint8Array, options: { cluster?: boolean } = {}): number {
  const slot = clusterSlot(key);
  return options.cluster ? slot : slot % STANDALONE_BUCKETS;
}

/**
 * The lease key of bucket `bucket`:
 * `redis-stream-sync:bucket:{<tag>}:<group length>:<group>:<bucket>`, in
 * the slot `bucket`.
 */
export function bucketLeaseKey(bucket: number, options: LeaseKeyOptions): Uint8Array {
  const group = options.group;
  return encoder.encode(
    `${LEASE_KEY_PREFIX}{${tagForSlot(bucket)}}:${encoder.encode(group).length}:${group}:${bucket}`,
  );
}

/** The lease key of the stream `key`: its bucket's, in the slot of `key` in a cluster. */
export function leaseKey(key: Uint8Array, options: LeaseKeyOptions): Uint8Array {
  return bucketLeaseKey(bucketOf(key, options), options);
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
