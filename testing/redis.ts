/**
 * Real `redis-server` processes for tests, and a small client to talk to
 * them. No mocks: every test that needs Redis starts its own server on a free
 * loopback port, in a fresh temporary directory.
 *
 * @example
 * ```ts
 * import { connect, RedisServer } from "./redis.ts";
 *
 * Deno.test("ping", async () => {
 *   await using server = await RedisServer.start();
 *   await using client = await connect(server);
 *   console.log(await client.send(["PING"])); // "PONG"
 * });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { RESP_TYPES } from "@redis/client";
import redisClientModule from "@redis/client/dist/lib/client/index.js";
import { collectText } from "./cli.ts";

const LOOPBACK = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 1_000;
/** A starting server is probed every 5 ms for its first 200 ms (most are up in 20), then every 50. */
const EARLY_PROBE_PAUSE_MS = 5;
const EARLY_PROBES_MS = 200;
const PROBE_PAUSE_MS = 50;
const START_ATTEMPTS = 5;
const LOG_TAIL_LINES = 30;
const NOT_FOUND_MESSAGE =
  'redis-server not found: install it with "apt-get install -y redis-server" (or run scripts/setup.sh)';

/** Ports handed out by {@linkcode freePort} in this process, never handed out twice. */
const handedOutPorts = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it for
 * a listener that is closed at once. Never returns the same port twice in one
 * process; {@linkcode RedisServer.start} also retries with another port if the
 * chosen one was taken meanwhile by another process.
 */
export function freePort(): number {
  for (let attempt = 0;; attempt++) {
    const listener = Deno.listen({ hostname: LOOPBACK, port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    if (!handedOutPorts.has(port) || attempt >= 50) {
      handedOutPorts.add(port);
      return port;
    }
  }
}

/** Options for {@linkcode RedisServer.start}. */
export interface RedisServerOptions {
  /**
   * Extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`.
   * @default {[]}
   */
  args?: string[];
  /**
   * Persist every write: `--appendonly yes --appendfsync always`, so that the
   * data survives {@linkcode RedisServer.stop}, and even
   * {@linkcode RedisServer.kill}, followed by {@linkcode RedisServer.start}.
   * @default {false}
   */
  appendOnly?: boolean;
  /**
   * The port to listen on, on 127.0.0.1.
   * @default {a free loopback port (see freePort)}
   */
  port?: number;
}

/** `redis-server` exited during start-up because its port was taken. */
class PortInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortInUseError";
  }
}

/**
 * A real `redis-server` process on 127.0.0.1, with its data and its log
 * (`redis.log`) in a fresh temporary directory. `await using` it: disposal
 * kills the server and removes the directory.
 */
export class RedisServer implements AsyncDisposable {
  /** The address the server listens on: always `"127.0.0.1"`. */
  readonly host: string = LOOPBACK;
  /** The server's own temporary directory (AOF files, `redis.log`). */
  readonly dir: string;
  #port: number;
  readonly #portChosen: boolean;
  readonly #args: string[];
  readonly #appendOnly: boolean;
  #child: Deno.ChildProcess | null = null;
  #exited: Promise<Deno.CommandStatus | null> = Promise.resolve(null);
  #running = false;
  #startedOnce = false;
  #disposed = false;
  #stderr = "";

  private constructor(dir: string, options: RedisServerOptions) {
    this.dir = dir;
    this.#portChosen = options.port === undefined;
    this.#port = options.port ?? freePort();
    this.#args = [...(options.args ?? [])];
    this.#appendOnly = options.appendOnly ?? false;
  }

