/**
 * Error classes shared by the whole service, and the one place that decides
 * which failures are worth retrying.
 *
 * @module
 */

/** Process exit codes, documented in the README and in `--help`. */
export const EXIT_CODES = {
  /** Success. */
  OK: 0,
  /** Failure at run time, or differences found by `verify`. */
  FAILURE: 1,
  /** Bad command-line usage. */
  USAGE: 2,
  /** A Redis server unreachable at start-up after the configured retries (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** Configuration error, including a failed authentication (EX_CONFIG). */
  CONFIG: 78,
} as const;

/** Bad command-line usage: an unknown flag or command, a missing flag value. Exit code 2. */
export class UsageError extends Error {
  /** The process exit code for this error. */
  readonly exitCode: number = EXIT_CODES.USAGE;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * A configuration that cannot work: invalid values, a missing named config
 * file, a failed authentication. Carries every problem found, one per line,
 * and exits with code 78.
 */
export class ConfigError extends Error {
  /** The process exit code for this error. */
  readonly exitCode: number = EXIT_CODES.CONFIG;
  /** Each problem found, one sentence each. */
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[], options?: ErrorOptions) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("\n"), options);
    this.name = "ConfigError";
    this.problems = list;
  }
}

/** Redis refused the credentials (WRONGPASS, NOAUTH, NOPERM on AUTH). Exit code 78. */
export class AuthError extends ConfigError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AuthError";
  }
}

/**
 * A TLS connection could not be made because of its configuration: the
 * server's certificate is not trusted or not valid for its name, a client
 * certificate is required or refused, or one side speaks TLS and the other
 * does not. Exit code 78 at start-up; retried while running (a certificate
 * may be renewed meanwhile).
 */
export class TlsError extends ConfigError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsError";
  }
}

/** A Redis server could not be reached at start-up after every retry. Exit code 69. */
export class UnreachableError extends Error {
  /** The process exit code for this error. */
  readonly exitCode: number = EXIT_CODES.UNAVAILABLE;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnreachableError";
  }
}

/** The connection to a Redis server failed, closed or timed out. Always retriable. */
export class ConnectionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/**
 * A connection could not be opened (refused, timed out, closed): no command
 * was sent on it. Retriable.
 */
export class ConnectError extends ConnectionError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectError";
  }
}

/**
 * The server a sentinel named is not a master (ROLE): it was demoted
 * meanwhile, or the sentinel is misconfigured. Retriable (the other
 * sentinels are asked).
 */
export class NotMasterError extends ConnectError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NotMasterError";
  }
}

/** A command got no reply within its deadline; the connection was closed. Retriable. */
export class TimeoutError extends ConnectionError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimeoutError";
  }
}

/**
 * The server answered a command with a protocol error (`ERR Protocol error:
 * ...`: it could not take the command as sent, e.g. an argument longer than
 * its `proto-max-bulk-len`) and closed the connection. Retriable like any
 * lost connection. `reply` is the server's error; `repliesBefore`, given to
 * the commands sent together that it was answering: how many of them it
 * answered before (the command at that place was refused).
 */
export class ServerProtocolError extends ConnectionError {
  /** The server's error reply. */
  readonly reply: RedisReplyError;
  /** Replies of the failed commands that arrived before the error (undefined: not theirs). */
  readonly repliesBefore: number | undefined;
  constructor(
    message: string,
    options: ErrorOptions & { reply: RedisReplyError; repliesBefore?: number },
  ) {
    super(message, options);
    this.name = "ServerProtocolError";
    this.reply = options.reply;
    this.repliesBefore = options.repliesBefore;
  }
}

/**
 * An error reply from a Redis server. `code` is its first word (`ERR`,
 * `NOGROUP`, `WRONGTYPE`, `OOM`...).
 */
export class RedisReplyError extends Error {
  /** The first word of the reply, e.g. `WRONGTYPE`. */
  readonly code: string;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisReplyError";
    this.code = message.split(" ", 1)[0] ?? "ERR";
  }
}

/**
 * A stream cannot be replicated safely and was stopped: its target is of
 * another type, or something else writes into its target stream. Other
 * streams go on; the stream is retried on the next discovery pass.
 */
export class StreamStoppedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreamStoppedError";
  }
}

