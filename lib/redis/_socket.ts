/**
 * One open TCP socket to a Redis server: the queue of awaited replies, the
 * write loop (one socket write per tick for everything encoded meanwhile),
 * the read loop (parsing straight from the socket) and one deadline timer.
 * A socket that fails is dead for good; the connection opens a new one.
 *
 * @module
 */
import {
  ConnectError,
  ConnectionError,
  RedisReplyError,
  ServerProtocolError,
  TimeoutError,
  TlsError,
} from "../errors.ts";
import type { EndpointTls } from "./endpoint.ts";
import { type ByteConn, connectTls } from "./_tls_conn.ts";
import { PARSE_TEXT, PARSE_VALUES, type ParseMode } from "./parse_mode.ts";
import { RawArray, RespParser, type RespValue } from "./resp_parser.ts";
import { RespWriter } from "./resp_writer.ts";

/** Replies awaited for one command, or for commands sent together. */
export interface PendingOptions {
  /** How many replies. */
  count: number;
  /** Bulk strings as Uint8Array views (else text). */
  buffers: boolean;
  /** How the replies are parsed. */
  parse: ParseMode;
  /** Milliseconds the replies may take (command timeout plus block time), before the transfer allowance. */
  limitMs: number;
  /** The command, for the timeout message. */
  name: string;
}

interface Pending extends PendingOptions {
  replies: RespValue[] | undefined;
  deadline: number;
  resolve: (replies: RespValue[]) => void;
  reject: (error: Error) => void;
}

/** Options for {@linkcode Socket.connect}. */
export interface SocketOptions {
  /** Aborts the connect. */
  signal: AbortSignal;
  /** `source "host:port"`, for messages. */
  where: string;
  /** Called when the last awaited reply arrived. */
  onIdle: () => void;
  /** Called once when the socket fails by itself (not when destroyed). */
  onLost: (socket: Socket, error: Error) => void;
  /** TLS settings; undefined = plain TCP. */
  tls?: EndpointTls;
  /** "source" or "target" (TLS messages name its keys). */
  role?: string;
  /** The server is a sentinel (TLS messages name the sentinel keys). */
  sentinel?: boolean;
  /** A subscribed connection: pub/sub messages (`message`, channel, payload) go here. */
  onPush?: (message: RespValue[]) => void;
}

const DECODER = new TextDecoder();
/** Bytes per millisecond a link is granted at least (1 MB/s) on top of the command timeout. */
const BYTES_PER_MS = 1000;
const COMPACT_AT = 1024;
/** The server's answer before it closes a connection it cannot parse (`ERR Protocol error: ...`). */
const PROTOCOL_ERROR = /^ERR Protocol error/i;
/**
 * How long a socket whose write failed waits for its read side to end: the
 * server may have answered (a protocol error) before it closed, and that
 * answer, still to be read, says why.
 */
const WRITE_FAILED_GRACE_MS = 1000;

/** An open socket; see the module doc. */
export class Socket {
  readonly #conn: ByteConn;
  readonly #options: SocketOptions;
  readonly #writer = new RespWriter();
  readonly #parser = new RespParser();
  #queue: Pending[] = [];
  #head = 0;
  #inflight = 0;
  #writing = false;
  #flushQueued = false;
  #writingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;
  #dead: Error | null = null;
  /** A protocol error the server answered (it closes the connection next). */
  #protocolError: RedisReplyError | undefined;
  /** The write side failed: the socket fails once its read side ended (or after a grace). */
  #writeFailed: Error | undefined;

  private constructor(conn: ByteConn, options: SocketOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#readLoop();
  }