  /**
   * Starts a server in a new temporary directory and waits (at most 10 s)
   * until it answers PING and has loaded its data.
   *
   * @throws {Error} if `redis-server` is not on PATH, or does not become
   * ready; the message then ends with the tail of the server's log.
   */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-redis-" });
    const server = new RedisServer(dir, options);
    try {
      await server.start();
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw error;
    }
    return server;
  }

  /** The TCP port the server listens on. */
  get port(): number {
    return this.#port;
  }

  /** Whether the `redis-server` process is alive. */
  get running(): boolean {
    return this.#running;
  }

  /** The path of the server's log file, inside {@linkcode RedisServer.dir}. */
  get logPath(): string {
    return join(this.dir, "redis.log");
  }

  /**
   * Starts the server again, on the same port and in the same directory (so
   * that AOF data survives), and waits (at most 10 s) until it answers PING
   * and is no longer LOADING.
   */
  async start(): Promise<void> {
    if (this.#disposed) throw new Error(`redis-server on port ${this.#port} was disposed`);
    if (this.#running) throw new Error(`redis-server on port ${this.#port} is already running`);
    for (let attempt = 1;; attempt++) {
      try {
        await this.#spawnAndWait();
        this.#startedOnce = true;
        return;
      } catch (error) {
        const mayMove = this.#portChosen && !this.#startedOnce && attempt < START_ATTEMPTS;
        if (!(error instanceof PortInUseError) || !mayMove) throw error;
        this.#port = freePort();
      }
    }
  }

  /** Stops the server if it runs ({@linkcode RedisServer.stop}), then starts it again. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Stops the server gracefully (SIGTERM: the AOF is flushed, no RDB is
   * saved) and waits for it to exit; SIGKILL after 10 s. Does nothing if it
   * is not running.
   */
  async stop(): Promise<void> {
    if (!this.#running) {
      await this.#exited;
      return;
    }
    this.#signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
    });
    try {
      const result = await Promise.race([this.#exited.then(() => false), timedOut]);
      if (result) this.#signal("SIGKILL");
    } finally {
      clearTimeout(timer);
    }
    await this.#exited;
  }

  /** Kills the server at once (SIGKILL) and waits for it to exit. Does nothing if it is not running. */
  async kill(): Promise<void> {
    if (this.#running) this.#signal("SIGKILL");
    await this.#exited;
  }

  /** Kills the server if it runs, and removes its directory. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    await this.kill();
    await Deno.remove(this.dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child?.kill(signal);
    } catch {
      // Already exited.
    }
  }

  #commandArgs(): string[] {
    return [
      "--port",
      String(this.#port),
      "--bind",
      this.host,
      "--dir",
      this.dir,
      "--save",
      "",
      "--appendonly",
      this.#appendOnly ? "yes" : "no",
      ...(this.#appendOnly ? ["--appendfsync", "always"] : []),
      "--daemonize",
      "no",
      "--protected-mode",
      "no",
      "--logfile",
      this.logPath,
      ...this.#args,
    ];
  }

  /** The value of `--requirepass` in the extra arguments, if any. */
  #password(): string | undefined {
    let password: string | undefined;
    this.#args.forEach((arg, i) => {
      if (arg === "--requirepass") password = this.#args[i + 1];
      else if (arg.startsWith("--requirepass ")) password = arg.slice("--requirepass ".length);
    });
    return password;
  }

  async #spawnAndWait(): Promise<void> {
    const logOffset = await fileSize(this.logPath);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("redis-server", {
        args: this.#commandArgs(),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(NOT_FOUND_MESSAGE, { cause: error });
      }
      throw error;
    }
    this.#child = child;
    this.#running = true;
    this.#stderr = "";
    const drained = collectText(child.stderr, (text) => {
      this.#stderr += text;
    });
    const status = child.status.then((status) => {
      this.#running = false;
      return status;
    });
    this.#exited = Promise.all([status, drained]).then(([status]) => status);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    const password = this.#password();
    let last = "no answer";
    const early = Date.now() + EARLY_PROBES_MS;
    for (;;) {
      if (!this.#running) {
        const exit = await this.#exited;
        const log = await this.#logSince(logOffset);
        const what = `redis-server on port ${this.#port} exited during start-up (${
          describeStatus(exit)
        })`;
        if (/Address already in use/i.test(log)) throw new PortInUseError(`${what}\n${tail(log)}`);
        throw new Error(`${what}:\n${tail(log)}`);
      }
      const { state, pid } = await probe(this.host, this.#port, password);
      last = state;
      // Another process may answer on the port: then this one will exit, unable to bind.
      if (state === "ready" && pid === child.pid) return;
      if (state === "noauth" && (await this.#logSince(logOffset)).includes("Ready to accept")) {
        return;
      }
      if (Date.now() >= deadline) {
        await this.kill();
        const log = await this.#logSince(logOffset);
        throw new Error(
          `redis-server on port ${this.#port} not ready after ${
            READY_TIMEOUT_MS / 1000
          } s (last probe: ${last}):\n${tail(log)}`,
        );
      }
      await delay(Date.now() < early ? EARLY_PROBE_PAUSE_MS : PROBE_PAUSE_MS);
    }
  }

  /** This start's log: redis.log from `offset`, then what the process wrote to stderr. */
  async #logSince(offset: number): Promise<string> {
    let log = "";
    try {
      const bytes = await Deno.readFile(this.logPath);
      log = new TextDecoder().decode(bytes.subarray(offset));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return this.#stderr ? `${log}${log.endsWith("\n") || !log ? "" : "\n"}${this.#stderr}` : log;
  }
}

type ProbeState = "ready" | "loading" | "noauth" | "refused" | "no answer" | "other";