/**
 * An entry cannot be written to the target: a field name or value of it (or
 * its key) is longer than the target's `proto-max-bulk-len` (Redis answers
 * such a bulk string with a protocol error and closes the connection). Its
 * stream stops like for a {@linkcode StreamStoppedError}; `id` is the entry,
 * `size` its largest field name or value, `limit` the setting (undefined:
 * not known, the target refused it).
 */
export class EntryTooLargeError extends StreamStoppedError {
  readonly id: string;
  readonly size: number;
  readonly limit: number | undefined;
  constructor(
    message: string,
    options: ErrorOptions & { id: string; size: number; limit: number | undefined },
  ) {
    super(message, options);
    this.name = "EntryTooLargeError";
    this.id = options.id;
    this.size = options.size;
    this.limit = options.limit;
  }
}

/**
 * A target stream holds less than was confirmed on it: it was flushed,
 * deleted, restarted without persistence, or failed over to a replica that
 * lacked the last writes. `found` is its top now ("0-0": no stream), and
 * `confirmed` the highest ID that had been confirmed on it.
 */
export class TargetLostError extends Error {
  readonly found: string;
  readonly confirmed: string;
  constructor(message: string, options: ErrorOptions & { found: string; confirmed: string }) {
    super(message, options);
    this.name = "TargetLostError";
    this.found = options.found;
    this.confirmed = options.confirmed;
  }
}

/** The source stream or its consumer group is gone (NOGROUP, or the key changed type). */
export class StreamGoneError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreamGoneError";
  }
}

/**
 * A stream's lease was found held by another instance (or expired) when
 * this one read, claimed or renewed it: its replication here ends, the
 * holder copies it. Not retriable.
 */
export class LeaseLostError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LeaseLostError";
  }
}

/**
 * This instance's id was taken by another process while this one was
 * paused or cut off for longer than STREAM_LEASE_TTL: it stops (exit 1), so
 * that two processes never share a consumer name; a supervisor restarts it
 * under a new id.
 */
export class InstanceConflictError extends Error {
  readonly exitCode: number = EXIT_CODES.FAILURE;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InstanceConflictError";
  }
}

/** Reply codes that mean "the server is there but cannot serve this now": retry later. */
const RETRIABLE_REPLY_CODES = new Set([
  "LOADING",
  "BUSY",
  "TRYAGAIN",
  "OOM",
  "READONLY",
  "MISCONF",
  "CLUSTERDOWN",
  "MOVED",
  "ASK",
  "MASTERDOWN",
  "NOREPLICAS",
  "NOAUTH",
  "WRONGPASS",
]);

/**
 * Whether an operation that failed with `error` may succeed if retried
 * later: lost or hung connections, and server states that pass (loading,
 * out of memory, read-only, misconfigured persistence, a password being
 * changed, so a refused AUTH is retriable while running, and so is a TLS
 * handshake refused for its certificates; the start-up check treats
 * {@linkcode AuthError} and {@linkcode TlsError} as fatal before it asks this). Everything else
 * is a bug, bad data or a stream-level condition.
 */
export function isRetriableError(error: unknown): boolean {
  if (error instanceof ConnectionError || error instanceof AuthError) return true;
  if (error instanceof TlsError) return true;
  if (error instanceof RedisReplyError) return RETRIABLE_REPLY_CODES.has(error.code);
  return false;
}

/** The error's message, without a stack, for one-line logs. */
export function errorMessage(error: unknown): string {
  if (error instanceof RedisReplyError) return error.message + permissionHint(error.message);
  if (error instanceof Error) return error.message;
  return String(error);
}

/** What to add to the ACL user, for a refusal of its permissions (else ""). */
function permissionHint(message: string): string {
  const command = /^NOPERM .*'([a-z|_-]+)' command/i.exec(message)?.[1];
  if (command) return ` (the ACL user needs +${command}; see "ACL users" in docs/operating.md)`;
  if (/^NOPERM .*keys/i.test(message)) {
    return ` (the ACL user needs access to these keys; see "ACL users" in docs/operating.md)`;
  }
  if (/can't run this command or subcommand script/i.test(message)) {
    return ` (a lease script was refused a command: the ACL user needs those listed under "ACL users" in docs/operating.md)`;
  }
  return "";
}
