/**
 * One connection to a Redis server, speaking RESP2 itself over a TCP socket:
 * commands are encoded into one buffer and leave in one write per tick,
 * replies are parsed straight from the socket's buffers. On top of that it
 * gives what a replicator needs: a hard deadline on every reply (a hung
 * connection is closed, not waited on for ever; one timer per connection),
 * safe switching between DBs on a pipelined connection, binary replies,
 * errors mapped to the service's classes, and a lazy reconnect on the next
 * command.
 *
 * @module
 */
import { ConnectError, ConnectionError, RedisReplyError } from "../errors.ts";
import { clientName, serverAddress } from "./endpoint.ts";
import type { RespValue } from "./resp_parser.ts";
import type { RedisArg, RespWriter } from "./resp_writer.ts";
import type { NodeConnection } from "./client.ts";
import type { PendingOptions, Socket } from "./_socket.ts";
import { openSocket } from "./_open_socket.ts";
import type { EndpointLike, RedisConnectionOptions, SendOptions } from "./connection_options.ts";

export type { EndpointLike, RedisConnectionOptions, SendOptions } from "./connection_options.ts";
import {
  commandName,
  connectError,
  encodeAll,
  execReplies,
  hintsLayoutChange,
  pendingOptions,
  settled,
} from "./_outcomes.ts";

export { execReplies, serverAddress };

export type { RedisArg } from "./resp_writer.ts";

const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/**
 * A lazily (re)connecting Redis connection. Commands on the current DB are
 * pipelined; a command for another DB waits until the connection is idle,
 * then SELECTs (so no command can ever run in the wrong DB, even if SELECT
 * fails).
 */
export class RedisConnection implements NodeConnection {
  readonly cluster = false;
  readonly #endpoint: EndpointLike;
  readonly #options: RedisConnectionOptions;
  readonly #where: string;
  readonly #timeoutMs: number;
  #socket: Socket | null = null;
  #connecting: Promise<Socket> | null = null;
  #openController: AbortController | null = null;
  #db: number;
  #idleWaiters: Array<() => void> = [];
  #gate: Promise<void> | null = null;
  #closed = false;
  #lastActivity = Date.now();
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #clientId: string | undefined;
  #everConnected = false;
  #generation = 0;
  /** Aborted by close() only (the connect deadline has its own controller). */
  readonly #closing = new AbortController();

  /**
   * @param endpoint where to connect and who to be (see `endpointFor`).
   * @param options how this connection is used.
   */
  constructor(endpoint: EndpointLike, options: RedisConnectionOptions = {}) {
    this.#endpoint = endpoint;
    this.#options = { ...options };
    this.#db = options.db ?? 0;
    this.#timeoutMs = endpoint.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#where = `${endpoint.role} "${serverAddress(endpoint)}"`;
    const every = endpoint.healthCheckIntervalMs ?? 0;
    if (every > 0) {
      const tick = Math.max(100, Math.min(every, 60_000));
      this.#healthTimer = setInterval(() => this.#healthCheck(every), tick);
    }
  }

  /**
   * Names the connection `redis-stream-sync-<name>` from now on (CLIENT
   * SETNAME now if it is open, and at every reconnect).
   */
  async rename(name: string): Promise<void> {
    this.#options.name = name;
    if (this.#socket) await this.send(undefined, ["CLIENT", "SETNAME", clientName(name)]);
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
    return this.#socket?.inflight ?? 0;
  }

  /** The server's CLIENT ID of the current connection (with `trackClientId`). */
  get clientId(): string | undefined {
    return this.#socket ? this.#clientId : undefined;
  }

  /** Sockets opened so far: while it stays the same, commands went over one socket. */
  get generation(): number {
    return this.#generation;
  }

  /** Opens the connection now (otherwise the first command does). */
  async connect(): Promise<void> {
    await this.#ensure();
  }

  /**
   * Sends one command on `db` (undefined: any) and returns its reply. Throws
   * {@linkcode RedisReplyError} for an error reply, {@linkcode ConnectionError}
   * (or a timeout) when the connection failed: the next command reopens it.
   */
  async send(
    db: number | undefined,
    args: readonly RedisArg[],
    options: SendOptions = {},
  ): Promise<unknown> {
    const name = options.name ?? commandName(args);
    const [reply] = await this.batch(db, 1, (w) => w.command(args), { ...options, name });
    if (reply instanceof RedisReplyError) throw reply;
    return reply;
  }

  /**
   * Sends `count` commands, encoded by `encode` (synchronously) in one pipeline on
   * `db`: their replies in order, error replies as values. Throws when the connection failed.
   */
  batch(
    db: number | undefined,
    count: number,
    encode: (writer: RespWriter) => void,
    options: SendOptions = {},
  ): Promise<RespValue[]> {
    const sent = this.#onDb(
      db,
      (socket) => socket.send(count, encode, this.#pending(options, count)),
    );
    return this.#endpoint.sentinel || this.#options.onLayoutHint
      ? sent.then((replies) => this.#inspect(replies))
      : sent;
  }

  /** READONLY behind sentinels: a demoted master, ask them again; a cluster's redirection: said. */
  #inspect(replies: RespValue[]): RespValue[] {
    for (const r of replies) {
      if (!(r instanceof RedisReplyError)) continue;
      if (r.code === "READONLY" && this.#endpoint.sentinel) {
        this.#drop(
          new ConnectionError(`${this.#where} became a replica; asking the sentinels again`),
        );
      } else if (hintsLayoutChange(r)) this.#options.onLayoutHint?.();
    }
    return replies;
  }

