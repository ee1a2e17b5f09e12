/**
 * What a connection makes of replies and failures: EXEC's replies, a
 * reply as a settled outcome, and the error a failed connect or handshake
 * becomes (authentication, permission, missing DB, timeout, refusal).
 *
 * @module
 */
import { AuthError, ConnectError, ConnectionError, RedisReplyError, TlsError } from "../errors.ts";
import { PARSE_VALUES } from "./parse_mode.ts";
import type { RespValue } from "./resp_parser.ts";
import { describeSocketError, type PendingOptions } from "./_socket.ts";
import type { SendOptions } from "./connection_options.ts";
import type { RedisArg, RespWriter } from "./resp_writer.ts";

/**
 * An EXECABORT that names its cause: the server discarded the transaction at
 * EXEC itself (out of memory, turned into a read-only replica, ... after the
 * commands were queued): `EXECABORT Transaction discarded because of: OOM ...`.
 */
const EXECABORT_CAUSE = /^EXECABORT Transaction discarded because of: -?(\S.*)$/s;

/**
 * EXEC's replies of a MULTI/.../EXEC batch, or what made it fail: the first
 * command refused while queued, else the cause EXEC was discarded for (so
 * that an OOM or a READONLY is the error it is, and retried), else EXEC's
 * own error.
 */
export function execReplies(replies: RespValue[], where: string): RespValue[] {
  const exec = replies[replies.length - 1];
  if (exec instanceof RedisReplyError) {
    const queued = replies.slice(1, -1).find((r) => r instanceof RedisReplyError);
    if (queued) throw queued;
    const cause = EXECABORT_CAUSE.exec(exec.message)?.[1];
    throw cause === undefined ? exec : new RedisReplyError(cause, { cause: exec });
  }
  if (replies[0] instanceof RedisReplyError) throw replies[0];
  if (!Array.isArray(exec)) throw new ConnectionError(`Transaction on ${where} was discarded`);
  return exec;
}

export function settled(reply: RespValue): PromiseSettledResult<unknown> {
  return reply instanceof RedisReplyError
    ? { status: "rejected", reason: reply }
    : { status: "fulfilled", value: reply };
}

function firstLine(error: Error): string {
  return error.message.split("\n")[0];
}

function isAuthReply(error: RedisReplyError): boolean {
  const message = error.message;
  return /^(WRONGPASS|NOAUTH)\b/.test(message) || /^ERR AUTH\b/.test(message) ||
    /invalid (username-)?password/i.test(message);
}

/** What {@linkcode connectError} needs to say. */
export interface ConnectErrorOptions {
  /** `source "host:port"`. */
  where: string;
  /** The connect deadline passed. */
  timedOut: boolean;
  /** The deadline, milliseconds. */
  timeoutMs: number;
}

/** The error a failed connect or handshake becomes. */
export function connectError(error: unknown, options: ConnectErrorOptions): Error {
  const { where, timedOut, timeoutMs } = options;
  if (error instanceof TlsError) return error;
  if (error instanceof RedisReplyError && error.code === "NOPERM") {
    return new AuthError(
      `Permission denied on ${where} while connecting: ${
        firstLine(error)
      } (the ACL user needs CLIENT SETNAME/ID, SELECT and the stream commands)`,
      { cause: error },
    );
  }
  if (error instanceof RedisReplyError && isAuthReply(error)) {
    return new AuthError(`Authentication to ${where} failed: ${firstLine(error)}`, {
      cause: error,
    });
  }
  if (error instanceof RedisReplyError && /DB index is out of range|LOADING/.test(error.message)) {
    // A DB the server does not have (callers tell it apart), or a server still loading.
    return error;
  }
  if (timedOut) {
    return new ConnectError(`Cannot connect to ${where}: no answer within ${timeoutMs} ms`);
  }
  if (error instanceof RedisReplyError) {
    // Any other refusal during the handshake (e.g. max number of clients reached) passes.
    return new ConnectError(`Cannot connect to ${where}: ${error.message}`, { cause: error });
  }
  return new ConnectError(`Cannot connect to ${where}: ${describeSocketError(error)}`, {
    cause: error,
  });
}

/** The command's name, for messages. */
export function commandName(args: readonly unknown[]): string {
  const first = args[0];
  return typeof first === "string" ? first.toUpperCase() : "command";
}

/** Replies of a cluster node that mean its layout changed (or is changing). */
const LAYOUT_CODES = new Set(["MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN"]);

/** Whether `reply` says a cluster's layout changed (a redirection, a slot not served or moving). */
export function hintsLayoutChange(reply: RedisReplyError): boolean {
  return LAYOUT_CODES.has(reply.code);
}

/** Encodes each of `commands`. */
export function encodeAll(w: RespWriter, commands: readonly (readonly RedisArg[])[]): void {
  for (const args of commands) w.command(args);
}

/** The awaited replies of `count` commands sent with `options`. */
export function pendingOptions(
  options: SendOptions,
  at: { count: number; timeoutMs: number },
): PendingOptions {
  return {
    count: at.count,
    buffers: options.buffers ?? false,
    parse: options.parse ?? PARSE_VALUES,
    limitMs: at.timeoutMs + (options.blockMs ?? 0),
    name: options.name ?? "pipeline",
  };
}
