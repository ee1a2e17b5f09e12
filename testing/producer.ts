/**
 * A load producer for crash and chaos runs: `XADD key * ...` round-robin
 * over keys, pipelined, with binary-heavy payloads, that survives its
 * server going away. Used by tests/crash_test.ts and scripts/chaos.ts.
 *
 * @module
 */
import { connect, type RedisArg, type RedisServer, type TestClient } from "./redis.ts";

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BINARY_FIELD = new Uint8Array([0x66, 0x00, 0xff, 0x0d, 0x0a]); // "f\0\xff\r\n"

/**
 * Fields of entry `n`: text, random bytes (NUL, 0xff, CR LF...), sometimes
 * an empty value, a binary field name, and 1 % of 4 KiB values.
 */
export function payload(random: () => number, n: number): RedisArg[] {
  const size = random() < 0.01 ? 4096 : 1 + Math.floor(random() * 64);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(random() * 256);
  bytes[0] = [0x00, 0xff, 0x0d, 0x80][n % 4];
  const fields: RedisArg[] = ["n", String(n), "bin", bytes];
  if (n % 3 === 0) fields.push("empty", "");
  if (n % 5 === 0) fields.push(BINARY_FIELD, bytes.subarray(0, n % 11));
  return fields;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Writes entries with `XADD key * ...`, pipelined, round-robin over `keys`,
 * straight to `server`. A failed write is not counted (it may or may not
 * have been stored: compare with the source's final content), and the
 * connection is reopened until the server is back.
 */
export class Producer {
  /** Writes the server confirmed. */
  acked = 0;
  /** Writes that failed (server gone). */
  failed = 0;
  readonly #server: RedisServer;
  readonly #keys: string[];
  readonly #random: () => number;
  #client: TestClient | null = null;
  #n = 0;
  #stopped = false;

  constructor(server: RedisServer, keys: string[], random: () => number) {
    this.#server = server;
    this.#keys = keys;
    this.#random = random;
  }

  /** Writes `total` confirmed entries (or until stopped) in chunks, pausing between chunks. */
  async runCount(total: number, chunk: number, pauseMs: number): Promise<void> {
    while (!this.#stopped && this.acked < total) {
      await this.#chunk(Math.min(chunk, total - this.acked));
      await delay(pauseMs);
    }
    await this.#close();
  }

  /** Writes about `rate` entries per second until stopped. */
  async runRate(rate: number): Promise<void> {
    const chunk = Math.max(1, Math.min(500, Math.round(rate / 25)));
    const started = performance.now();
    while (!this.#stopped) {
      await this.#chunk(chunk);
      const due = started + (this.#n / rate) * 1000;
      await delay(Math.max(1, due - performance.now()));
    }
    await this.#close();
  }

  /** Stops after the chunk in flight. */
  stop(): void {
    this.#stopped = true;
  }

  async #close(): Promise<void> {
    await this.#client?.close();
    this.#client = null;
  }

  async #chunk(size: number): Promise<void> {
    const client = await this.#connection();
    if (!client) return;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < size; i++) {
      const n = this.#n++;
      const key = this.#keys[n % this.#keys.length];
      writes.push(client.send(["XADD", key, "*", ...payload(this.#random, n)]));
    }
    let lost = false;
    for (const result of await Promise.allSettled(writes)) {
      if (result.status === "fulfilled") this.acked++;
      else {
        this.failed++;
        lost = true;
      }
    }
    if (lost) await this.#close();
  }

  async #connection(): Promise<TestClient | null> {
    while (!this.#stopped) {
      if (this.#client?.isOpen) return this.#client;
      await this.#close();
      try {
        this.#client = await connect(this.#server);
      } catch {
        await delay(50);
      }
    }
    return null;
  }
}
