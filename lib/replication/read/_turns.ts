/**
 * Turns: when a read may take only some of a list of streams (its share of
 * the read-ahead memory, a sweep's bound), it takes the next ones after
 * those the last read of that kind took, so that every stream of the list
 * is read once before any is read again. Internal to the reader.
 *
 * @module
 */

/** Where the next read of each kind begins. */
export class Turns<T> {
  readonly #from = new Map<string, number>();

  /** `list` if it has at most `n` items, else the next `n` of it (wrapping) for reads of `kind`. */
  next(kind: string, list: readonly T[], n: number): T[] {
    if (list.length <= n) return [...list];
    const from = (this.#from.get(kind) ?? 0) % list.length;
    this.#from.set(kind, from + n);
    const share = list.slice(from, from + n);
    if (share.length < n) share.push(...list.slice(0, n - share.length));
    return share;
  }
}
