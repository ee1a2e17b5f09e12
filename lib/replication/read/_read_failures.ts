/**
 * What a failed read of a reader means: a stream gone or retyped (found by
 * reading the streams one by one), a refusal retrying will not cure (the
 * streams end with it), or an outage to back off from. Internal to the
 * reader.
 *
 * @module
 */
import {
  ConnectionError,
  errorMessage,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
} from "../../errors.ts";
import type { RespValue } from "../../redis/mod.ts";
import { lostLeases } from "./_read_command.ts";
import { getLog } from "../../log.ts";
import { RefusedRead } from "./_read_replies.ts";
import type { ReaderHooks } from "./read_hooks.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const log = getLog("reader");

/** What {@linkcode settleFailedRead} needs of its reader. */
export interface FailedReadContext {
  /** The reader's connection, for messages. */
  where: string;
  /** The reader's hooks (streams that fail for good end through them). */
  hooks: ReaderHooks;
  /** Called with the error's kind (reply code or "connection"). */
  onError?: (kind: string) => void;
  /** Reads each stream alone, ending those that are gone. */
  isolate(streams: ReplicatedStream[]): Promise<void>;
}

/**
 * Handles one failed read of `wanting`; resolves to the backoff to take
 * (`connection`: the connection failed), or undefined when the streams that
 * are gone were found and the others may be read again at once.
 */
export async function settleFailedRead(
  error: unknown,
  wanting: ReplicatedStream[],
  ctx: FailedReadContext,
): Promise<{ connection: boolean } | undefined> {
  if (error instanceof RefusedRead) {
    wanting = error.streams;
    error = error.reply;
  }
  ctx.onError?.(error instanceof RedisReplyError ? error.code : "connection");
  if (
    error instanceof RedisReplyError &&
    (error.code === "NOGROUP" || error.code === "WRONGTYPE" || error.code === "UNBLOCKED")
  ) {
    // One of the streams is gone or changed type (a blocked read is woken with
    // "UNBLOCKED the stream key no longer exists" when its key is deleted): find which.
    try {
      await ctx.isolate(wanting);
      return undefined;
    } catch (failure) {
      // The one-by-one reads failed too (a lost connection...): back off, read again.
      error = failure;
    }
  }
  if (!isRetriableError(error)) {
    log.error("Read failed on {connection}: {error}", {
      connection: ctx.where,
      error: errorMessage(error),
    });
    // Retrying will not help (e.g. NOPERM): the streams end with the error (and are
    // tried again at the next discovery pass).
    for (const s of wanting) ctx.hooks.failed(s, error);
  } else {
    log.debug("Read failed on {connection}: {error}", {
      connection: ctx.where,
      error: errorMessage(error),
    });
  }
  return { connection: error instanceof ConnectionError };
}

/** What {@linkcode isolateStreams} needs of its reader. */
export interface IsolateContext {
  /** The reader's hooks. */
  hooks: ReaderHooks;
  /** Whether the reader still serves `stream`. */
  owns(stream: ReplicatedStream): boolean;
  /** One non-blocking read of `stream` alone; its reply (an error reply as a value). */
  readAlone(stream: ReplicatedStream): Promise<RespValue>;
  /** Hands a read's reply to `stream`. */
  dispatch(stream: ReplicatedStream, reply: RespValue): void;
}

/**
 * Reads each of `streams` alone: those that are gone (NOGROUP, WRONGTYPE)
 * end through `hooks.gone`, those whose lease is lost through `hooks.lost`,
 * the others get their entries. Another failure is thrown.
 */
export async function isolateStreams(
  streams: ReplicatedStream[],
  ctx: IsolateContext,
): Promise<void> {
  for (const stream of streams) {
    if (!ctx.owns(stream) || !ctx.hooks.wants(stream)) continue;
    try {
      const reply = await ctx.readAlone(stream);
      if (lostLeases(reply, [stream])) {
        ctx.hooks.lost(stream);
        continue;
      }
      if (reply instanceof RedisReplyError) throw reply;
      ctx.dispatch(stream, reply);
    } catch (error) {
      if (
        !(error instanceof RedisReplyError) ||
        (error.code !== "NOGROUP" && error.code !== "WRONGTYPE")
      ) throw error;
      ctx.hooks.gone(
        stream,
        new StreamGoneError(`Stream ${stream.ref.label} is gone: ${error.message}`, {
          cause: error,
        }),
      );
    }
  }
}
