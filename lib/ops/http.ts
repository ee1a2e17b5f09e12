/**
 * The metrics and health listener: `/metrics` (Prometheus text format),
 * `/healthz` (200 while the process works) and `/readyz` (200 once both
 * servers answered and the first discovery pass finished, 503 with a
 * short reason otherwise). Deno's own HTTP server.
 *
 * @module
 */
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
