/**
 * redis-stream-sync's entry point: parse flags, load the configuration,
 * wire signals, run the command, and map errors to exit codes (here only).
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import {
  checkConnectivity,
  checkHealth,
  type CliArgs,
  collectStatus,
  formatStatusTable,
  formatVerifiedStream,
  formatVerifySummary,
  helpText,
  parseCliArgs,
  runService,
  surveyLine,
  surveyStreams,
  verifyAll,
} from "./lib/ops/mod.ts";
import { type Config, formatConfig, loadConfig, loadTlsFiles } from "./lib/config/mod.ts";
import { ConfigError, errorMessage, EXIT_CODES } from "./lib/errors.ts";
import { flushLogging, getLog, setupLogging } from "./lib/log.ts";
import { serverAddress } from "./lib/redis/mod.ts";

const VERSION: string = denoJson.version;
const DEFAULT_CONFIG_FILE = "env.conf";
/**
 * A signal repeated within this many milliseconds of the first is the same
 * request (a process group signalled as a whole, `deno task` forwarding it).
 */
const SIGNAL_REPEAT_WINDOW_MS = 1000;
const log = getLog("main");
/** Set once logging is configured for JSON lines: the final error is then a JSON line too. */
let jsonLogs = false;

type Command = (config: Config, args: CliArgs, signal: AbortSignal) => Promise<number>;

const COMMAND_HANDLERS: Record<string, Command> = {
  run: runCommand,
  check: checkCommand,
  status: statusCommand,
  verify: verifyCommand,
  health: healthCommand,
};

async function runCommand(config: Config, args: CliArgs, signal: AbortSignal): Promise<number> {
  log.info("redis-stream-sync {version} starting: source {source}, target {target}", {
    version: VERSION,
    source: serverAddress(config.source),
    target: serverAddress(config.target),
  });
  const result = await runService(config, { signal, once: args.once, version: VERSION });
  // `run` stopped by a signal exits 0 (streams in error were logged); `run --once`
  // exits 1 when a stream could not be brought up to date.
  return !args.once || result.ok ? EXIT_CODES.OK : EXIT_CODES.FAILURE;
}

async function checkCommand(config: Config, _args: CliArgs, signal: AbortSignal): Promise<number> {
  const result = await checkConnectivity(config, { signal, failFast: true });
  const targetDb = config.target.db === "same" ? "same as source" : `DB ${config.target.db}`;
  console.log("Configuration OK");
  console.log(
    `Target "${serverAddress(config.target)}" answers (Redis ${result.targetVersion}), ${targetDb}`,
  );
  console.log(
    `Source "${serverAddress(config.source)}" answers (Redis ${result.sourceVersion}), DBs ${
      result.sourceDbs.join(",")
    }` +
      (result.missingSourceDbs.length ? `; missing DBs ${result.missingSourceDbs.join(",")}` : ""),
  );
  const survey = await surveyStreams(config, { signal });
  console.log(surveyLine(survey));
  if (survey.none) log.warning("{message}", { message: survey.none });
  return EXIT_CODES.OK;
}

async function statusCommand(config: Config, args: CliArgs, signal: AbortSignal): Promise<number> {
  const report = await collectStatus(config, { signal });
  console.log(args.json ? JSON.stringify(report) : formatStatusTable(report));
  // One server down: what the other says was shown, and the exit code says a server is down.
  const { source, target } = report.servers;
  return source.up && target.up ? EXIT_CODES.OK : EXIT_CODES.UNAVAILABLE;
}

async function verifyCommand(config: Config, args: CliArgs, signal: AbortSignal): Promise<number> {
  const report = await verifyAll(config, {
    signal,
    onStream: args.json ? undefined : (s) => console.log(formatVerifiedStream(s)),
  });
  console.log(args.json ? JSON.stringify(report) : formatVerifySummary(report));
  return report.summary.different === 0 ? EXIT_CODES.OK : EXIT_CODES.FAILURE;
}

async function healthCommand(config: Config, args: CliArgs, signal: AbortSignal): Promise<number> {
  const result = await checkHealth(config, { url: args.url, signal });
  if (result.healthy) console.log(result.message);
  else console.error(result.message);
  return result.healthy ? EXIT_CODES.OK : EXIT_CODES.FAILURE;
}