  #pending(options: SendOptions, count: number): PendingOptions {
    return pendingOptions(options, { count, timeoutMs: this.#timeoutMs });
  }

  /** Sends `commands` in one pipeline on `db`: each outcome in order; throws only when the connection failed. */
  async pipeline(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    if (commands.length === 0) return [];
    const replies = await this.batch(db, commands.length, (w) => encodeAll(w, commands), options);
    return replies.map(settled);
  }

  /**
   * Runs `commands` as one MULTI/EXEC on `db` (one pipeline): refused as a
   * whole (thrown, e.g. OOM), or each outcome in order (the server ran them back to back).
   */
  async transaction(
    db: number | undefined,
    commands: readonly (readonly RedisArg[])[],
    options: SendOptions = {},
  ): Promise<PromiseSettledResult<unknown>[]> {
    const replies = await this.batch(
      db,
      commands.length + 2,
      (w) => encodeAll(w, [["MULTI"], ...commands, ["EXEC"]]),
      options,
    );
    return execReplies(replies, this.#where).map(settled);
  }

  /** This connection: one server holds every key (see `RedisClient`). */
  connectionFor(_key?: RedisArg): RedisConnection {
    return this;
  }
  masters(): Promise<RedisConnection[]> {
    return Promise.resolve([this]);
  }
  nodeOf(_key: RedisArg): string {
    return "";
  }

  /** Closes the connection now; commands in flight fail with a ConnectionError. */
  close(): void {
    this.#closed = true;
    this.#closing.abort();
    this.#openController?.abort();
    if (this.#healthTimer !== undefined) clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
    this.#drop(new ConnectionError(`Connection to ${this.#where} is closed`));
  }

  /**
   * Waits until the connection is open and on `db` (switching DB only when
   * no command is in flight), then calls `send` with the socket. `send`
   * must issue its commands synchronously.
   */
  async #onDb<T>(db: number | undefined, send: (socket: Socket) => Promise<T>): Promise<T> {
    while (true) {
      if (this.#closed) throw new ConnectError(`Connection to ${this.#where} is closed`);
      if (this.#gate) {
        await this.#gate.catch(() => {});
        continue;
      }
      if (db === undefined || db === this.#db) {
        const socket = await this.#ensure();
        // A DB switch or a reconnect may have happened while we waited.
        if (this.#gate || socket !== this.#socket || (db !== undefined && db !== this.#db)) {
          continue;
        }
        this.#lastActivity = Date.now();
        return await send(socket);
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

  async #switchDb(db: number): Promise<void> {
    while ((this.#socket?.inflight ?? 0) > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    const socket = await this.#ensure(); // rejects once the connection is closed
    const [reply] = await socket.send(
      1,
      (w) => w.command(["SELECT", String(db)]),
      this.#pending({ name: "SELECT" }, 1),
    );
    if (reply instanceof RedisReplyError) throw reply;
    this.#db = db;
  }

  #ensure(): Promise<Socket> {
    if (this.#closed) {
      return Promise.reject(new ConnectError(`Connection to ${this.#where} is closed`));
    }
    if (this.#socket) return Promise.resolve(this.#socket);
    if (this.#connecting) return this.#connecting;
    this.#connecting = this.#open().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #open(): Promise<Socket> {
    const controller = new AbortController();
    this.#openController = controller;
    let opened: { socket: Socket; clientId?: string };
    try {
      opened = await openSocket(this.#endpoint, {
        where: this.#where,
        timeoutMs: this.#timeoutMs,
        db: this.#db,
        connection: this.#options,
        controller,
        closing: this.#closing.signal,
        onIdle: () => this.#onIdle(),
        onLost: (s, error) => this.#lost(s, error),
      });
    } catch (error) {
      throw this.#openError(error, controller.signal.aborted);
    } finally {
      if (this.#openController === controller) this.#openController = null;
    }
    const { socket } = opened;
    if (this.#closed) {
      socket.destroy(new ConnectError(`Connection to ${this.#where} is closed`));
      throw new ConnectError(`Connection to ${this.#where} is closed`);
    }
    if (opened.clientId !== undefined) this.#clientId = opened.clientId;
    this.#generation++;
    this.#socket = socket;
    this.#lastActivity = Date.now();
    this.#options.health?.reportUp(this.#everConnected);
    this.#everConnected = true;
    return socket;
  }

  #openError(error: unknown, timedOut: boolean): Error {
    if (this.#closed) return new ConnectError(`Connection to ${this.#where} is closed`);
    const err = connectError(error, { where: this.#where, timedOut, timeoutMs: this.#timeoutMs });
    this.#options.health?.reportDown(err);
    this.#options.onLayoutHint?.();
    return err;
  }

  /** The socket failed (or timed out): forget it; the next command reconnects. */
  #lost(socket: Socket, error: Error): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    this.#db = this.#options.db ?? 0;
    if (!this.#closed) {
      this.#options.health?.reportDown(error);
      this.#options.onLayoutHint?.();
    }
    this.#onIdle();
  }

  #drop(error: Error): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#db = this.#options.db ?? 0;
    socket?.destroy(error);
  }

  #onIdle(): void {
    this.#lastActivity = Date.now();
    if ((this.#socket?.inflight ?? 0) > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #healthCheck(every: number): void {
    if (!this.#socket || this.#socket.inflight > 0 || this.#gate) return;
    if (Date.now() - this.#lastActivity < every) return;
    this.send(undefined, ["PING"]).catch(() => {
      // The failure was reported to the server's health; the next command reconnects.
    });
  }
}
