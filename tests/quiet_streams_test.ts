/**
 * An entry of a quiet stream is copied without waiting for anything else to
 * happen (issue 18): not held back by big entries that went through another
 * stream, with leases (fenced reads) and without.
 */
import { connect, RedisServer } from "../testing/redis.ts";
import { quietLogs, replicationConfig, startReplicator, waitForCopy } from "./_replication.ts";

for (const leases of [true, false]) {
  Deno.test(`the last entries of a small stream are copied after 20 MB entries went through another stream (STREAM_LEASES=${leases})`, async () => {
    await quietLogs();
    await using source = await RedisServer.start();
    await using target = await RedisServer.start();
    await using src = await connect(source);
    await using big = await connect(source);
    await using dst = await connect(target);
    await src.send(["XADD", "small-stream", "*", "v", "start"]);
    await src.send(["XADD", "big-stream", "*", "v", "start"]);
    await using _live = startReplicator(
      replicationConfig(source, target, { STREAM_LEASES: leases }),
    );
    await waitForCopy(src, "small-stream", dst);
    let stop = false;
    const small = (async () => {
      for (let i = 0; !stop; i++) {
        await src.send(["XADD", "small-stream", "*", "i", String(i)]);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const payload = "x".repeat(20 * 1024 * 1024);
    for (let n = 0; n < 3; n++) await big.send(["XADD", "big-stream", "*", "blob", payload]);
    stop = true;
    await small;
    // Nothing is written to either stream from now on: the small stream's tail must still come.
    await waitForCopy(src, "small-stream", dst);
    await waitForCopy(src, "big-stream", dst, "big-stream", { timeoutMs: 60_000 });
  });
}