/**
 * Connects, sends (AUTH,) PING, INFO server and QUIT, reads until the server
 * closes the connection, and tells what it answered, and which process
 * answered (`INFO`'s `process_id`): another server may hold the port.
 */
async function probe(
  host: string,
  port: number,
  password?: string,
): Promise<{ state: ProbeState; pid?: number }> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port });
  } catch {
    return { state: "refused" };
  }
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, PROBE_TIMEOUT_MS);
  let text = "";
  try {
    const commands = [["PING"], ["INFO", "server"], ["QUIT"]];
    if (password !== undefined) commands.unshift(["AUTH", password]);
    await writeAll(conn, new TextEncoder().encode(commands.map(encodeCommand).join("")));
    const buffer = new Uint8Array(16_384);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    // Closed by the timer, or reset: judge what was read.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
  const pid = text.match(/\r\nprocess_id:(\d+)\r\n/)?.[1];
  if (text.includes("+PONG\r\n") && pid) return { state: "ready", pid: Number(pid) };
  if (text.includes("-LOADING")) return { state: "loading" };
  if (/-(NOAUTH|WRONGPASS)/.test(text)) return { state: "noauth" };
  return { state: text ? "other" : "no answer" };
}

function encodeCommand(args: string[]): string {
  const encoder = new TextEncoder();
  return `*${args.length}\r\n${
    args.map((arg) => `$${encoder.encode(arg).length}\r\n${arg}\r\n`).join("")
  }`;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
}

function describeStatus(status: Deno.CommandStatus | null): string {
  if (!status) return "not started";
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}

function tail(text: string, lines = LOG_TAIL_LINES): string {
  const all = text.trimEnd().split("\n");
  const shown = all.slice(-lines).join("\n");
  return all.length > lines ? `...\n${shown}` : shown || "(the log is empty)";
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * The database to SELECT.
   * @default {0}
   */
  db?: number;
  /**
   * The password (AUTH).
   * @default {no AUTH}
   */
  password?: string;
  /**
   * The ACL user name, with `password`.
   * @default {"default"}
   */
  username?: string;
  /**
   * Milliseconds a command may wait for its reply before it fails (so that
   * a hung server fails the test instead of stalling the run).
   * @default {30000}
   */
  commandTimeoutMs?: number;
}

/** Stream entries as `TestClient.xrangeAll` returns them: IDs and raw field/value bytes, in order. */
export type Entries = Array<[string, Uint8Array[]]>;

/** A Redis argument: a string, or raw bytes. */
export type RedisArg = string | Uint8Array;

type NodeRedisClient = ReturnType<typeof createNodeRedisClient>;

const BUFFER_REPLIES = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/**
 * A node-redis client connected to a test server, with no reconnection and
 * no offline queue: commands fail at once when the server is gone. Made by
 * {@linkcode connect}; `await using` it.
 */
export class TestClient implements AsyncDisposable {
  readonly #client: NodeRedisClient;
  readonly #where: string;
  readonly #commandTimeoutMs: number;
  #closed = false;

  /** Use {@linkcode connect}. */
  constructor(client: NodeRedisClient, where = "redis", commandTimeoutMs = 30_000) {
    this.#client = client;
    this.#where = where;
    this.#commandTimeoutMs = commandTimeoutMs;
  }

  /** Whether the connection is open. */
  get isOpen(): boolean {
    return !this.#closed && this.#client.isOpen;
  }

  /**
   * Sends a command; bulk strings in the reply come back as (UTF-8) strings.
   * An error reply rejects with node-redis' `ErrorReply`, whose message is
   * the server's (e.g. `WRONGTYPE Operation against a key...`).
   */
  send(args: readonly RedisArg[]): Promise<unknown> {
    return this.#timed(args, this.#client.sendCommand(args.map(toArgument)));
  }

  /** Sends a command; bulk strings in the reply come back as Buffers, byte for byte. */
  sendBuffers(args: readonly RedisArg[]): Promise<unknown> {
    return this.#timed(args, this.#client.sendCommand(args.map(toArgument), BUFFER_REPLIES));
  }

  /**
   * The fields of `INFO section` (e.g. `stats`, `commandstats`), as text.
   * `info("stats").get("total_connections_received")` counts every
   * connection the server accepted since it started.
   */
  async info(section: string): Promise<Map<string, string>> {
    const text = String(await this.send(["INFO", section]));
    const fields = new Map<string, string>();
    for (const line of text.split("\r\n")) {
      const at = line.indexOf(":");
      if (at > 0 && !line.startsWith("#")) fields.set(line.slice(0, at), line.slice(at + 1));
    }
    return fields;
  }

