/**
 * Runs the real command-line program (`main.ts`) in a subprocess, with the
 * runtime flags of the `start` task (permissions, V8 heap settings) and a clean environment, plus small
 * helpers for end-to-end tests.
 *
 * @example
 * ```ts
 * import { runCli } from "./cli.ts";
 *
 * Deno.test("--help", async () => {
 *   const { code, stdout } = await runCli(["--help"]);
 *   console.log(code, stdout);
 * });
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CONFIG_PATH = fileURLToPath(new URL("../deno.json", import.meta.url));
const MAIN_PATH = fileURLToPath(new URL("../main.ts", import.meta.url));
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The runtime flags of the `start` task in deno.json (every word of it that
 * starts with `--allow-`, `--deny-` or `--v8-flags=`), so that tests run
 * main.ts with exactly the permissions and the heap settings users give it.
 */
export const START_FLAGS: string[] = startFlags();

function startFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(CONFIG_PATH)) as {
    tasks?: Record<string, string | { command?: string }>;
  };
  const task = config.tasks?.start;
  const command = typeof task === "string" ? task : task?.command;
  if (!command) throw new Error(`${CONFIG_PATH} has no "start" task`);
  return command.split(/\s+/).filter((word) => /^--(allow-|deny-|v8-flags=)/.test(word));
}

/** Options for {@linkcode runCli} and {@linkcode spawnCli}. */
export interface RunCliOptions {
  /**
   * Environment variables for the program, on top of PATH and HOME (the only
   * ones taken from this process; these may be overridden here too).
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * The working directory of the program.
   * @default {this process' working directory}
   */
  cwd?: string;
  /**
   * Kill the program (SIGKILL) after this many milliseconds, and fail.
   * @default {60000}
   */
  timeoutMs?: number;
  /**
   * Text written to the program's standard input, which is then closed.
   * @default {no standard input (/dev/null)}
   */
  stdin?: string;
  /**
   * The script to run instead of main.ts: for testing these helpers.
   * @default {the repository's main.ts}
   */
  script?: string;
}

/** Options for {@linkcode CliProcess}'s constructor. */
interface CliProcessOptions extends RunCliOptions {
  /**
   * The program leads a process group of its own: signals and the final
   * kill go to the whole group.
   * @default {false}
   */
  group?: boolean;
}

/** How a program ended, and all it printed. */
export interface CliResult {
  /** The exit code (128 + the signal's number if it was killed by a signal). */
  code: number;
  /** Everything written to standard output. */
  stdout: string;
  /** Everything written to standard error. */
  stderr: string;
  /** The signal that ended the program, if one did. */
  signal: Deno.Signal | null;
}

/**
 * Runs `deno run <START_FLAGS> main.ts ...args` with a clean
 * environment (PATH, HOME, and `options.env`), and waits for it to exit.
 *
 * @throws {Error} if the program has not exited after `options.timeoutMs`:
 * it is killed, and the message shows what it printed.
 */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  await using cli = spawnCli(args, options);
  return await cli.wait();
}

/**
 * A program started by {@linkcode spawnCli}, whose output is collected as it
 * comes. `await using` it: disposal kills it (SIGKILL) if it still runs.
 */
export class CliProcess implements AsyncDisposable {
  /** The subprocess. */
  readonly process: Deno.ChildProcess;
  readonly #description: string;
  readonly #timeoutMs: number;
  #stdout = "";
  #stderr = "";
  #exitStatus: Deno.CommandStatus | null = null;
  #timedOut = false;
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #done: Promise<Deno.CommandStatus>;
  readonly #listeners = new Set<() => void>();
  readonly #group: boolean;

