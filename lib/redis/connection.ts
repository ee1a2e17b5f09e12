/**
 * One connection to a Redis server, on top of node-redis, with what a
 * replicator needs and the client does not give: a hard deadline on every
 * reply (a hung connection is closed, not waited on forever), safe switching
 * between DBs on a pipelined connection, binary replies, errors mapped to
 * the service's classes, and a lazy reconnect on the next command.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient, ErrorReply, RESP_TYPES } from "@redis/client";
import type { RedisServerConfig } from "../config/types.ts";
import {
  AuthError,
  ConnectError,
  ConnectionError,
  RedisReplyError,
  TimeoutError,
} from "../errors.ts";
import type { ServerHealth } from "./server_health.ts";

/** One argument of a Redis command: text or raw bytes. */
export type RedisArg = string | Uint8Array;

/** Where a connection goes and how it behaves. */
export interface RedisConnectionOptions {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /**
   * ACL user name.
   * @default {undefined}
   */
  username?: string;
  /**
   * Password; never logged.
   * @default {undefined}
   */
  password?: string;
  /**
   * The DB selected when the connection opens.
   * @default {0}
   */
  db?: number;
  /**
   * Milliseconds without a reply after which the connection counts as hung
   * and is closed. Blocking commands get their block time on top.
   * @default {10000}
   */
  commandTimeoutMs?: number;
  /**
   * Milliseconds of idleness after which a PING checks the connection; 0 = never.
   * @default {0}
   */
  healthCheckIntervalMs?: number;
  /**
   * CLIENT SETNAME value, visible in CLIENT LIST.
   * @default {undefined}
   */
  clientName?: string;
  /**
   * Shared up/down bookkeeping for all connections to one server.
   * @default {undefined}
   */
  health?: ServerHealth;
  /**
   * Fetch the server's CLIENT ID after each connect (needed to CLIENT UNBLOCK it).
   * @default {false}
   */
  trackClientId?: boolean;
}

/** Options of one command. */
export interface SendOptions {
  /**
   * Return bulk strings as `Uint8Array` (Buffer) instead of text.
   * @default {false}
   */
  buffers?: boolean;
  /**
   * Extra milliseconds to wait on top of the command timeout (a BLOCK time).
   * @default {0}
   */
  blockMs?: number;
}

// deno-lint-ignore no-explicit-any
type Client = any;

const BUFFER_MAPPING = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/** `host:port` as used in messages. */
export function serverAddress(options: { host: string; port: number }): string {
  return options.host.includes(":")
    ? `[${options.host}]:${options.port}`
    : `${options.host}:${options.port}`;
}

/** Options for {@linkcode connectionFor}. */
export interface ConnectionForOptions {
  /** The DB selected when the connection opens. */
  db: number;
  /**
   * What the connection is for, the last part of its CLIENT SETNAME.
   * @default {"cli"}
   */
  purpose?: string;
}

/**
 * A connection for a one-shot command (`check`, `status`, `verify`) to a
 * configured server, named `redis-stream-sync-<role>-<purpose>`.
 */
export function connectionFor(
  role: string,
  server: RedisServerConfig,
  options: ConnectionForOptions,
): RedisConnection {
  const { db, purpose = "cli" } = options;
  return new RedisConnection(role, {
    host: server.host,
    port: server.port,
    username: server.username,
    password: server.password,
    db,
    commandTimeoutMs: server.commandTimeout * 1000,
    clientName: `redis-stream-sync-${role}-${purpose}`,
  });
}

/** Maps anything node-redis or the socket throws to the service's error classes. */
function toRedisError(error: unknown, where: string): Error {
  if (error instanceof ConnectionError || error instanceof RedisReplyError) return error;
  if (error instanceof ErrorReply) {
    return new RedisReplyError(error.message, { cause: error });
  }
  const err = error as { code?: string; message?: string } | undefined;
  const message = describeSocketError(err);
  if (/client is (closed|offline)/i.test(err?.message ?? "")) {
    // node-redis refused to send: the command never left.
    return new ConnectError(`Connection to ${where} lost: ${message}`, { cause: error });
  }
  return new ConnectionError(`Connection to ${where} lost: ${message}`, { cause: error });
}

