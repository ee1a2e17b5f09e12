/**
 * Rendezvous (highest random weight) hashing: which of the live instances
 * should hold a bucket, so that the buckets spread evenly and only those of
 * an instance that comes or goes move. Internal to the sharing folder.
 *
 * @module
 */

/**
 * The live instance that should hold `id` (a bucket's): the highest
 * rendezvous hash. `live` must not be empty.
 */
export function preferredOwner(id: string, live: readonly string[]): string {
  let best = live[0];
  let bestHash = -1;
  for (const instance of live) {
    const h = fnv1a(`${instance}\n${id}`);
    if (h > bestHash || (h === bestHash && instance < best)) {
      best = instance;
      bestHash = h;
    }
  }
  return best;
}

/** 32-bit FNV-1a of a string's UTF-16 code units, then mixed (murmur3 finaliser). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
