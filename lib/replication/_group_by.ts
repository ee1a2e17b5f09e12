/**
 * Grouping helpers for the pipelines: commands for many streams are sent
 * per DB (a connection is on one DB at a time) and in chunks (bounded
 * memory per round trip).
 *
 * @module
 */

/**
 * `items` grouped by `key`, in first-seen order of the keys and the items.
 * When all share one key, the group is the `items` array itself: do not
 * change the groups.
 */
export function groupBy<T, K>(items: Iterable<T>, key: (item: T) => K): Map<K, T[]> {
  if (Array.isArray(items) && items.length > 0) {
    // The common case, one DB: no new list.
    const first = key(items[0]);
    let same = true;
    for (let i = 1; i < items.length && same; i++) same = key(items[i]) === first;
    if (same) return new Map([[first, items]]);
  }
  const map = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

/** `items` grouped by `key`, each group cut into chunks of at most `size`. */
export function chunksBy<T, K>(
  items: Iterable<T>,
  key: (item: T) => K,
  size: number,
): Array<[K, T[]]> {
  const out: Array<[K, T[]]> = [];
  for (const [k, list] of groupBy(items, key)) {
    for (let i = 0; i < list.length; i += size) out.push([k, list.slice(i, i + size)]);
  }
  return out;
}
