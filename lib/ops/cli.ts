/**
 * The command line: commands, flags and the help text. Adding a command is
 * one entry in {@linkcode COMMANDS}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

/** A command of the CLI. */
export interface CommandInfo {
  /** One line for `--help`. */
  summary: string;
  /** Flags only this command takes. */
  flags: readonly string[];
}

/** Every command; the first is the default. */
export const COMMANDS: Readonly<Record<string, CommandInfo>> = {
  run: { summary: "Replicate until stopped (the default command)", flags: ["once"] },
  check: { summary: "Validate the configuration and check that both servers answer", flags: [] },
  status: {
    summary: "Show each stream's lengths, last IDs, lag and pending entries",
    flags: ["json"],
  },
  verify: {
    summary: "Compare every stream with its target, entry by entry (exit 1 on differences)",
    flags: ["json"],
  },
  health: {
    summary: "Ask a running replicator's /healthz (or --url): exit 0 when it answers 200, else 1",
    flags: ["url"],
  },
};

/** Parsed command line. */
export interface CliArgs {
  /** The command to run. */
  command: string;
  /** `--config FILE`. */
  config?: string;
  /** `--log-level LEVEL`. */
  logLevel?: string;
  /** `--log-format text|json`. */
  logFormat?: string;
  /** `--print-config`. */
  printConfig: boolean;
  /** `--help`. */
  help: boolean;
  /** `--version`. */
  version: boolean;
  /** `run --once`. */
  once: boolean;
  /** `--json` (status, verify). */
  json: boolean;
  /** `health --url URL`. */
  url?: string;
}

const OPTIONS = {
  config: { type: "string", short: "c" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "print-config": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  once: { type: "boolean" },
  json: { type: "boolean" },
  url: { type: "string" },
} as const;

/** Parses `argv` (without the program name). Throws {@linkcode UsageError}. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`${message}. Run "redis-stream-sync --help" for usage`, { cause: error });
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument "${positionals[1]}". Run "redis-stream-sync --help" for usage`,
    );
  }
  const command = positionals[0] ?? "run";
  const info = COMMANDS[command];
  if (!info) {
    throw new UsageError(
      `Unknown command "${command}": expected one of ${
        Object.keys(COMMANDS).join(", ")
      }. Run "redis-stream-sync --help" for usage`,
    );
  }
  for (const flag of ["once", "json", "url"] as const) {
    if (values[flag] !== undefined && values[flag] !== false && !info.flags.includes(flag)) {
      throw new UsageError(`The flag --${flag} does not apply to the "${command}" command`);
    }
  }
  return {
    command,
    config: values.config,
    logLevel: values["log-level"],
    logFormat: values["log-format"],
    printConfig: values["print-config"] ?? false,
    help: values.help ?? false,
    version: values.version ?? false,
    once: values.once ?? false,
    json: values.json ?? false,
    url: values.url,
  };
}

/** The `--help` text. */
export function helpText(version: string): string {
  const commands = Object.entries(COMMANDS)
    .map(([name, info]) => `  ${name.padEnd(10)}${info.summary}`)
    .join("\n");
  return `redis-stream-sync ${version}: replicate Redis Streams from a source Redis to a target Redis

Usage: redis-stream-sync [command] [flags]

Commands:
${commands}

Flags:
  -c, --config FILE       env.conf to read (default ./env.conf; a missing default file is fine)
      --log-level LEVEL   DEBUG, INFO, WARNING, ERROR or CRITICAL (overrides LOG_LEVEL)
      --log-format FMT    text or json (json overrides LOG_FORMAT)
      --print-config      print the effective configuration (passwords as ***) and exit
      --once              run: copy until every stream is caught up, then exit
      --json              status, verify: machine-readable output
      --url URL           health: the URL to ask (default http://METRICS_HOST:METRICS_PORT/healthz)
  -h, --help              show this help
  -V, --version           show the version

Configuration: flags > environment variables > env.conf > defaults (keys as in env.conf).

Exit codes:
  0   success
  1   failure at run time (run --once: a stream could not be brought up to date;
      verify: differences found; health: not healthy or nothing answers)
  2   bad command-line usage
  69  a Redis server unreachable at start-up after the configured retries
      (status: a server down; what the other one says is still shown)
  78  configuration error (including a failed authentication or TLS handshake)
`;
}
