/**
 * The settings of one Redis server (`SOURCE_REDIS_*` or `TARGET_REDIS_*`):
 * its URL or separate keys, and its TLS keys. Internal to the config folder.
 *
 * @module
 */
import { type LoadContext, lookUp, read } from "./_load_context.ts";
import {
  integer,
  parseAddressList,
  parseBoolean,
  type Parsed,
  parseHost,
  parseOptionalBoolean,
  parseRedisUrl,
  parseSeconds,
} from "./parsers.ts";
import type { RedisServerConfig, SentinelConfig, TlsConfig } from "./types.ts";

const DEFAULT_ORIGIN = " (default)";

/** The settings of the source or the target Redis; `parseDb` reads its `*_REDIS_DB`. */
export function readServer<Db>(
  ctx: LoadContext,
  side: "SOURCE" | "TARGET",
  parseDb: (text: string) => Parsed<Db>,
): RedisServerConfig & { db: Db } {
  const prefix = `${side}_REDIS_`;
  const url = read(ctx, `${prefix}URL`, parseRedisUrl);
  if (url) {
    // The URL overrides the separate keys: said when one of them is set too.
    for (
      const key of ["HOST", "PORT", "USERNAME", "PASSWORD", ...(url.db === undefined ? [] : ["DB"])]
    ) {
      const raw = lookUp(ctx, prefix + key);
      if (raw.origin !== DEFAULT_ORIGIN) {
        ctx.warnings.push(`${prefix}${key}${raw.origin} is ignored: ${prefix}URL is set`);
      }
    }
  }
  const host = url?.host ?? read(ctx, `${prefix}HOST`, parseHost);
  const port = url?.port ?? read(ctx, `${prefix}PORT`, integer(1, 65535));
  const username = url ? url.username ?? "" : lookUp(ctx, `${prefix}USERNAME`).text;
  const password = url ? url.password ?? "" : lookUp(ctx, `${prefix}PASSWORD`).text;
  const db = read(ctx, `${prefix}DB`, parseDb);
  const tls = readTls(ctx, side, url?.tls);
  const sentinel = readSentinel(ctx, side, tls !== undefined);
  const cluster = read(ctx, `${prefix}CLUSTER`, parseBoolean);
  if (cluster && sentinel) {
    ctx.problems.push(
      `${prefix}CLUSTER and ${prefix}SENTINELS are both set: a cluster finds its masters ` +
        `itself, so empty ${prefix}SENTINELS (or set ${prefix}CLUSTER=false)`,
    );
  }
  if (sentinel) {
    for (const key of ["HOST", "PORT"]) {
      const raw = lookUp(ctx, prefix + key);
      if (raw.origin !== DEFAULT_ORIGIN) {
        ctx.warnings.push(`${prefix}${key}${raw.origin} is ignored: ${prefix}SENTINELS is set`);
      }
    }
  }
  return {
    host,
    port,
    ...(username === "" ? {} : { username }),
    ...(password === "" ? {} : { password }),
    ...(tls ? { tls } : {}),
    ...(sentinel ? { sentinel } : {}),
    ...(cluster ? { cluster } : {}),
    ...(url ? { url: lookUp(ctx, `${prefix}URL`).text.trim() } : {}),
    db: url?.db === undefined ? db : url.db as Db,
    maxRetries: read(ctx, `${prefix}MAX_RETRIES`, integer(0)),
    backoffBase: read(ctx, `${prefix}BACKOFF_BASE`, parseSeconds),
    backoffMax: read(ctx, `${prefix}BACKOFF_MAX`, parseSeconds),
    healthCheckInterval: read(ctx, `${prefix}HEALTH_CHECK_INTERVAL`, parseSeconds),
    poolSize: read(ctx, `${prefix}POOL_SIZE`, integer(1)),
    commandTimeout: read(ctx, `${prefix}COMMAND_TIMEOUT`, parseSeconds),
  };
}

/**
 * `*_REDIS_TLS` and its companions; undefined for plain TCP. A `rediss://`
 * URL turns TLS on (`*_REDIS_TLS=false` beside it is a problem: the two
 * disagree). A TLS key set while TLS is off is a problem too: the user
 * meant TLS, and a plain connection would send the password in the clear.
 */