function describeSocketError(err: { code?: string; message?: string } | undefined): string {
  switch (err?.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    case "ETIMEDOUT":
      return "timed out";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
  }
  const message = err?.message ?? String(err);
  if (/closed unexpectedly/i.test(message)) return "connection closed by the server";
  if (/client is closed|disconnects client/i.test(message)) return "connection closed";
  if (/connection timeout/i.test(message)) return "connect timed out";
  return message;
}

function isPermissionReply(error: unknown): boolean {
  return error instanceof ErrorReply && /^NOPERM\b/.test(error.message);
}

function destroyQuietly(client: Client): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

function isAuthReply(error: unknown): boolean {
  if (!(error instanceof ErrorReply) && !(error instanceof RedisReplyError)) return false;
  const message = (error as Error).message;
  return /^(WRONGPASS|NOAUTH)\b/.test(message) || /^ERR AUTH\b/.test(message) ||
    /invalid (username-)?password/i.test(message);
}

/**
 * A lazily (re)connecting Redis connection. Commands on the current DB are
 * pipelined; a command for another DB waits until the connection is idle,
 * then SELECTs (so no command can ever run in the wrong DB, even if SELECT
 * fails).
 */
export class RedisConnection {
  #options:
    & Required<Omit<RedisConnectionOptions, "username" | "password" | "clientName" | "health">>
    & RedisConnectionOptions;
  #where: string;
  #client: Client | null = null;
  #connecting: Promise<Client> | null = null;
  #db: number;
  #inflight = 0;
  #idleWaiters: Array<() => void> = [];
  #gate: Promise<void> | null = null;
  #closed = false;
  #lastActivity = Date.now();
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #clientId: string | undefined;
  #everConnected = false;
  /** The client being opened, so that close() can cut a hanging connect too. */
  #opening: Client | null = null;

  /**
   * @param role "source" or "target", for messages.
   * @param options where to connect and how.
   */
  constructor(role: string, options: RedisConnectionOptions) {
    this.#options = {
      db: 0,
      commandTimeoutMs: 10_000,
      healthCheckIntervalMs: 0,
      trackClientId: false,
      ...options,
    };
    this.#db = this.#options.db;
    this.#where = `${role} "${serverAddress(options)}"`;
    if (this.#options.healthCheckIntervalMs > 0) {
      const every = Math.max(100, Math.min(this.#options.healthCheckIntervalMs, 60_000));
      this.#healthTimer = setInterval(() => this.#healthCheck(), every);
    }
  }

  /** `source "host:port"`, for messages. */
  get where(): string {
    return this.#where;
  }

  /** The DB the connection is on (or will be on once opened). */
  get db(): number {
    return this.#db;
  }

  /** Commands sent and not yet answered. */
  get inflight(): number {
    return this.#inflight;
  }

  /** The server's CLIENT ID of the current connection (with `trackClientId`). */
  get clientId(): string | undefined {
    return this.#client ? this.#clientId : undefined;
  }

  /** Opens the connection now (otherwise the first command does). */
  async connect(): Promise<void> {
    await this.#ensure();
  }

  /**
   * Sends one command and returns its reply. `db` undefined runs it on
   * whatever DB the connection is on (for DB-independent commands).
   * Throws {@linkcode RedisReplyError} for an error reply,
   * {@linkcode ConnectionError} (or {@linkcode TimeoutError}) when the
   * connection failed; the connection is then reopened by the next command.
   */
  send(
    db: number | undefined,
    args: readonly RedisArg[],
    options: SendOptions = {},
  ): Promise<unknown> {
    return this.#onDb(
      db,
      (client) => this.#exec(client, args, options, transferAllowanceMs(argBytes(args))),
    );
  }

