/**
 * A busy metrics port (a second instance on the host, any process holding
 * METRICS_PORT) does not stop replication: the service says so at WARNING,
 * copies on, and serves metrics once the port is free.
 */
import assert from "node:assert/strict";
import { runService } from "../lib/ops/mod.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import { captureLogs, replicationConfig, waitFor, waitForCopy } from "./_replication.ts";

Deno.test("with METRICS_PORT held by another process, run replicates, says why there are no metrics, and serves them once the port is free", async () => {
  const logs = await captureLogs("INFO");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  const port = freePort();
  const holder = Deno.listen({ hostname: "127.0.0.1", port });
  let held = true;
  const stop = new AbortController();
  const config = replicationConfig(source, target, {
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: port,
  });
  const service = runService(config, { signal: stop.signal, listenRetryMs: 200 });
  try {
    await src.send(["XADD", "orders-stream", "*", "n", "1"]);
    await waitForCopy(src, "orders-stream", dst);
    const said = logs.atLeast(
      "WARNING",
      /Cannot serve metrics and health on 127\.0\.0\.1:\d+: the address is in use/,
    );
    assert.equal(said.length, 1, logs.toString());
    assert.match(said[0].message, /METRICS_PORT/);
    holder.close();
    held = false;
    await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      const text = await response?.text();
      return response?.status === 200 &&
        text!.includes("redis_stream_sync_entries_replicated_total");
    }, { timeoutMs: 10_000, message: "metrics served once the port is free" });
    await src.send(["XADD", "orders-stream", "*", "n", "2"]);
    await waitForCopy(src, "orders-stream", dst);
  } finally {
    if (held) holder.close();
    stop.abort();
    const result = await service;
    assert.equal(result.ok, true);
  }
});
