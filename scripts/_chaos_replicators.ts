/**
 * The replicators of `deno task chaos`: one CLI process per instance
 * (`--instances`), each restarted after a kill, paused and resumed on
 * demand; an exit that was not asked for is recorded as a failure.
 *
 * @module
 */
import { type CliProcess, spawnCli } from "../testing/cli.ts";

/** The last `lines` lines of `text`. */
export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** How long a spawned instance takes, at most, to load and install its signal handlers. */
const STARTUP_MS = 3000;

/** N replicator processes with the same configuration. */
export class Replicators implements AsyncDisposable {
  readonly #env: Record<string, string>;
  readonly #note: (message: string) => void;
  readonly #slots: Array<CliProcess | null>;
  /** When each instance was spawned (performance.now()). */
  readonly #spawnedAt: number[] = [];
  /** Exits that were not ours (SIGKILL) and not the final SIGTERM. */
  readonly unexpectedExits: string[] = [];
  starts = 0;

  constructor(env: Record<string, string>, options: { count: number; note: (m: string) => void }) {
    this.#env = env;
    this.#note = options.note;
    this.#slots = Array.from({ length: options.count }, () => null);
  }

  /** How many instances run. */
  get count(): number {
    return this.#slots.length;
  }

  /** Starts instance `i` (every instance without `i`). */
  start(i?: number): void {
    for (let n = 0; n < this.#slots.length; n++) {
      if (i !== undefined && n !== i) continue;
      if (this.#slots[n]) continue;
      this.starts++;
      this.#slots[n] = spawnCli(["run"], { env: this.#env, timeoutMs: 24 * 3600_000 });
      this.#spawnedAt[n] = performance.now();
    }
  }

  /** Restarts the instances that exited on their own (recorded as failures). */
  async checkAlive(): Promise<void> {
    for (let n = 0; n < this.#slots.length; n++) {
      const cli = this.#slots[n];
      if (!cli || !cli.exited) continue;
      const result = await cli.wait();
      const what =
        `replicator ${n} exited on its own (code ${result.code}, signal ${result.signal})`;
      this.#note(`${what}; restarting it`);
      this.unexpectedExits.push(`${what}:\n${tail(result.stderr, 30)}`);
      await cli[Symbol.asyncDispose]();
      this.#slots[n] = null;
      this.start(n);
    }
  }

  /** SIGKILLs instance `i` (it stays down until started again). */
  async kill(i: number): Promise<void> {
    await this.checkAlive();
    const cli = this.#slots[i];
    if (!cli) return;
    cli.signal("SIGKILL");
    await cli.wait();
    await cli[Symbol.asyncDispose]();
    this.#slots[i] = null;
  }

  /** SIGSTOPs instance `i` for `ms`, then SIGCONTs it. */
  async pause(i: number, ms: number): Promise<void> {
    const cli = this.#slots[i];
    if (!cli) return;
    cli.signal("SIGSTOP");
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      cli.signal("SIGCONT");
    }
  }

  /** SIGTERMs every instance; returns each one's exit code and the tail of its log. */
  async stop(): Promise<Array<{ code: number; stderr: string }>> {
    await this.checkAlive();
    const out: Array<{ code: number; stderr: string }> = [];
    for (let n = 0; n < this.#slots.length; n++) {
      const cli = this.#slots[n];
      if (!cli) continue;
      cli.signal("SIGCONT");
      // Only once it runs: a signal before the runtime has loaded main.ts and installed its
      // handlers (an instance restarted a moment ago) ends the process at once, unhandled
      // (exit 143). The instances log at WARNING, so the time since the spawn tells.
      const young = STARTUP_MS - (performance.now() - this.#spawnedAt[n]);
      if (young > 0) await new Promise((resolve) => setTimeout(resolve, young));
      cli.signal("SIGTERM");
      const timer = setTimeout(() => cli.signal("SIGKILL"), 30_000);
      const result = await cli.wait();
      clearTimeout(timer);
      await cli[Symbol.asyncDispose]();
      this.#slots[n] = null;
      out.push({ code: result.code, stderr: tail(result.stderr, 40) });
    }
    return out;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const cli of this.#slots) {
      cli?.signal("SIGCONT");
      await cli?.[Symbol.asyncDispose]();
    }
  }
}