  /**
   * Sends several commands on the current connection in one pipeline, all
   * on `db`, and returns each one's outcome in order (a reply or an error).
   * Throws only when the connection itself failed before anything was sent.
   */
  pipeline(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    // Every sendCommand call happens in one synchronous block, so the
    // commands leave back to back, in order, in one write.
    return this.#onDb(db, (client) => {
      // A command's reply comes after everything sent before it in the
      // pipeline: its deadline grows with the bytes queued ahead of it.
      let queued = 0;
      return Promise.allSettled(commands.map((args) => {
        queued += argBytes(args);
        return this.#exec(client, args, options, transferAllowanceMs(queued));
      }));
    });
  }

  /**
   * Waits until the connection is open and on `db` (switching DB only when
   * no command is in flight), then calls `send` with the client. `send`
   * must issue its commands synchronously, before its first await.
   */
  async #onDb<T>(db: number | undefined, send: (client: Client) => Promise<T>): Promise<T> {
    while (true) {
      if (this.#closed) throw new ConnectionError(`Connection to ${this.#where} is closed`);
      if (this.#gate) {
        await this.#gate.catch(() => {});
        continue;
      }
      if (db === undefined || db === this.#db) {
        const client = await this.#ensure();
        // A DB switch or a reconnect may have happened while we waited.
        if (this.#gate || client !== this.#client || (db !== undefined && db !== this.#db)) {
          continue;
        }
        return await send(client);
      }
      const gate = this.#switchDb(db);
      this.#gate = gate;
      try {
        await gate;
      } finally {
        if (this.#gate === gate) this.#gate = null;
      }
    }
  }

  /**
   * Runs `commands` as one MULTI/EXEC transaction on `db` (sent in one
   * pipeline) and returns each command's outcome in order. The server runs
   * them back to back, so a state change (out of memory, read-only) cannot
   * split the batch: either the transaction is refused as a whole (thrown,
   * e.g. OOM) or every command ran, each with its own reply or error.
   */
  async transaction(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    const results = await this.pipeline(db, [["MULTI"], ...commands, ["EXEC"]], options);
    const exec = results[results.length - 1];
    if (exec.status === "rejected") {
      // EXECABORT: the reason is the first command that was refused while queued.
      const queued = results.slice(0, -1).find((r) => r.status === "rejected") as
        | PromiseRejectedResult
        | undefined;
      throw queued?.reason ?? exec.reason;
    }
    const replies = exec.value;
    if (!Array.isArray(replies)) {
      throw new ConnectionError(`Transaction on ${this.#where} was discarded`);
    }
    return replies.map((reply): PromiseSettledResult<unknown> =>
      reply instanceof ErrorReply
        ? { status: "rejected", reason: new RedisReplyError(reply.message, { cause: reply }) }
        : { status: "fulfilled", value: reply }
    );
  }

  /** Closes the connection now; commands in flight fail with a ConnectionError. */
  close(): void {
    this.#closed = true;
    if (this.#opening) destroyQuietly(this.#opening);
    if (this.#healthTimer !== undefined) clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
    this.#drop();
  }

  async #switchDb(db: number): Promise<void> {
    while (this.#inflight > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    const client = await this.#ensure(); // rejects once the connection is closed
    await this.#exec(client, ["SELECT", String(db)], {});
    this.#db = db;
  }

  #ensure(): Promise<Client> {
    if (this.#closed) {
      return Promise.reject(new ConnectError(`Connection to ${this.#where} is closed`));
    }
    if (this.#client) return Promise.resolve(this.#client);
    if (this.#connecting) return this.#connecting;
    this.#connecting = this.#open().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #open(): Promise<Client> {
    const o = this.#options;
    const client = createClient({
      socket: {
        host: o.host,
        port: o.port,
        connectTimeout: o.commandTimeoutMs,
        reconnectStrategy: false,
        noDelay: true,
        keepAlive: true,
      },
      username: o.username,
      password: o.password,
      database: this.#db === 0 ? undefined : this.#db,
      name: o.clientName,
      disableOfflineQueue: true,
    });
    client.on("error", () => {
      // Every failure also rejects the command that saw it. Without a
      // reconnect strategy node-redis closes the client on a socket error
      // without emitting "end": forget it, so the next command reconnects.
      if (this.#client === client && !client.isOpen) this.#client = null;
    });
    client.on("end", () => {
      if (this.#client === client) this.#client = null;
    });
    try {
      this.#opening = client;
      const handshake = async () => {
        await client.connect();
        if (o.trackClientId) this.#clientId = String(await client.sendCommand(["CLIENT", "ID"]));
      };
      await withDeadline(handshake(), o.commandTimeoutMs, () => destroyQuietly(client));
    } catch (error) {
      this.#opening = null;
      destroyQuietly(client);
      if (this.#closed) throw new ConnectError(`Connection to ${this.#where} is closed`);
      if (isPermissionReply(error)) {
        const reply = (error as Error).message.split("\n")[0];
        const err = new AuthError(
          `Permission denied on ${this.#where} while connecting: ${reply} (the ACL user needs CLIENT SETNAME/ID, SELECT and the stream commands)`,
          { cause: error },
        );
        o.health?.reportDown(err);
        throw err;
      }
      if (isAuthReply(error)) {
        const reply = (error as Error).message.split("\n")[0];
        const err = new AuthError(`Authentication to ${this.#where} failed: ${reply}`, {
          cause: error,
        });
        o.health?.reportDown(err);
        throw err;
      }
      if (error instanceof ErrorReply && /DB index is out of range|LOADING/.test(error.message)) {
        // A DB the server does not have (callers tell it apart), or a server still loading.
        const err = new RedisReplyError(error.message, { cause: error });
        o.health?.reportDown(err);
        throw err;
      }
      const err = error instanceof DeadlineError
        ? new ConnectError(
          `Cannot connect to ${this.#where}: no answer within ${o.commandTimeoutMs} ms`,
        )
        : error instanceof ErrorReply
        // Any other refusal during the handshake (e.g. max number of clients reached) passes.
        ? new ConnectError(`Cannot connect to ${this.#where}: ${error.message}`, { cause: error })
        : new ConnectError(
          `Cannot connect to ${this.#where}: ${describeSocketError(error as Error)}`,
          {
            cause: error,
          },
        );
      o.health?.reportDown(err);
      throw err;
    }
    this.#opening = null;
    if (this.#closed) {
      destroyQuietly(client);
      throw new ConnectError(`Connection to ${this.#where} is closed`);
    }
    this.#client = client;
    this.#lastActivity = Date.now();
    o.health?.reportUp(this.#everConnected);
    this.#everConnected = true;
    return client;
  }

  async #exec(
    client: Client,
    args: readonly RedisArg[],
    options: SendOptions,
    allowanceMs = 0,
  ): Promise<unknown> {
    this.#inflight++;
    this.#lastActivity = Date.now();
    const deadline = this.#options.commandTimeoutMs + (options.blockMs ?? 0) + allowanceMs;
    try {
      const reply = client.sendCommand(
        args.map(toClientArg),
        options.buffers ? BUFFER_MAPPING : undefined,
      );
      return await withDeadline(reply, deadline, () => {
        if (this.#client === client) this.#drop();
        else destroyQuietly(client);
      });
    } catch (error) {
      if (error instanceof DeadlineError) {
        const err = new TimeoutError(
          `No reply from ${this.#where} within ${deadline} ms to ${
            commandName(args)
          }; connection closed`,
        );
        this.#options.health?.reportDown(err);
        throw err;
      }
      if (error instanceof ErrorReply) throw new RedisReplyError(error.message, { cause: error });
      if (error instanceof TypeError || error instanceof RangeError) throw error; // a bug, not an outage
      if (this.#client === client) this.#drop();
      const err = toRedisError(error, this.#where);
      if (!this.#closed) this.#options.health?.reportDown(err);
      throw err;
    } finally {
      this.#inflight--;
      this.#lastActivity = Date.now();
      if (this.#inflight === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }

  #drop(): void {
    const client = this.#client;
    this.#client = null;
    this.#db = this.#options.db;
    if (client) destroyQuietly(client);
  }

  #healthCheck(): void {
    if (!this.#client || this.#inflight > 0 || this.#gate) return;
    if (Date.now() - this.#lastActivity < this.#options.healthCheckIntervalMs) return;
    this.send(undefined, ["PING"]).catch(() => {
      // The failure was reported to the server's health; the next command reconnects.
    });
  }
}

class DeadlineError extends Error {
  constructor() {
    super("deadline exceeded");
    this.name = "DeadlineError";
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new DeadlineError());
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Time granted on top of the command timeout to transfer `bytes`: a link of
 * 1 MB/s at least, so big batches are not taken for a hung connection.
 */
function transferAllowanceMs(bytes: number): number {
  return Math.floor(bytes / 1000);
}

function argBytes(args: readonly RedisArg[]): number {
  let n = 0;
  for (const arg of args) n += typeof arg === "string" ? arg.length : arg.byteLength;
  return n;
}

/** node-redis takes strings and Buffers only. */
function toClientArg(arg: RedisArg): string | Buffer {
  if (typeof arg === "string" || arg instanceof Buffer) return arg;
  return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
}

function commandName(args: readonly RedisArg[]): string {
  const first = args[0];
  return typeof first === "string" ? first.toUpperCase() : "command";
}
