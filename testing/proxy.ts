/**
 * A small TCP proxy on 127.0.0.1 for network fault tests: it forwards every
 * connection to a target (a test `redis-server`) and can cut the
 * connections, black-hole them (a hang: nothing forwarded, nothing closed)
 * or add latency. Everything it opens is closed on disposal, so Deno's
 * resource and op sanitizers stay on.
 *
 * @example
 * ```ts
 * import { TcpProxy } from "./_proxy.ts";
 * import { RedisServer } from "./redis.ts";
 *
 * Deno.test("through a proxy", async () => {
 *   await using server = await RedisServer.start();
 *   await using proxy = await TcpProxy.start(server);
 *   // point the client at 127.0.0.1:proxy.port, then:
 *   proxy.cut();             // every current connection is closed, both sides
 *   proxy.blackhole(true);   // connections hang (accepted, nothing forwarded)
 *   proxy.blackhole(false);  // forwarding resumes, held data included
 *   proxy.delay(50);         // 50 ms more on every forwarded chunk
 * });
 * ```
 *
 * @module
 */

const LOOPBACK = "127.0.0.1";
const CHUNK_SIZE = 64 * 1024;

/** One chunk read from one side, to be written to the other at `due` (ms since epoch). */
interface Chunk {
  data: Uint8Array;
  due: number;
}

/**
 * One direction of a connection pair: a read loop that queues chunks (with
 * their due time) and a write loop that forwards them, in order, once they
 * are due and the proxy is not black-holed.
 */
class Pipe {
  readonly #from: Deno.Conn;
  readonly #to: Deno.Conn;
  readonly #proxy: TcpProxy;
  readonly #pair: Pair;
  readonly #queue: Chunk[] = [];
  #ended = false;

  constructor(from: Deno.Conn, to: Deno.Conn, proxy: TcpProxy, pair: Pair) {
    this.#from = from;
    this.#to = to;
    this.#proxy = proxy;
    this.#pair = pair;
  }

  /** Chunks read and not yet forwarded (held by a blackhole or a delay). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Runs both loops until the pair closes. */
  run(): Promise<void> {
    return Promise.all([this.#readLoop(), this.#writeLoop()]).then(() => {});
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(CHUNK_SIZE);
    try {
      while (!this.#pair.closed) {
        const n = await this.#from.read(buffer);
        if (n === null) break;
        this.#queue.push({ data: buffer.slice(0, n), due: Date.now() + this.#proxy.delayMs });
        this.#pair.notify();
      }
    } catch {
      // Closed by cut(), close(), or reset by the peer.
    }
    this.#ended = true;
    this.#pair.notify();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (!this.#pair.closed) {
        const chunk = this.#queue[0];
        if (!chunk) {
          if (this.#ended) break;
          await this.#pair.changed();
          continue;
        }
        if (this.#proxy.blackholed) {
          await this.#pair.changed();
          continue;
        }
        const wait = chunk.due - Date.now();
        if (wait > 0) {
          await this.#pair.changed(wait);
          continue;
        }
        this.#queue.shift();
        let written = 0;
        while (written < chunk.data.length) {
          written += await this.#to.write(chunk.data.subarray(written));
        }
      }
    } catch {
      // Closed by cut(), close(), or reset by the peer.
    }
    // One side ended (and what it sent is forwarded) or failed: close both.
    this.#pair.close();
  }
}

/** A client connection and its upstream connection. */
class Pair {
  readonly #client: Deno.Conn;
  readonly #upstream: Deno.Conn;
  #closed = false;
  #waiters: Array<() => void> = [];
  readonly done: Promise<void>;
  /** The client-to-upstream direction. */
  readonly up: Pipe;

  constructor(client: Deno.Conn, upstream: Deno.Conn, proxy: TcpProxy) {
    this.#client = client;
    this.#upstream = upstream;
    const up = new Pipe(client, upstream, proxy, this);
    const down = new Pipe(upstream, client, proxy, this);
    this.up = up;
    this.done = Promise.all([up.run(), down.run()]).then(() => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Wakes every loop waiting in {@linkcode Pair.changed}. */
  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at the next {@linkcode Pair.notify}, or after `ms` milliseconds when given. */
  changed(ms?: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          resolve();
        }, ms);
      }
      this.#waiters.push(wake);
    });
  }

  /** Closes both sockets (pending reads and writes fail) and wakes the loops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [this.#client, this.#upstream]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    this.notify();
  }
}

/**
 * A TCP proxy from a free port on 127.0.0.1 to `target`, with faults on
 * demand. `await using` it: disposal closes the listener and every
 * connection, and waits for all its loops to end.
 */
export class TcpProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;
  #blackholed = false;
  #delayMs = 0;
  #accepted = 0;
  #closed = false;

  private constructor(listener: Deno.TcpListener, target: { host: string; port: number }) {
    this.#listener = listener;
    this.#target = { host: target.host, port: target.port };
    this.#acceptLoop = this.#accept();
  }

  /** Starts a proxy on a free loopback port that forwards to `target`. */
  static start(target: { host: string; port: number }): Promise<TcpProxy> {
    const listener = Deno.listen({ hostname: LOOPBACK, port: 0 });
    return Promise.resolve(new TcpProxy(listener, target));
  }

  /** The address clients connect to: always `"127.0.0.1"`. */
  get host(): string {
    return LOOPBACK;
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Client connections open now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Client connections accepted since the start (open or not). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Whether connections are black-holed now. */
  get blackholed(): boolean {
    return this.#blackholed;
  }

  /** The latency added to every forwarded chunk, in milliseconds. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** Closes every current connection, on both sides. New ones are accepted normally. */
  cut(): void {
    for (const pair of this.#pairs) pair.close();
  }

  /** Chunks sent by clients and held, not yet forwarded upstream (by a blackhole or a delay). */
  get heldFromClients(): number {
    let n = 0;
    for (const pair of this.#pairs) n += pair.up.queued;
    return n;
  }

  /**
   * While on, nothing is forwarded in either direction, on existing and new
   * connections (new ones are still accepted): a hang, without a close.
   * Turned off, the data held meanwhile is forwarded, in order.
   */
  blackhole(on: boolean): void {
    this.#blackholed = on;
    for (const pair of this.#pairs) pair.notify();
  }

  /** Adds `ms` milliseconds of latency to every chunk read from now on (0 = none). */
  delay(ms: number): void {
    this.#delayMs = Math.max(0, ms);
  }

  /** Stops listening, closes every connection and waits for every loop to end. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#listener.close();
      } catch {
        // Already closed.
      }
    }
    await this.#acceptLoop;
    // Connects in progress may still add pairs: close until nothing is left.
    while (this.#tasks.size > 0) {
      for (const pair of this.#pairs) pair.close();
      await Promise.allSettled([...this.#tasks]);
    }
  }

  /** Same as {@linkcode TcpProxy.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        break; // The listener was closed.
      }
      this.#accepted++;
      this.#track(this.#serve(client));
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.catch(() => {}).finally(() => this.#tasks.delete(task));
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: this.#target.host, port: this.#target.port });
    } catch {
      // The target is down: the client sees its connection closed.
      try {
        client.close();
      } catch {
        // Already closed.
      }
      return;
    }
    for (const conn of [client, upstream]) {
      try {
        conn.setNoDelay(true);
      } catch {
        // Not fatal.
      }
    }
    const pair = new Pair(client, upstream, this);
    this.#pairs.add(pair);
    if (this.#closed) pair.close();
    try {
      await pair.done;
    } finally {
      this.#pairs.delete(pair);
    }
  }
}
