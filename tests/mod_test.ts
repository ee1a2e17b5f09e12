import assert from "node:assert/strict";
import { loadConfig, Orchestrator, setupLogging } from "../mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { waitFor } from "../testing/cli.ts";
import { assertSameEntries } from "./_replication.ts";

// Mirrors the "Library use" example of the README (checked by `deno task check`
// with `deno check --doc-only README.md`): the same imports, the same calls.
Deno.test("mod.ts embeds the replicator as the README example shows", async () => {
  await setupLogging({ level: "CRITICAL" });
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  for (let i = 1; i <= 25; i++) await src.xadd("orders-stream", `1-${i}`, { n: String(i) });
  const envConf = `SOURCE_REDIS_HOST=127.0.0.1\nSOURCE_REDIS_PORT=${source.port}\n` +
    `TARGET_REDIS_HOST=127.0.0.1\nTARGET_REDIS_PORT=${target.port}\nSTREAM_POLL_INTERVAL=0.2\n`;
  const { config } = loadConfig({}, {}, envConf);
  const controller = new AbortController();
  const orchestrator = new Orchestrator(config);
  const running = orchestrator.run(controller.signal);
  await waitFor(async () => Number(await dst.send(["XLEN", "orders-stream"])) === 25, {
    timeoutMs: 20_000,
    message: "orders-stream was not copied",
  });
  await waitFor(() => orchestrator.status().streams.some((s) => s.copied === 25), {
    timeoutMs: 5000,
    message: "the status to count 25 entries copied",
  });
  const status = orchestrator.status().streams.find((s) => s.key === "orders-stream");
  assert.ok(status);
  assert.equal(status.db, 0);
  assert.equal(status.copied, 25);
  assert.equal(status.lastCopiedId, "1-25");
  controller.abort();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    running,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the orchestrator did not stop in 15 s")), 15_000);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(result.ok, true);
  assertSameEntries(
    await dst.xrangeAll("orders-stream"),
    await src.xrangeAll("orders-stream"),
    "target orders-stream",
  );
});
