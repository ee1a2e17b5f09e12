/**
 * redis-stream-sync: replicate Redis Streams from a source Redis to a
 * target Redis, with original IDs and exact bytes, crash-safe and
 * idempotent.
 *
 * Embed the replicator in a Deno program:
 *
 * ```ts
 * import { loadConfig, loadTlsFiles, Orchestrator } from "./mod.ts";
 *
 * const { config: loaded } = loadConfig({}, Deno.env.toObject(), await Deno.readTextFile("env.conf"));
 * const config = await loadTlsFiles(loaded); // reads the *_TLS_*_FILE files, if any
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => controller.abort());
 * const orchestrator = new Orchestrator(config);
 * const running = orchestrator.run(controller.signal);
 * // Per-stream status at any time:
 * for (const s of orchestrator.status().streams) console.log(s.db, s.key, s.state, s.copied);
 * await running;
 * ```
 *
 * @module
 */
export { Backoff, backoffDelay, sleep } from "./lib/backoff.ts";
export type { BackoffOptions } from "./lib/backoff.ts";
export { checkConnectivity } from "./lib/ops/mod.ts";
export type { CheckOptions, CheckResult } from "./lib/ops/mod.ts";
export { CONFIG_KEYS } from "./lib/config/mod.ts";
export { formatConfig } from "./lib/config/mod.ts";
export { loadConfig } from "./lib/config/mod.ts";
export { loadTlsFiles } from "./lib/config/mod.ts";
export type { ConfigFlags, LoadConfigOptions, LoadConfigResult } from "./lib/config/mod.ts";
export type { ConfigKeyInfo } from "./lib/config/mod.ts";
export type {
  Config,
  LogLevelName,
  ManualStream,
  RedisServerConfig,
  TlsConfig,
} from "./lib/config/mod.ts";
export {
  AuthError,
  ConfigError,
  ConnectionError,
  errorMessage,
  EXIT_CODES,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
  StreamStoppedError,
  TimeoutError,
  TlsError,
  UnreachableError,
  UsageError,
} from "./lib/errors.ts";
export { getLog, setupLogging } from "./lib/log.ts";
export type { SetupLoggingOptions } from "./lib/log.ts";
export { Orchestrator } from "./lib/replication/mod.ts";
export type {
  OrchestratorHooks,
  OrchestratorStatus,
  RunOptions,
  RunResult,
} from "./lib/replication/mod.ts";
export type { ServerHealthStatus } from "./lib/redis/mod.ts";
export { runService } from "./lib/ops/mod.ts";
export type { ServiceOptions } from "./lib/ops/mod.ts";
export { collectStatus, formatStatusTable } from "./lib/ops/mod.ts";
export type { ServerStatus, StatusOptions, StatusReport, StatusRow } from "./lib/ops/mod.ts";
export { makeStreamRef } from "./lib/replication/mod.ts";
export type { StreamRef, StreamRefOptions } from "./lib/replication/mod.ts";
export type {
  CopiedBatch,
  StreamOutcome,
  StreamState,
  StreamStatus,
} from "./lib/replication/mod.ts";
export { compareStream, verifyAll } from "./lib/ops/mod.ts";
export type {
  CompareOptions,
  StreamComparison,
  VerifiedStream,
  VerifyOptions,
  VerifyReport,
} from "./lib/ops/mod.ts";
