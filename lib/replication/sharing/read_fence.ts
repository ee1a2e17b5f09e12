/**
 * The fence of a read when instances share the streams: each stream's
 * lease key, and the value it holds for this instance. A fenced read
 * checks the lease and takes the entries in one script on the server
 * (`FENCED_READ`), so an instance that lost a lease reads nothing more.
 *
 * @module
 */
import type { StreamRef } from "../stream/stream_ref.ts";

/** What a fenced read needs: each stream's lease key, and the value it holds for this instance. */
export interface ReadFence {
  /** The value the lease of a stream holds for this instance ("" when it holds none). */
  valueOf(ref: StreamRef): string;
  /** The lease key of a stream. */
  keyOf(ref: StreamRef): Uint8Array;
}
