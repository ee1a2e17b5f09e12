/**
 * redis-stream-sync: replicate Redis Streams from a source Redis to a target Redis.
 *
 * @module
 */
export { backoffDelay, sleep } from "./lib/backoff.ts";
export type { BackoffOptions } from "./lib/backoff.ts";
export {
  AuthError,
  ConfigError,
  ConnectionError,
  EXIT_CODES,
  isRetriableError,
  RedisReplyError,
  StreamGoneError,
  StreamStoppedError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "./lib/errors.ts";
export type { Config, LogLevelName, ManualStream, RedisServerConfig } from "./lib/config_types.ts";
