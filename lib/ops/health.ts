/**
 * The `health` command: asks a running replicator's health listener
 * whether it is healthy, for a container's HEALTHCHECK (the image has no
 * shell and no curl). By default it asks `/healthz` at METRICS_HOST and
 * METRICS_PORT of the configuration (a wildcard METRICS_HOST, `0.0.0.0` or
 * `::`, is asked on the loopback address); `--url` asks another address or
 * `/readyz`.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import { ConfigError, errorMessage, UsageError } from "../errors.ts";

/** The path asked by default: the process works (not: both servers answer, see /readyz). */
export const DEFAULT_HEALTH_PATH = "/healthz";
/** How long one check may take by default. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 5000;

/** Options for {@linkcode checkHealth}. */
export interface HealthOptions {
  /**
   * The URL to ask (`http://` or `https://`).
   * @default {`http://<METRICS_HOST>:<METRICS_PORT>/healthz`}
   */
  url?: string;
  /**
   * Milliseconds before the check counts as failed.
   * @default {5000}
   */
  timeoutMs?: number;
  /**
   * Aborts the check (it then fails).
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** What {@linkcode checkHealth} found. */
export interface HealthResult {
  /** True when the listener answered 200. */
  healthy: boolean;
  /** The URL asked. */
  url: string;
  /** One line saying what was asked and what came back (or why nothing did). */
  message: string;
}

/**
 * The URL that `health` asks by default for `config`: `/healthz` on
 * METRICS_HOST:METRICS_PORT, with a wildcard host replaced by loopback.
 * Throws {@linkcode ConfigError} when METRICS_PORT is 0 (no listener).
 */
export function defaultHealthUrl(config: Pick<Config, "metricsHost" | "metricsPort">): string {
  if (config.metricsPort === 0) {
    throw new ConfigError(
      "health has no listener to ask: METRICS_PORT is 0 (the metrics and health listener is off). " +
        "Set METRICS_PORT to the port `run` listens on, or give --url",
    );
  }
  const host = config.metricsHost === "0.0.0.0"
    ? "127.0.0.1"
    : config.metricsHost === "::" || config.metricsHost === "[::]"
    ? "::1"
    : config.metricsHost;
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${bracketed}:${config.metricsPort}${DEFAULT_HEALTH_PATH}`;
}

/** Why a fetch failed, in a few words: fetch's own message says only "fetch failed". */
function fetchFailure(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  const text = [errorMessage(error), cause === undefined ? "" : errorMessage(cause)].join(": ");
  if (/connection refused/i.test(text)) return "connection refused: nothing listens there";
  if (/dns error|failed to lookup|name or service not known|no address associated/i.test(text)) {
    return "the host name does not resolve";
  }
  const detail = cause === undefined ? errorMessage(error) : errorMessage(cause);
  return detail.replace(/^error sending request for url \([^)]*\): /, "").split("\n")[0];
}

/** `url` if it is an http(s) URL; throws {@linkcode UsageError} naming what is expected. */
function parseHealthUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `--url "${url}" is not a URL: expected e.g. http://127.0.0.1:9108/readyz`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(
      `--url "${url}" must be an http:// or https:// URL, e.g. http://127.0.0.1:9108/readyz`,
    );
  }
  return parsed.href;
}

/**
 * Asks the health listener once. Resolves (never throws for an unhealthy
 * or absent listener): `healthy` only for a 200 answer. Throws
 * {@linkcode UsageError} for a malformed `url` and
 * {@linkcode ConfigError} when there is no URL to ask (METRICS_PORT=0).
 */
export async function checkHealth(
  config: Pick<Config, "metricsHost" | "metricsPort">,
  options: HealthOptions = {},
): Promise<HealthResult> {
  const url = options.url === undefined ? defaultHealthUrl(config) : parseHealthUrl(options.url);
  const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: "manual" });
  } catch (error) {
    const why = timeout.aborted
      ? `no answer within ${timeoutMs / 1000} s`
      : options.signal?.aborted
      ? "interrupted"
      : fetchFailure(error);
    return {
      healthy: false,
      url,
      message: `unhealthy: ${url}: ${why} ` +
        (options.url === undefined
          ? "(is `redis-stream-sync run` running, with the METRICS_HOST and METRICS_PORT of this configuration?)"
          : "(is `redis-stream-sync run` listening there?)"),
    };
  }
  let body = "";
  try {
    body = (await response.text()).trim().split("\n")[0].slice(0, 200);
  } catch {
    // The status says enough.
  }
  const answer = `${response.status}${body ? ` ${body}` : ""}`;
  return response.status === 200
    ? { healthy: true, url, message: `healthy: ${url} answered ${answer}` }
    : { healthy: false, url, message: `unhealthy: ${url} answered ${answer}` };
}