  /** Use {@linkcode spawnCli} or {@linkcode spawnTask}. */
  constructor(command: Deno.Command, description: string, options: CliProcessOptions) {
    this.#description = description;
    this.#group = options.group ?? false;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.process = command.spawn();
    const stdout = collectText(this.process.stdout, (text) => {
      this.#stdout += text;
      this.#notify();
    });
    const stderr = collectText(this.process.stderr, (text) => {
      this.#stderr += text;
      this.#notify();
    });
    const stdin = writeStdin(this.process, options.stdin);
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#kill("SIGKILL");
    }, this.#timeoutMs);
    this.#done = Promise.all([this.process.status, stdout, stderr, stdin]).then(([status]) => {
      clearTimeout(this.#timer);
      this.#exitStatus = status;
      this.#notify();
      return status;
    });
  }

  /** Standard output so far. */
  stdout(): string {
    return this.#stdout;
  }

  /** Standard error so far. */
  stderr(): string {
    return this.#stderr;
  }

  /** Whether the program has exited (and all its output was read). */
  get exited(): boolean {
    return this.#exitStatus !== null;
  }

  /**
   * Waits until standard output or standard error matches `pattern`.
   *
   * @throws {Error} after `timeoutMs` (default 10 s), or if the program exits
   * first; the message shows what it printed.
   */
  waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    const matches = () => matchesText(pattern, this.#stdout) || matchesText(pattern, this.#stderr);
    if (matches()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (matches()) finish();
        else if (this.#exitStatus) {
          finish(
            new Error(
              `${this.#description} exited (${this.#statusText()}) before printing ${pattern}${this.#output()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish(
          new Error(
            `${this.#description} did not print ${pattern} within ${timeoutMs} ms${this.#output()}`,
          ),
        );
      }, timeoutMs);
      this.#listeners.add(check);
      check();
    });
  }

  /** Sends `signal` to the program; does nothing if it has exited. */
  signal(signal: Deno.Signal): void {
    this.#kill(signal);
  }

  /**
   * Sends `signal` to the program's whole process group, as `kill -SIG -PGID`
   * does (for a {@linkcode spawnTask} program: `deno task` and its child).
   */
  signalGroup(signal: Deno.Signal): void {
    if (!this.#group) throw new Error(`${this.#description} has no process group of its own`);
    if (this.#exitStatus) return;
    try {
      Deno.kill(-this.process.pid, signal);
    } catch {
      // Already exited.
    }
  }

  /**
   * Waits for the program to exit and returns how, with all it printed.
   *
   * @throws {Error} if it was killed for running longer than `timeoutMs`.
   */
  async wait(): Promise<CliResult> {
    const status = await this.#done;
    if (this.#timedOut) {
      throw new Error(
        `${this.#description} timed out after ${this.#timeoutMs} ms and was killed${this.#output()}`,
      );
    }
    return { code: status.code, stdout: this.#stdout, stderr: this.#stderr, signal: status.signal };
  }

  /** Kills the program (SIGKILL) if it still runs, and waits for it to exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#kill("SIGKILL");
    await this.#done;
  }

  #kill(signal: Deno.Signal): void {
    if (this.#exitStatus) return;
    try {
      if (this.#group) Deno.kill(-this.process.pid, signal);
      else this.process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #statusText(): string {
    const status = this.#exitStatus;
    if (!status) return "running";
    return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
  }

  #output(): string {
    return `\n--- stdout ---\n${this.#stdout}\n--- stderr ---\n${this.#stderr}`;
  }
}

/**
 * Starts `deno run <START_FLAGS> main.ts ...args` (clean environment,
 * like {@linkcode runCli}) without waiting for it: for long-running `run`
 * tests. Both output streams are read continuously.
 */
export function spawnCli(args: string[], options: RunCliOptions = {}): CliProcess {
  const script = options.script ?? MAIN_PATH;
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG_PATH, ...START_FLAGS, script, ...args],
    cwd: options.cwd,
    clearEnv: true,
    env: childEnv(options),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  return new CliProcess(command, `deno run ${[script, ...args].join(" ")}`, options);
}

/**
 * The environment of a program: PATH, HOME and DENO_DIR from this process,
 * METRICS_PORT=0 unless the test sets it (in env: it outranks env.conf, so
 * runs never compete for the default port 9108), then `options.env`.
 */
function childEnv(options: RunCliOptions): Record<string, string> {
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1", METRICS_PORT: "0" };
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...options.env };
}

/**
 * Starts `deno task <task> ...args` as a user does (the repository's
 * deno.json, its directory as working directory, a clean environment like
 * {@linkcode spawnCli}), leading a new process group (`setsid`), so that a
 * test can signal the group as a whole.
 */
export function spawnTask(task: string, args: string[], options: RunCliOptions = {}): CliProcess {
  // setsid execs the program (a child of this process is no group leader): its PID is the group's.
  const command = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "--config", CONFIG_PATH, task, ...args],
    cwd: options.cwd,
    clearEnv: true,
    env: childEnv(options),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  return new CliProcess(command, `deno task ${[task, ...args].join(" ")}`, {
    ...options,
    group: true,
  });
}