  /** Connects to `host:port` (over TLS when `options.tls`); rejects with the socket error. */
  static async connect(host: string, port: number, options: SocketOptions): Promise<Socket> {
    if (options.tls) {
      const { tls, signal, where } = options;
      const conn = await connectTls(host, port, {
        tls,
        signal,
        where,
        role: options.role ?? "",
        sentinel: options.sentinel ?? false,
      });
      return new Socket(conn, options);
    }
    const conn = await Deno.connect({ hostname: host, port, signal: options.signal });
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // not fatal
    }
    return new Socket(conn, options);
  }

  /** Commands sent and not yet answered. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Whether the socket failed or was destroyed (or its write side failed). */
  get dead(): boolean {
    return this.#dead !== null || this.#writeFailed !== undefined;
  }

  /**
   * Encodes `count` commands with `encode` (synchronously) and resolves with
   * their replies once all arrived; rejects when the socket fails first.
   */
  send(
    count: number,
    encode: (writer: RespWriter) => void,
    options: PendingOptions,
  ): Promise<RespValue[]> {
    const dead = this.#dead ?? this.#writeFailed;
    if (dead) {
      return Promise.reject(
        new ConnectError(`Connection to ${this.#options.where} lost: ${dead.message}`),
      );
    }
    const before = this.#writer.length;
    try {
      encode(this.#writer);
    } catch (error) {
      this.#writer.reset(before); // nothing of a pipeline that could not be encoded leaves
      return Promise.reject(error);
    }
    const ahead = this.#writingBytes + this.#writer.length;
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + options.limitMs + Math.floor(ahead / BYTES_PER_MS);
      const entry: Pending = { ...options, replies: undefined, deadline, resolve, reject };
      if (before === this.#writer.length && count > 0) {
        reject(new Error("encode() wrote nothing"));
        return;
      }
      this.#queue.push(entry);
      this.#inflight += count;
      if (deadline < this.#timerDue) this.#arm(deadline);
      if (!this.#flushQueued && !this.#writing) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  /** Closes the socket; every awaited reply fails with `error`. */
  destroy(error: Error): void {
    this.#fail(error, false);
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    if (this.#writing || this.#dead || this.#writeFailed) return;
    this.#writing = true;
    try {
      while (this.#writer.length > 0 && !this.#dead) {
        const chunk = this.#writer.take();
        this.#writingBytes = chunk.length;
        let offset = 0;
        while (offset < chunk.length) offset += await this.#conn.write(chunk.subarray(offset));
      }
    } catch (error) {
      if (error instanceof TlsError) return this.#fail(error, true);
      if (this.#dead) return;
      // The read side goes on until it ends by itself (or the grace is over): replies sent
      // before the server closed (a protocol error saying why) are still read.
      this.#writeFailed = new ConnectionError(
        `Connection to ${this.#options.where} lost: ${describeSocketError(error)}`,
        { cause: error },
      );
      this.#arm(Date.now() + WRITE_FAILED_GRACE_MS);
    } finally {
      this.#writing = false;
      this.#writingBytes = 0;
    }
  }

  async #readLoop(): Promise<void> {
    const parser = this.#parser;
    // A reply asked for as text is decoded as it is parsed, not made views first. Not on a
    // subscriber's connection: a pub/sub message may come before the reply awaited (a PING),
    // and is told apart, and its key kept, as bytes.
    const push = this.#options.onPush !== undefined;
    const mode = () => {
      const entry = this.#queue[this.#head];
      if (entry === undefined) return PARSE_VALUES;
      return entry.parse === PARSE_VALUES && !entry.buffers && !push ? PARSE_TEXT : entry.parse;
    };
    const onReply = (value: RespValue) => this.#onReply(value);
    try {
      while (!this.#dead) {
        const n = await this.#conn.read(parser.writable());
        if (n === null) {
          this.#fail(
            new ConnectionError(
              `Connection to ${this.#options.where} lost: connection closed by the server`,
            ),
            true,
          );
          return;
        }
        parser.commit(n);
        parser.parse(mode, onReply);
      }
    } catch (error) {
      if (this.#dead) return;
      if (error instanceof TlsError) return this.#fail(error, true);
      this.#fail(
        new ConnectionError(
          `Connection to ${this.#options.where} lost: ${describeSocketError(error)}`,
          { cause: error },
        ),
        true,
      );
    }
  }

  #onReply(value: RespValue): void {
    if (this.#options.onPush && isMessage(value)) return this.#options.onPush(value);
    if (value instanceof RedisReplyError && PROTOCOL_ERROR.test(value.message)) {
      this.#protocolError ??= value;
    }
    const entry = this.#queue[this.#head];
    if (entry === undefined) {
      throw new ConnectionError(`Unexpected reply from ${this.#options.where}`);
    }
    const reply = entry.buffers ? value : toText(value);
    this.#inflight--;
    let replies: RespValue[];
    if (entry.count === 1) {
      replies = [reply];
    } else {
      (entry.replies ??= []).push(reply);
      if (entry.replies.length < entry.count) return;
      replies = entry.replies;
    }
    this.#queue[this.#head++] = undefined as unknown as Pending;
    if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    entry.resolve(replies);
    const next = this.#queue[this.#head];
    if (next === undefined) this.#options.onIdle();
    else if (next.deadline < this.#timerDue) this.#arm(next.deadline);
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, due - Date.now()));
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    if (this.#dead) return;
    if (this.#writeFailed) return this.#fail(this.#writeFailed, true);
    const head = this.#queue[this.#head];
    if (head === undefined) return;
    if (Date.now() < head.deadline) {
      this.#arm(head.deadline);
      return;
    }
    this.#fail(
      new TimeoutError(
        `No reply from ${this.#options.where} within ${head.limitMs} ms to ${head.name}; connection closed`,
      ),
      true,
    );
  }

  /** The error of a socket the server closed after it answered `reply` (the socket's is the cause). */
  #closedAfter(reply: RedisReplyError, cause: unknown, repliesBefore?: number): Error {
    return new ServerProtocolError(closedAfterMessage(this.#options.where, reply), {
      reply,
      repliesBefore,
      cause,
    });
  }

  #fail(error: Error, lost: boolean): void {
    if (this.#dead) return;
    const refused = lost ? this.#protocolError : undefined;
    if (refused) error = this.#closedAfter(refused, error);
    this.#dead = error;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    const pending = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#inflight = 0;
    // The commands the server was answering when it refused one: theirs says which.
    const head = pending[0];
    if (refused && head?.replies?.at(-1) === refused) {
      head.reject(this.#closedAfter(refused, error.cause, head.replies.length - 1));
      pending.shift();
    }
    for (const entry of pending) entry.reject(error);
    if (lost) this.#options.onLost(this, error);
    this.#options.onIdle();
  }
}

/** The error of a socket closed by the server after it answered `reply` (a protocol error). */
function closedAfterMessage(where: string, reply: RedisReplyError): string {
  const hint = /invalid bulk length/i.test(reply.message)
    ? " (an argument longer than its proto-max-bulk-len)"
    : "";
  return `Connection to ${where} closed by the server after it answered "${reply.message}" to a command${hint}`;
}

const MESSAGE = new TextEncoder().encode("message");
const PMESSAGE = new TextEncoder().encode("pmessage");

/** A pub/sub message: `["message", channel, payload]` or `["pmessage", pattern, channel, payload]`. */
function isMessage(value: RespValue): value is RespValue[] {
  if (!Array.isArray(value)) return false;
  const word = value.length === 3 ? MESSAGE : value.length === 4 ? PMESSAGE : undefined;
  const kind = value[0];
  return word !== undefined && kind instanceof Uint8Array && kind.length === word.length &&
    kind.every((b, i) => b === word[i]);
}

/** Bulk strings as text, deeply (for callers that did not ask for buffers). */
function toText(value: RespValue): RespValue {
  if (value instanceof Uint8Array) return DECODER.decode(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = toText(value[i]);
  }
  return value;
}

/** A socket error in words ("connection refused", ...). */
export function describeSocketError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof Deno.errors.BrokenPipe) return "connection closed by the server";
  if (error instanceof Deno.errors.NotConnected) return "not connected";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available";
  const message = error instanceof Error ? error.message : String(error);
  if (/lookup address|Name or service not known|No address associated/i.test(message)) {
    return "host not found";
  }
  if (/unreachable/i.test(message)) return "host unreachable";
  if (error instanceof RedisReplyError) return error.message;
  return message;
}

export { RawArray };