  /** `INFO stats` total_connections_received: connections the server accepted since it started. */
  async connectionsReceived(): Promise<number> {
    const value = (await this.info("stats")).get("total_connections_received");
    if (value === undefined) throw new Error("INFO stats has no total_connections_received");
    return Number(value);
  }

  /** How many times the server ran `command` since it started (INFO commandstats; 0 if never). */
  async commandCalls(command: string): Promise<number> {
    const value = (await this.info("commandstats")).get(`cmdstat_${command.toLowerCase()}`);
    return Number(/(?:^|,)calls=(\d+)/.exec(value ?? "")?.[1] ?? 0);
  }

  /** `reply`, or a rejection once it has not arrived within the command timeout. */
  #timed<T>(args: readonly RedisArg[], reply: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reply.catch(() => {}); // it may still fail later (at close): nobody listens then
        const name = typeof args[0] === "string" ? args[0] : "a command";
        reject(
          new Error(
            `Timed out after ${this.#commandTimeoutMs} ms waiting for the reply to ${name} from ${this.#where}`,
          ),
        );
      }, this.#commandTimeoutMs);
    });
    return Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * XADD `key` `id` with `fields`: an object, or a flat `[field, value, ...]`
   * list (for repeated or binary field names). Returns the entry's id.
   */
  async xadd(
    key: RedisArg,
    id: string,
    fields: Record<string, RedisArg> | readonly RedisArg[],
  ): Promise<string> {
    const flat = Array.isArray(fields)
      ? fields as readonly RedisArg[]
      : Object.entries(fields).flat();
    return String(await this.send(["XADD", key, id, ...flat]));
  }

  /**
   * Every entry of the stream at `key`, oldest first, read in pages of 1000:
   * `[id, [field, value, field, value, ...]]` with the raw bytes of fields
   * and values. `[]` if the key does not exist.
   */
  async xrangeAll(key: RedisArg): Promise<Array<[string, Uint8Array[]]>> {
    const entries: Array<[string, Uint8Array[]]> = [];
    let start = "-";
    for (;;) {
      const page = await this.sendBuffers(["XRANGE", key, start, "+", "COUNT", "1000"]) as Array<
        [Uint8Array, Uint8Array[] | null]
      >;
      for (const [id, fields] of page) {
        entries.push([Buffer.from(id).toString("latin1"), (fields ?? []).map(toUint8Array)]);
      }
      if (page.length < 1000) return entries;
      start = `(${entries[entries.length - 1][0]}`;
    }
  }

  /** CLIENT LIST, one record per connection (`id`, `addr`, `name`, `cmd`, `user`...). */
  async clientList(): Promise<Array<Record<string, string>>> {
    const text = String(await this.send(["CLIENT", "LIST"]));
    return text.split("\n").map((line) => line.trim()).filter((line) => line).map((line) => {
      const record: Record<string, string> = {};
      for (const pair of line.split(" ")) {
        const at = pair.indexOf("=");
        if (at > 0) record[pair.slice(0, at)] = pair.slice(at + 1);
      }
      return record;
    });
  }

  /** Closes the connection at once (pending commands are rejected). Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#client.isOpen) this.#client.destroy();
    }
    return Promise.resolve();
  }

  /** Same as {@linkcode TestClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects a {@linkcode TestClient} to `server` (no reconnection, no offline
 * queue, 5 s connect timeout).
 *
 * @throws the node-redis error if the connection or the authentication
 * fails (e.g. `WRONGPASS invalid username-password pair...`); nothing is left
 * open then.
 */
export async function connect(
  server: RedisServer | { host: string; port: number },
  options: ConnectOptions = {},
): Promise<TestClient> {
  const client = createNodeRedisClient(server, options);
  // node-redis also emits every failure as an "error" event; the commands reject anyway.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    if (client.isOpen) client.destroy();
    throw error;
  }
  return new TestClient(client, `${server.host}:${server.port}`, options.commandTimeoutMs);
}

/**
 * node-redis' client factory with one configuration for every client.
 * `createClient(options)` keys its cache of client classes by the whole
 * options (the port included) and keeps one: a client of another server
 * than the last built a new class of every command, 10-200 ms each time.
 */
const newNodeRedisClient = redisClientModule.default.factory({});

function createNodeRedisClient(
  server: { host: string; port: number },
  options: ConnectOptions,
) {
  return newNodeRedisClient({
    socket: {
      host: server.host,
      port: server.port,
      reconnectStrategy: false,
      connectTimeout: 5000,
    },
    disableOfflineQueue: true,
    database: options.db,
    password: options.password,
    username: options.password === undefined ? undefined : options.username,
  });
}

function toArgument(arg: RedisArg): string | Buffer {
  if (typeof arg === "string") return arg;
  return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
}

function toUint8Array(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
