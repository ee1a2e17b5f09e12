/**
 * The bench's baseline, scripts/seed_baseline.py (the original service's
 * loop: one XADD round trip per entry), is the project's own: a fresh clone
 * runs it with Debian's python3 and python3-redis, which scripts/setup.sh
 * installs. It must really copy, or the bench compares against nothing.
 */
import assert from "node:assert/strict";
import { connect, RedisServer } from "../testing/redis.ts";
import { assertSameEntries } from "./_replication.ts";

const SCRIPT = new URL("../scripts/seed_baseline.py", import.meta.url).pathname;

async function runBaseline(args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `seed_baseline.py ${args.join(" ")} failed (${out.code}):\n${stderr}`);
  return new TextDecoder().decode(out.stdout).trim();
}

for (const pipelined of [false, true]) {
  Deno.test(
    `scripts/seed_baseline.py${
      pipelined ? " --pipelined" : ""
    } copies a stream exactly (IDs and bytes) and prints the entries it copied`,
    async () => {
      await using source = await RedisServer.start();
      await using target = await RedisServer.start();
      await using src = await connect(source);
      await using dst = await connect(target);
      const key = "baseline:stream";
      // 250 entries (three batches of 100, the last one short), with binary values.
      for (let i = 0; i < 250; i++) {
        await src.send([
          "XADD",
          key,
          `${1000 + i}-${i % 3}`,
          "n",
          String(i),
          "bytes",
          new Uint8Array([0, 255, i % 256, 13, 10]),
        ]);
      }
      const out = await runBaseline([
        String(source.port),
        String(target.port),
        key,
        "100",
        ...(pipelined ? ["--pipelined"] : []),
      ]);
      const [entries, rate] = out.split(/\s+/).map(Number);
      assert.equal(entries, 250, `it printed "${out}"`);
      assert.ok(rate > 0, `it printed "${out}"`);
      assertSameEntries(await dst.xrangeAll(key), await src.xrangeAll(key), "target vs source");
      // It removes its consumer group when done.
      assert.deepEqual(await src.send(["XINFO", "GROUPS", key]), []);
    },
  );
}
