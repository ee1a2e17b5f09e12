/**
 * Where a connection goes and who it is: the ONE place where a server's
 * configuration becomes connection options (address, credentials, DB,
 * timeouts, name). Pools, one-shot commands and the start-up check all take
 * their options from here, so they cannot differ.
 *
 * @module
 */
import type { RedisServerConfig, TlsConfig } from "../config/mod.ts";

/** How to reach one server and how to behave on a connection to it. */
export interface Endpoint {
  /** "source" or "target", for messages. */
  readonly role: string;
  /** Host name or address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** ACL user name (undefined: the `default` user). */
  readonly username?: string;
  /** Password; never logged. */
  readonly password?: string;
  /** The sentinels that name the server (undefined: `host` and `port` are the server). */
  readonly sentinel?: EndpointSentinel;
  /** TLS, when the server is reached over it (undefined: plain TCP). */
  readonly tls?: EndpointTls;
  /** Milliseconds without a reply after which a connection counts as hung and is closed. */
  readonly commandTimeoutMs: number;
  /** Milliseconds of idleness after which a PING checks a connection; 0 = never. */
  readonly healthCheckIntervalMs: number;
}

/** How a TLS connection is made: PEM contents, not paths. */
export interface EndpointTls {
  /** CA certificates trusted besides the system's. */
  readonly ca?: string;
  /** Client certificate chain. */
  readonly cert?: string;
  /** The client certificate's private key; never logged. */
  readonly key?: string;
  /** The name sent (SNI) and checked in the server's certificate (default: the host). */
  readonly servername?: string;
  /** Do not verify the server's certificate or name. */
  readonly insecure: boolean;
}

/** The sentinels of one server and how to talk to them. */
export interface EndpointSentinel {
  /** The sentinels' addresses. */
  readonly addresses: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** The monitored master's name (`sentinel monitor <name> ...`). */
  readonly masterName: string;
  /** ACL user on the sentinels (undefined: none or `default`). */
  readonly username?: string;
  /** Password of the sentinels; never logged. */
  readonly password?: string;
  /** TLS to the sentinels (undefined: plain TCP). */
  readonly tls?: EndpointTls;
}

/** Options for {@linkcode endpointFor}. */
export interface EndpointOptions {
  /**
   * Send health-check PINGs on idle connections (long-running pools; not
   * one-shot commands).
   * @default {false}
   */
  healthChecks?: boolean;
}

/** The endpoint of a configured server. */
export function endpointFor(
  role: string,
  server: RedisServerConfig,
  options: EndpointOptions = {},
): Endpoint {
  return {
    role,
    host: server.host,
    port: server.port,
    username: server.username,
    password: server.password,
    ...(server.tls ? { tls: endpointTls(role, server.tls) } : {}),
    ...(server.sentinel ? { sentinel: endpointSentinel(role, server) } : {}),
    commandTimeoutMs: server.commandTimeout * 1000,
    healthCheckIntervalMs: options.healthChecks ? server.healthCheckInterval * 1000 : 0,
  };
}

function endpointTls(role: string, tls: TlsConfig): EndpointTls {
  const unloaded = (tls.caFile !== undefined && tls.ca === undefined) ||
    (tls.certFile !== undefined && tls.cert === undefined) ||
    (tls.keyFile !== undefined && tls.key === undefined);
  if (unloaded) {
    throw new Error(
      `The TLS files of the ${role} are not loaded: pass the configuration through loadTlsFiles()`,
    );
  }
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
    insecure: tls.insecure,
  };
}

function endpointSentinel(role: string, server: RedisServerConfig): EndpointSentinel {
  const s = server.sentinel!;
  return {
    addresses: s.addresses,
    masterName: s.masterName,
    ...(s.username === undefined ? {} : { username: s.username }),
    ...(s.password === undefined ? {} : { password: s.password }),
    // The sentinels' TLS uses the server's files, and checks each sentinel's own name.
    ...(s.tls && server.tls
      ? { tls: { ...endpointTls(role, server.tls), servername: undefined } }
      : {}),
  };
}

/**
 * `host:port` as used in messages (`[::1]:6379` for IPv6); for a server
 * behind sentinels, `<master name> via sentinels`.
 */
export function serverAddress(
  options: { host: string; port: number; sentinel?: { masterName: string } },
): string {
  if (options.sentinel) return `${options.sentinel.masterName} via sentinels`;
  return options.host.includes(":")
    ? `[${options.host}]:${options.port}`
    : `${options.host}:${options.port}`;
}

/** The CLIENT SETNAME of a connection: `redis-stream-sync-<name>`. */
export function clientName(name: string): string {
  return `redis-stream-sync-${name}`;
}
