import assert from "node:assert/strict";
import { connect, RedisServer } from "./_redis.ts";
import { addEntries, quietLogs, replicationConfig, runOnce, startReplicator, waitForCopy } from "./_replication.ts";

Deno.test("smoke", async () => {
  await quietLogs();
  await using source = await RedisServer.start();
  await using target = await RedisServer.start();
  await using src = await connect(source);
  await using dst = await connect(target);
  await addEntries(src, "a-stream", 5);
  const r = await runOnce(replicationConfig(source, target));
  console.log(r);
  await addEntries(src, "a-stream", 5);
  await using rep = startReplicator(replicationConfig(source, target));
  await waitForCopy(src, "a-stream", dst);
  await addEntries(src, "b-stream", 5);
  await waitForCopy(src, "b-stream", dst);
  const res = await rep.stop();
  assert.ok(res.ok);
});