/**
 * The grace period of `run` after SIGTERM or SIGINT, as the README states it
 * (and lib/service.ts computes it): STREAM_POLL_INTERVAL + 4 s, at least
 * 1 s, at most 5 s.
 */
export function graceSeconds(pollIntervalSeconds: number): number {
  return Math.max(1, Math.min(5, pollIntervalSeconds + 4));
}

/**
 * The longest a stop of `run` may take with a batch in flight: the grace
 * period, one poll interval (a read in flight) and `marginSeconds` for a
 * slow, busy machine. With the defaults far below a hung command's timeout,
 * and below a stop that would wait a minute.
 */
export function stopBoundSeconds(pollIntervalSeconds: number, marginSeconds = 10): number {
  return graceSeconds(pollIntervalSeconds) + pollIntervalSeconds + marginSeconds;
}

/** Writes `text` to `dir`/env.conf and returns that file's path. */
export async function writeConfig(dir: string, text: string): Promise<string> {
  const path = join(dir, "env.conf");
  await Deno.writeTextFile(path, text);
  return path;
}

/** Options for {@linkcode waitFor}. */
export interface WaitForOptions {
  /**
   * Give up after this many milliseconds.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Milliseconds between two calls of the predicate.
   * @default {50}
   */
  intervalMs?: number;
  /**
   * What is awaited, for the error message.
   * @default {"the condition"}
   */
  message?: string;
}

/**
 * Calls `predicate` every `intervalMs` until it returns true. A predicate
 * that throws counts as false (its last error is shown on timeout). A
 * predicate that does not return at all (a command that hangs) fails the
 * wait at the deadline too: the wait never outlives `timeoutMs` by more
 * than one interval.
 *
 * @throws {Error} `Timed out after N ms waiting for <message>` if it never does.
 */
export async function waitFor(
  predicate: () => Promise<boolean> | boolean,
  options: WaitForOptions = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 50, message = "the condition" } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const verdict = await beforeDeadline(predicate, deadline);
      if (verdict === HUNG) lastError = new Error("the last check did not return");
      else if (verdict) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? "" : ` (last error: ${errorText(lastError)})`;
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}${cause}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const HUNG = Symbol("hung");

/** `predicate()`, or HUNG if it has not returned by `deadline` (ms since epoch). */
async function beforeDeadline(
  predicate: () => Promise<boolean> | boolean,
  deadline: number,
): Promise<boolean | typeof HUNG> {
  const pending = Promise.resolve().then(predicate);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<typeof HUNG>((resolve) => {
    timer = setTimeout(() => resolve(HUNG), Math.max(0, deadline - Date.now()));
  });
  try {
    const verdict = await Promise.race([pending, hung]);
    if (verdict === HUNG) pending.catch(() => {}); // it may still fail later: nobody listens
    return verdict;
  } finally {
    clearTimeout(timer);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function matchesText(pattern: RegExp, text: string): boolean {
  pattern.lastIndex = 0;
  return pattern.test(text);
}

/** Reads `stream` as text until it ends (or the process is gone), passing each chunk on. */
export async function collectText(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) onText(text);
  } catch {
    // The process is gone; what was read is kept.
  }
}

async function writeStdin(process: Deno.ChildProcess, text: string | undefined): Promise<void> {
  if (text === undefined) return;
  const writer = process.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The program exited without reading all of it.
    await writer.abort().catch(() => {});
  }
}
