/**
 * The one-line replies of RESP2 as the parser hands them out: a status as
 * text, an error as a {@linkcode RedisReplyError} value. Internal to the
 * parser.
 *
 * @module
 */
import { RedisReplyError } from "../errors.ts";

const UTF8 = new TextDecoder();

/**
 * An error reply as a {@linkcode RedisReplyError}, without a stack trace:
 * thousands of them arrive at once ("no such key" for every new stream),
 * and where one was parsed says nothing about who sent the command.
 */
export function errorReply(buf: Uint8Array, start: number, end: number): RedisReplyError {
  const message = UTF8.decode(buf.subarray(start, end));
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RedisReplyError(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

const OK = "OK";
const QUEUED = "QUEUED";
const PONG = "PONG";

/** A status reply as text; the common ones without decoding. */
export function status(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 2 && buf[start] === 79 && buf[start + 1] === 75) return OK;
  if (n === 6 && equals(buf, start, QUEUED)) return QUEUED;
  if (n === 4 && equals(buf, start, PONG)) return PONG;
  return UTF8.decode(buf.subarray(start, end));
}

function equals(buf: Uint8Array, start: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word.charCodeAt(i)) return false;
  return true;
}
