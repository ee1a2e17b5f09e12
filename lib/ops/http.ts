/**
 * The metrics and health listener: `/metrics` (Prometheus text format),
 * `/healthz` (200 while the process works) and `/readyz` (200 once both
 * servers answered and the first discovery pass finished, 503 with a
 * short reason otherwise). Deno's own HTTP server.
 *
 * @module
 */
import { sleep } from "../backoff.ts";
import { getLog } from "../log.ts";
import type { Metrics } from "./metrics.ts";

const log = getLog("http");

/** Options for {@linkcode startHttpServer}. */
export interface HttpServerOptions {
  /** Address to bind. */
  hostname: string;
  /** Port to bind (0 picks a free one). */
  port: number;
  /** The metrics registry. */
  metrics: Metrics;
  /** Whether the service is ready, and why not. */
  readiness: () => { ready: boolean; reason?: string };
  /** Stops the listener. */
  signal: AbortSignal;
}

/** A running listener. */
export interface HttpServer {
  /** The bound port. */
  port: number;
  /** Resolves once the listener is closed. */
  finished: Promise<void>;
}

/** Starts the listener; it stops when `options.signal` aborts. */
export function startHttpServer(options: HttpServerOptions): HttpServer {
  const { metrics, readiness } = options;
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: () => {},
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    switch (path) {
      case "/metrics":
        return new Response(metrics.text(), {
          headers: { "content-type": metrics.contentType },
        });
      case "/healthz":
        return new Response("ok\n", { headers: { "content-type": "text/plain" } });
      case "/readyz": {
        const { ready, reason } = readiness();
        return new Response(ready ? "ready\n" : `not ready: ${reason ?? "starting"}\n`, {
          status: ready ? 200 : 503,
          headers: { "content-type": "text/plain" },
        });
      }
      default:
        return new Response("Not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
  const port = server.addr.port;
  log.info("Metrics on http://{hostname}:{port}/metrics (health: /healthz, /readyz)", {
    hostname: options.hostname,
    port,
  });
  return { port, finished: server.finished };
}

/** How often a listener whose port is in use tries again. */
export const LISTEN_RETRY_MS = 10_000;

/**
 * Starts the listener like {@linkcode startHttpServer}, but a port in use
 * (another process holds it: a second instance on the host, a leftover)
 * does not stop the service: it says so at WARNING and tries again every
 * `retryMs` until it binds or `options.signal` aborts. Other failures (an
 * address this host does not have, a port it may not bind) throw.
 */
export function listenWhenFree(options: HttpServerOptions, retryMs = LISTEN_RETRY_MS): HttpServer {
  try {
    return startHttpServer(options);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
  }
  log.warning(
    "Cannot serve metrics and health on {hostname}:{port}: the address is in use (another process, perhaps a second instance on this host: give each its own METRICS_PORT). Replicating without them; trying again every {seconds} s",
    { hostname: options.hostname, port: options.port, seconds: retryMs / 1000 },
  );
  const finished = (async () => {
    while (!options.signal.aborted) {
      await sleep(retryMs, options.signal);
      if (options.signal.aborted) return;
      try {
        return await startHttpServer(options).finished;
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) continue;
        log.error("Cannot serve metrics and health: {error}", { error: String(error) });
        return;
      }
    }
  })();
  return { port: options.port, finished };
}
