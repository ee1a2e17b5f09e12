/**
 * A failed write: the error that stops its stream, or, retried, its entries go back in front of what was
 * read meanwhile (a later write carries them, and whatever of them the
 * target holds is found by its ID), smaller after the target ran out of
 * memory; and how long before the retry. Internal to the writer.
 *
 * @module
 */
import { backoffDelay } from "../../backoff.ts";
import {
  ConnectionError,
  errorMessage,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
  StreamStoppedError,
} from "../../errors.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { Write } from "./_write_pipeline.ts";

/**
 * The error that stops `stream` after a write failed with `error` (it
 * cannot go on: a stream-level condition, or a failure no retry mends);
 * undefined when the write is retried.
 */
export function stopsStream(stream: ReplicatedStream, error: unknown): Error | undefined {
  if (error instanceof StreamStoppedError || error instanceof StreamGoneError) return error;
  if (isRetriableError(error)) return undefined;
  return new StreamStoppedError(
    `Copy of a batch of ${stream.ref.label} to ${stream.ref.targetLabel} failed: ${
      errorMessage(error)
    }`,
    { cause: error },
  );
}

/**
 * Puts the entries and deleted IDs of `w` back in front of its stream's;
 * after OOM its next writes are smaller (not below `minWriteEntries`).
 */
export function requeue(w: Write, error: unknown, minWriteEntries: number): void {
  const stream = w.stream;
  stream.unshift(w.entries);
  if (error instanceof RedisReplyError && error.code === "OOM") {
    // A big write may not fit where a smaller one still does (a transaction's queued
    // commands count against maxmemory while it is being queued).
    // Not below one read's batch (STREAM_BATCH_SIZE): a target that cannot take that is full.
    stream.writeCap = Math.max(
      minWriteEntries,
      Math.floor(Math.min(stream.writeCap, w.entries.length) / 4),
    );
  }
  stream.deleted = [...w.deleted, ...stream.deleted];
}

/**
 * Milliseconds before the retry of a write that failed with `error` after
 * `attempt` failures in a row: none for the first `maxRetries` lost
 * connections, then the backoff.
 */
export function retryDelay(
  attempt: number,
  error: unknown,
  options: { maxRetries?: number; backoffBaseMs: number; backoffMaxMs: number },
): number {
  const immediate = options.maxRetries ?? 0;
  if (attempt < immediate && error instanceof ConnectionError) return 0;
  return backoffDelay(Math.max(0, attempt - immediate), {
    baseMs: options.backoffBaseMs,
    maxMs: options.backoffMaxMs,
  });
}