async function readConfigFile(path: string | undefined): Promise<{ text?: string; name: string }> {
  const name = path ?? DEFAULT_CONFIG_FILE;
  try {
    return { text: await Deno.readTextFile(name), name };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && path === undefined) return { name };
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(`Config file "${name}" not found`);
    }
    throw new ConfigError(`Cannot read config file "${name}": ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** Runs the CLI with `argv`; returns the exit code. */
async function main(argv: string[]): Promise<number> {
  const args = parseCliArgs(argv);
  if (args.help) {
    console.log(helpText(VERSION));
    return EXIT_CODES.OK;
  }
  if (args.version) {
    console.log(`redis-stream-sync ${VERSION}`);
    return EXIT_CODES.OK;
  }
  // JSON from the start when asked for on the command line or in the environment (the
  // configuration may fail to load: its errors are JSON too).
  const wanted = args.logFormat ?? Deno.env.get("LOG_FORMAT") ?? "";
  jsonLogs = wanted.trim().toLowerCase() === "json";
  const file = await readConfigFile(args.config);
  const { config: loaded, warnings } = loadConfig(
    { logLevel: args.logLevel, logFormat: args.logFormat },
    Deno.env.toObject(),
    file.text,
    { fileName: file.name },
  );
  await setupLogging({
    level: loaded.logLevel,
    format: loaded.logFormat,
    secrets: [loaded.source, loaded.target].flatMap((s) => [
      s.password ?? "",
      s.sentinel?.password ?? "",
    ]),
  });
  jsonLogs = loaded.logFormat.trim().toLowerCase() === "json";
  for (const warning of warnings) log.warning("{warning}", { warning });
  if (args.printConfig) {
    console.log(formatConfig(loaded));
    return EXIT_CODES.OK;
  }
  const config = await loadTlsFiles(loaded);

  const controller = new AbortController();
  let first: { name: Deno.Signal; at: number } | undefined;
  const onSignal = (name: Deno.Signal) => {
    const now = performance.now();
    if (first === undefined) {
      first = { name, at: now };
      log.info("Received {signal}; shutting down (send it again to exit at once)", {
        signal: name,
      });
      controller.abort();
    } else if (name === first.name && now - first.at < SIGNAL_REPEAT_WINDOW_MS) {
      // The same signal twice within a moment is one request: `kill -TERM -PGID` reaches
      // this process directly and through `deno task`, which forwards it too.
      log.debug("Received {signal} again within {ms} ms; taken as the same request", {
        signal: name,
        ms: SIGNAL_REPEAT_WINDOW_MS,
      });
    } else {
      log.warning(
        "Received {signal} again; exiting now (entries in flight stay pending and are copied on the next start)",
        { signal: name },
      );
      Deno.exit(name === "SIGINT" ? 130 : 143);
    }
  };
  // The listeners stay until the process exits: a repeated signal that arrives while it
  // finishes (logs flushed, exit) is still the same request, not a kill (exit 143).
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(name, () => onSignal(name));
  }
  return await COMMAND_HANDLERS[args.command](config, args, controller.signal);
}

/** Maps any error to its exit code, with a message on stderr (the one place this happens). */
function exitCodeFor(error: unknown): number {
  const code = (error as { exitCode?: unknown })?.exitCode;
  if (error instanceof ConfigError && error.name === "ConfigError" && jsonLogs) {
    // Logging may not be set up yet (the configuration did not load): the line is made here.
    console.error(JSON.stringify({
      time: new Date().toISOString(),
      level: "CRITICAL",
      logger: "redis-stream-sync.main",
      message: `Configuration error: ${error.problems.join("; ")}`,
      problems: error.problems,
      exitCode: error.exitCode,
    }));
  } else if (error instanceof ConfigError && error.name === "ConfigError") {
    console.error(`Configuration error:\n${error.problems.map((p) => `  - ${p}`).join("\n")}`);
  } else if (jsonLogs) {
    log.fatal("{error}", {
      error: errorMessage(error),
      exitCode: typeof code === "number" ? code : 1,
    });
  } else if (typeof code === "number") {
    console.error(`Error: ${errorMessage(error)}`);
  } else {
    console.error(`Error: ${errorMessage(error)}`);
    if (error instanceof Error && error.stack) log.debug("{stack}", { stack: error.stack });
  }
  return typeof code === "number" ? code : EXIT_CODES.FAILURE;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    code = exitCodeFor(error);
  }
  await flushLogging().catch(() => {});
  Deno.exit(code);
}
