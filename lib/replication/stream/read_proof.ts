/**
 * What a fenced read proved about the entries it delivered: the source's
 * entry right below the first of them when it read them (the script asks
 * XREVRANGE in the same step). A writer whose entry must follow another
 * needs to ask the source whether anything lies between the two; when the
 * read's proof is at or below the one it must follow, nothing did, and
 * nothing can come to lie there later (an XADD goes above the stream's
 * last ID). One map for every stream, keyed by the entry: it goes with it.
 *
 * @module
 */
import type { RawEntry } from "../../redis/mod.ts";

const BEFORE = new WeakMap<RawEntry, string>();

/** A read found `before` ("0-0": none) right below `entry` on the source. */
export function provedBefore(entry: RawEntry, before: string): void {
  BEFORE.set(entry, before);
}

/** The source's entry right below `entry` when a fenced read delivered it, if one told. */
export function sourceBefore(entry: RawEntry): string | undefined {
  return BEFORE.get(entry);
}
