/**
 * The `health` command (lib/ops/health.ts), the container's HEALTHCHECK:
 * run as the real CLI (main.ts in a subprocess) against a real replicator
 * (`run` with real `redis-server` processes), against a replicator that is
 * not ready, and against nothing at all.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CliResult, runCli, spawnCli, waitFor } from "../testing/cli.ts";
import { freePort, RedisServer } from "../testing/redis.ts";
import { defaultHealthUrl } from "../lib/ops/health.ts";
import { ConfigError } from "../lib/errors.ts";
import { replicationEnv } from "./_replication.ts";

const TIMEOUT_MS = 60_000;

/** A fresh temporary directory (the CLI's working directory: no stray ./env.conf). */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-health-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** `result` as text, for assertion messages. */
function show(result: CliResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** Status of a GET, or 0 when nothing answers. */
async function status(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

Deno.test("health exits 0 and says healthy while run serves /healthz, with METRICS_HOST=0.0.0.0 asked on 127.0.0.1 (as in the image)", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using dir = await tempDir();
  const port = freePort();
  // The image's setting: the listener on every address, the health check from inside.
  const env = replicationEnv(source, target, { METRICS_HOST: "0.0.0.0", METRICS_PORT: port });
  await using run = spawnCli(["run"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  await waitFor(async () => await status(`http://127.0.0.1:${port}/readyz`) === 200, {
    timeoutMs: 30_000,
    message: "run ready",
  });

  const healthy = await runCli(["health"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(healthy.code, 0, show(healthy));
  assert.equal(healthy.stdout, `healthy: http://127.0.0.1:${port}/healthz answered 200 ok\n`);
  assert.equal(healthy.stderr, "");

  const ready = await runCli(["health", "--url", `http://127.0.0.1:${port}/readyz`], {
    cwd: dir.path,
    env,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(ready.code, 0, show(ready));
  assert.equal(ready.stdout, `healthy: http://127.0.0.1:${port}/readyz answered 200 ready\n`);

  // A path the listener does not serve is not healthy.
  const wrong = await runCli(["health", "--url", `http://127.0.0.1:${port}/nope`], {
    cwd: dir.path,
    env,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(wrong.code, 1, show(wrong));
  assert.match(wrong.stderr, /^unhealthy: http:\/\/127\.0\.0\.1:\d+\/nope answered 404 Not found/);
  run.signal("SIGTERM");
  assert.equal((await run.wait()).code, 0);
});

Deno.test("health exits 1 with a message naming the URL when nothing listens there", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const result = await runCli(["health"], {
    cwd: dir.path,
    env: { METRICS_PORT: String(port) },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(result.code, 1, show(result));
  assert.equal(result.stdout, "");
  assert.equal(
    result.stderr,
    `unhealthy: http://127.0.0.1:${port}/healthz: connection refused: nothing listens there ` +
      "(is `redis-stream-sync run` running, with the METRICS_HOST and METRICS_PORT of this configuration?)\n",
  );
  const withUrl = await runCli(["health", "--url", `http://127.0.0.1:${port}/readyz`], {
    cwd: dir.path,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(withUrl.code, 1, show(withUrl));
  assert.match(
    withUrl.stderr,
    /^unhealthy: http:\/\/127\.0\.0\.1:\d+\/readyz: connection refused: nothing listens there \(is `redis-stream-sync run` listening there\?\)$/m,
  );
});

Deno.test("health --url .../readyz exits 1 with the reason while run waits for an unreachable target; /healthz stays healthy", async () => {
  await using source = await RedisServer.start();
  await using dir = await tempDir();
  const port = freePort();
  // Nothing listens on the target's port: run keeps retrying it at start-up.
  const env = replicationEnv(source, { port: freePort() }, {
    METRICS_PORT: port,
    TARGET_REDIS_MAX_RETRIES: "1000",
  });
  await using run = spawnCli(["run"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  await waitFor(async () => await status(`http://127.0.0.1:${port}/healthz`) === 200, {
    timeoutMs: 30_000,
    message: "run listening",
  });
  const notReady = await runCli(["health", "--url", `http://127.0.0.1:${port}/readyz`], {
    cwd: dir.path,
    env,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(notReady.code, 1, show(notReady));
  assert.match(
    notReady.stderr,
    /^unhealthy: http:\/\/127\.0\.0\.1:\d+\/readyz answered 503 not ready: waiting for the source and target to answer$/m,
  );
  const live = await runCli(["health"], { cwd: dir.path, env, timeoutMs: TIMEOUT_MS });
  assert.equal(live.code, 0, show(live));
  run.signal("SIGTERM");
  await run.wait();
});

Deno.test("health refuses METRICS_PORT=0 (exit 78), a --url that is not http(s) and --url on another command (exit 2)", async () => {
  await using dir = await tempDir();
  const off = await runCli(["health"], {
    cwd: dir.path,
    env: { METRICS_PORT: "0" },
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(off.code, 78, show(off));
  assert.match(
    off.stderr,
    /METRICS_PORT is 0 .*Set METRICS_PORT to the port `run` listens on, or give --url/,
  );

  const ftp = await runCli(["health", "--url", "ftp://127.0.0.1/healthz"], {
    cwd: dir.path,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(ftp.code, 2, show(ftp));
  assert.match(
    ftp.stderr,
    /--url "ftp:\/\/127\.0\.0\.1\/healthz" must be an http:\/\/ or https:\/\/ URL/,
  );

  const elsewhere = await runCli(["status", "--url", "http://127.0.0.1:9108/healthz"], {
    cwd: dir.path,
    timeoutMs: TIMEOUT_MS,
  });
  assert.equal(elsewhere.code, 2, show(elsewhere));
  assert.match(elsewhere.stderr, /The flag --url does not apply to the "status" command/);
});

Deno.test("the default health URL is /healthz on METRICS_HOST:METRICS_PORT, a wildcard host asked on loopback", () => {
  assert.equal(
    defaultHealthUrl({ metricsHost: "127.0.0.1", metricsPort: 9108 }),
    "http://127.0.0.1:9108/healthz",
  );
  assert.equal(
    defaultHealthUrl({ metricsHost: "0.0.0.0", metricsPort: 9200 }),
    "http://127.0.0.1:9200/healthz",
  );
  assert.equal(
    defaultHealthUrl({ metricsHost: "::", metricsPort: 9108 }),
    "http://[::1]:9108/healthz",
  );
  assert.equal(
    defaultHealthUrl({ metricsHost: "fd00::5", metricsPort: 9108 }),
    "http://[fd00::5]:9108/healthz",
  );
  assert.equal(
    defaultHealthUrl({ metricsHost: "metrics.local", metricsPort: 1 }),
    "http://metrics.local:1/healthz",
  );
  assert.throws(
    () => defaultHealthUrl({ metricsHost: "127.0.0.1", metricsPort: 0 }),
    (error) => error instanceof ConfigError && /METRICS_PORT is 0/.test(error.message),
  );
});