function readTls(
  ctx: LoadContext,
  side: "SOURCE" | "TARGET",
  urlTls: boolean | undefined,
): TlsConfig | undefined {
  const prefix = `${side}_REDIS_`;
  const flag = read(ctx, `${prefix}TLS`, parseBoolean);
  const flagRaw = lookUp(ctx, `${prefix}TLS`);
  if (urlTls && !flag && flagRaw.origin !== DEFAULT_ORIGIN) {
    ctx.problems.push(
      `${prefix}TLS is false${flagRaw.origin}, but ${prefix}URL is rediss:// (TLS): ` +
        `use redis:// for a plain connection, or empty ${prefix}TLS`,
    );
  }
  const on = flag || urlTls === true;
  const text = (key: string) => lookUp(ctx, prefix + key).text.trim();
  const files = { caFile: text("TLS_CA_FILE"), certFile: text("TLS_CERT_FILE") };
  const keyFile = text("TLS_KEY_FILE");
  for (const key of ["TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE"]) {
    // PEM text given where a path belongs (a key's text must never be printed back).
    if (/-----BEGIN|[\r\n]/.test(text(key))) {
      ctx.problems.push(
        `${prefix}${key} must be the path of a PEM file, not its contents${
          lookUp(ctx, prefix + key).origin
        }: ` +
          "write it to a file (readable only by the service, for a key) and give its path",
      );
      return undefined;
    }
  }
  const servername = text("TLS_SERVERNAME");
  const insecure = read(ctx, `${prefix}TLS_INSECURE`, parseBoolean);
  if (!on) {
    const set = [
      ...Object.entries({ ...files, keyFile, servername })
        .filter(([, value]) => value !== "")
        .map(([name]) => KEY_OF[name]),
      ...(insecure ? ["TLS_INSECURE"] : []),
    ];
    for (const key of set) {
      ctx.problems.push(
        `${prefix}${key} is set${lookUp(ctx, prefix + key).origin}, but TLS is off: ` +
          `set ${prefix}TLS=true (or use a rediss:// URL), or empty ${prefix}${key}`,
      );
    }
    return undefined;
  }
  if ((files.certFile === "") !== (keyFile === "")) {
    const [given, missing] = files.certFile === "" ? ["KEY", "CERT"] : ["CERT", "KEY"];
    ctx.problems.push(
      `${prefix}TLS_${missing}_FILE must be set too: ${prefix}TLS_${given}_FILE is set, and a ` +
        "client certificate needs both its certificate and its key",
    );
  }
  if (insecure) {
    ctx.warnings.push(
      `${prefix}TLS_INSECURE is true: the ${side.toLowerCase()}'s certificate and name are ` +
        "not verified, so anyone on the path could read and change the data",
    );
  }
  return {
    ...(files.caFile === "" ? {} : { caFile: files.caFile }),
    ...(files.certFile === "" ? {} : { certFile: files.certFile }),
    ...(keyFile === "" ? {} : { keyFile }),
    ...(servername === "" ? {} : { servername }),
    insecure,
  };
}

const KEY_OF: Record<string, string> = {
  caFile: "TLS_CA_FILE",
  certFile: "TLS_CERT_FILE",
  keyFile: "TLS_KEY_FILE",
  servername: "TLS_SERVERNAME",
};

/**
 * `*_REDIS_SENTINELS` and its companions; undefined when no sentinels are
 * set. The master's name must be set with them, and is a problem alone.
 */
function readSentinel(
  ctx: LoadContext,
  side: "SOURCE" | "TARGET",
  serverTls: boolean,
): SentinelConfig | undefined {
  const prefix = `${side}_REDIS_`;
  const addresses = read(ctx, `${prefix}SENTINELS`, parseAddressList);
  const masterName = lookUp(ctx, `${prefix}SENTINEL_MASTER`).text.trim();
  const username = lookUp(ctx, `${prefix}SENTINEL_USERNAME`).text;
  const password = lookUp(ctx, `${prefix}SENTINEL_PASSWORD`).text;
  const tls = read(ctx, `${prefix}SENTINEL_TLS`, parseOptionalBoolean);
  if (addresses.length === 0) {
    if (ctx.invalid.has(`${prefix}SENTINELS`)) return undefined;
    for (
      const key of ["SENTINEL_MASTER", "SENTINEL_USERNAME", "SENTINEL_PASSWORD", "SENTINEL_TLS"]
    ) {
      const raw = lookUp(ctx, prefix + key);
      if (raw.origin !== DEFAULT_ORIGIN && raw.text.trim() !== "") {
        ctx.problems.push(
          `${prefix}${key} is set${raw.origin}, but ${prefix}SENTINELS is empty: set the ` +
            `sentinels' addresses, or empty ${prefix}${key}`,
        );
      }
    }
    return undefined;
  }
  if (masterName === "") {
    ctx.problems.push(
      `${prefix}SENTINEL_MASTER must be set: ${prefix}SENTINELS is set, and the sentinels are ` +
        "asked for a master by its name",
    );
  }
  if (tls === true && !serverTls) {
    ctx.problems.push(
      `${prefix}SENTINEL_TLS is true, but ${prefix}TLS is off: the sentinels' TLS uses the ` +
        `server's TLS settings, so set ${prefix}TLS=true too`,
    );
  }
  return {
    addresses,
    masterName,
    ...(username === "" ? {} : { username }),
    ...(password === "" ? {} : { password }),
    tls: tls ?? serverTls,
  };
}
