/**
 * The configuration layer's door: loading and checking env.conf and the environment
 * (`loadConfig`, pure), the key catalogue, the configuration's types, and each component's
 * settings in milliseconds. What other layers, `main.ts` and `mod.ts` may import of `lib/config/`.
 *
 * @module
 */
export { formatConfig } from "./format_config.ts";
export { CONFIG_KEYS } from "./keys.ts";
export type { ConfigKeyGroup, ConfigKeyInfo } from "./keys.ts";
export { loadConfig } from "./load_config.ts";
export type { ConfigFlags, LoadConfigOptions, LoadConfigResult } from "./load_config.ts";
export {
  discoverySettings,
  groupSyncSettings,
  HEARTBEAT_MAXLEN,
  heartbeatKey,
  heartbeatSettings,
  replicationSettings,
  retrySettings,
  runSettings,
  sharingSettings,
} from "./settings.ts";
export type {
  DiscoverySettings,
  GroupSyncSettings,
  HeartbeatSettings,
  ReadSettings,
  RecoverySettings,
  ReplicationSettings,
  RunSettings,
  SharingSettings,
} from "./settings.ts";
export { loadTlsFiles } from "./tls_files.ts";
export type { Config, LogLevelName, ManualStream, RedisServerConfig, TlsConfig } from "./types.ts";
