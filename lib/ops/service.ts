/**
 * The `run` command as a whole: the metrics and health listener, the
 * start-up check, the orchestrator, and (for `--once` on a terminal) the
 * progress line, wired together and torn down in order.
 *
 * @module
 */
import { checkConnectivity } from "./check.ts";
import type { Config } from "../config/mod.ts";
import { ConfigError, errorMessage } from "../errors.ts";
import { type HttpServer, LISTEN_RETRY_MS, listenWhenFree } from "./http.ts";
import { counted, getLog } from "../log.ts";
import { startMemoryTrim } from "./memory_trim.ts";
import { Metrics } from "./metrics.ts";
import { Orchestrator, type RunResult } from "../replication/mod.ts";
import { shouldShowProgress, startProgress } from "./progress.ts";

const log = getLog("service");

/** Options for {@linkcode runService}. */
export interface ServiceOptions {
  /** Aborts on SIGINT/SIGTERM: stop reading, finish the batches in flight, return. */
  signal: AbortSignal;
  /**
   * `run --once`: copy until caught up, then return; no metrics listener.
   * @default {false}
   */
  once?: boolean;
  /**
   * Whether standard error is a terminal (for the `--once` progress line).
   * @default {Deno.stderr.isTerminal()}
   */
  terminal?: boolean;
  /**
   * This program's version (the `build_info` metric).
   * @default {"unknown"}
   */
  version?: string;
  /**
   * Milliseconds between two tries to listen while METRICS_PORT is in use.
   * @default {10000}
   */
  listenRetryMs?: number;
}

/**
 * Runs the service until `signal` aborts (or, with `once`, until every
 * stream is caught up). A stop requested during the start-up check returns
 * no streams, `ok` unless `once`. Throws the start-up check's errors
 * (unreachable, authentication, configuration).
 */
export async function runService(config: Config, options: ServiceOptions): Promise<RunResult> {
  const { signal, once = false, terminal = Deno.stderr.isTerminal() } = options;
  const retryMs = options.listenRetryMs ?? LISTEN_RETRY_MS;
  const metrics = new Metrics(options.version);
  let orchestrator: Orchestrator | undefined;
  metrics.setStatusSource(() => orchestrator?.status());
  // `run --once` is a batch job: no listener. `run` serves metrics and health from the start,
  // so /readyz says "not ready" while the servers are still being waited for.
  const http = once || config.metricsPort === 0
    ? undefined
    : listen(config, metrics, retryMs, () =>
      orchestrator?.status() ??
        { ready: false, reason: "waiting for the source and target to answer" });
  const trim = new AbortController();
  let lastWrite = Date.now();
  // Counted only where someone can read them: `run --once` and METRICS_PORT=0 serve no
  // metrics (at 100,000 streams, a series each and a count a batch, for nobody).
  const metricsHooks: ReturnType<Metrics["hooks"]> = http ? metrics.hooks() : {};
  const hooks = {
    ...metricsHooks,
    onBatch: (...args: Parameters<NonNullable<typeof metricsHooks.onBatch>>) => {
      lastWrite = Date.now();
      metricsHooks.onBatch?.(...args);
    },
  };
  // Quiet: nothing written for 3 s (a full collection pauses the process).
  startMemoryTrim(trim.signal, {
    quiet: () => Date.now() - lastWrite >= 3000,
    lastActivity: () => lastWrite,
  });
  try {
    try {
      await checkConnectivity(config, { signal });
    } catch (error) {
      // Stopped (SIGTERM/SIGINT) while waiting for a server: a clean stop, not "unreachable".
      if (signal.aborted) return stoppedDuringStartUp(once);
      throw error;
    }
    if (signal.aborted) return stoppedDuringStartUp(once);
    const current = new Orchestrator(config, hooks);
    orchestrator = current;
    const stopProgress = once && shouldShowProgress(terminal, config.logFormat)
      ? startProgress(() => current.status())
      : undefined;
    let result: RunResult;
    try {
      result = await current.run(signal, {
        once,
        graceMs: Math.max(1000, Math.min(5000, config.pollInterval * 1000 + 4000)),
      });
    } finally {
      stopProgress?.();
    }
    if (once) {
      const copied = result.streams.reduce((n, s) => n + s.copied, 0);
      const skipped = result.streams.reduce((n, s) => n + s.skipped, 0);
      // Entries read again and found on the target (written by an earlier run, or by a write
      // whose reply was lost): said beside, so that what was copied adds up.
      const fields = {
        streamCount: counted(result.streams.length, "stream"),
        copiedCount: counted(copied, "entry", "entries"),
        streams: result.streams.length,
        copied,
        skipped,
      };
      if (skipped > 0) {
        log.info(
          "Done: {streamCount}, {copiedCount} copied, {skipped} already on the target",
          fields,
        );
      } else log.info("Done: {streamCount}, {copiedCount} copied", fields);
      for (const failure of result.failures) {
        log.error("Not up to date: {stream}: {reason}", failure);
      }
    }
    return result;
  } finally {
    trim.abort();
    http?.controller.abort();
    await http?.server.finished;
  }
}

/** `run` stopped before it began is a clean stop; `run --once` has then copied nothing. */
function stoppedDuringStartUp(once: boolean): RunResult {
  const failures = once ? [{ stream: "*", reason: "interrupted before replication started" }] : [];
  return { ok: failures.length === 0, streams: [], failures };
}

function listen(
  config: Config,
  metrics: Metrics,
  retryMs: number,
  readiness: () => { ready: boolean; reason?: string },
): { server: HttpServer; controller: AbortController } {
  const controller = new AbortController();
  try {
    const server = listenWhenFree({
      hostname: config.metricsHost,
      port: config.metricsPort,
      metrics,
      readiness,
      signal: controller.signal,
    }, retryMs);
    return { server, controller };
  } catch (error) {
    throw new ConfigError(
      `Cannot listen on METRICS_HOST:METRICS_PORT "${config.metricsHost}:${config.metricsPort}": ${
        errorMessage(error)
      } (set METRICS_PORT=0 to turn the listener off)`,
      { cause: error },
    );
  }
}
