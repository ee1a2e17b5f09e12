/**
 * The start-up check survives a server that answers the connect and then
 * stops answering (paused, restarted, cut) in the middle of the check:
 * found by `deno task chaos` (an instance paused for 2.5 s right after its
 * start exited with code 1, "No reply from target ... to INFO").
 */
import assert from "node:assert/strict";
import { checkConnectivity } from "../lib/ops/mod.ts";
import { RedisServer } from "../testing/redis.ts";
import { captureLogs, replicationConfig } from "./_replication.ts";

/**
 * A proxy to `port` whose first connection goes silent (holds what the
 * server answers, for good) right after the server's first `+PONG`: the
 * check's PING is answered, what it sends next is not.
 */
function silentAfterPing(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let first = true;
  const accepting = (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
      open.add(client).add(upstream);
      const silent = first;
      first = false;
      (async () => {
        for await (const chunk of client.readable.values({ preventCancel: true })) {
          await upstream.write(chunk).catch(() => {});
        }
      })().catch(() => {});
      (async () => {
        let ponged = false;
        for await (const chunk of upstream.readable.values({ preventCancel: true })) {
          if (silent && ponged) continue;
          await client.write(chunk).catch(() => {});
          if (new TextDecoder().decode(chunk).includes("+PONG")) ponged = true;
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      await accepting;
    },
  };
}

Deno.test("the start-up check tries again when a server stops answering after the connect: said at WARNING, the check then passes", async () => {
  const logs = await captureLogs("WARNING");
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using proxy = silentAfterPing(target.port);
  const config = replicationConfig(source, { host: "127.0.0.1", port: proxy.port }, {
    TARGET_REDIS_COMMAND_TIMEOUT: 1,
  });
  const result = await checkConnectivity(config);
  assert.match(result.targetVersion, /^\d+\.\d+/);
  assert.ok(
    logs.lines.some((l) => /start-up check lost its connection/.test(l.message)),
    logs.lines.map((l) => l.message).join("\n"),
  );
});
