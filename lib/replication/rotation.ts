/**
 * A cursor over a set that changes, taking the next items that qualify in
 * turn: the reader's passes over its streams, group maintenance's look at
 * the streams due. Shared by the replication layers.
 *
 * @module
 */

/**
 * A cursor over a set that changes (items come and go between calls): each
 * call takes the next items that qualify, from where the last call stopped,
 * wrapping around, so that every item is taken in its turn. A call looks at
 * each item once at most and makes a list only of what it takes: a reader's
 * loop asks for the next window of its streams, not for a list of all of
 * them, each time round.
 */
export class Rotation<T> {
  readonly #items: ReadonlySet<T>;
  /** Where the next call goes on (a set's iterator follows additions and deletions). */
  #cursor: IterableIterator<T> | undefined;
  /** Items taken and not used (see {@linkcode putBack}): the next call takes them first. */
  #again: readonly T[] = [];

  constructor(items: ReadonlySet<T>) {
    this.#items = items;
  }

  /** The set it goes round. */
  get items(): ReadonlySet<T> {
    return this.#items;
  }

  /** The next `most` items (fewer when fewer qualify) for which `keep` holds. */
  take(most: number, keep: (item: T) => boolean): T[] {
    const out: T[] = [];
    // Those put back (a pass not sent for lack of memory) alone, if any still qualifies: the
    // cursor stays where it is, so none of them can come twice.
    const back = this.#again;
    this.#again = [];
    for (const item of back) {
      if (out.length < most && this.#items.has(item) && keep(item)) out.push(item);
    }
    if (out.length > 0) return out;
    const size = this.#items.size;
    let looked = 0;
    while (looked < size && out.length < most) {
      this.#cursor ??= this.#items.values();
      // for-of, not next() by hand: no result object per item (thousands of items a call).
      for (const item of this.#cursor) {
        looked++;
        if (keep(item)) out.push(item);
        if (looked >= size || out.length >= most) return out;
      }
      this.#cursor = undefined; // round again
    }
    return out;
  }

  /** `items`, taken by the last call, were not used: the next call takes them first. */
  putBack(items: readonly T[]): void {
    this.#again = items; // the caller's list, not used by it any more
  }
}
