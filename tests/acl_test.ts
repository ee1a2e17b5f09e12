/**
 * The ACL lines of docs/operating.md ("ACL users") are enough: users created
 * with exactly those lines on a source and a target run `run --once`,
 * `status` and `verify`, and the copy is exact.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../testing/cli.ts";
import { connect, RedisServer } from "../testing/redis.ts";
import { ClusterTestClient, startClusters } from "../testing/cluster.ts";
import { addEntries, entriesDifference, pendingCount, waitFor } from "./_replication.ts";

const GUIDE = Deno.readTextFileSync(new URL("../docs/operating.md", import.meta.url));

/** The `ACL SETUSER <user> ...` line of docs/operating.md for `user`, as arguments. */
function aclLine(user: string): string[] {
  const line = GUIDE.split("\n").find((l) => l.startsWith(`ACL SETUSER ${user} `));
  assert.ok(line, `docs/operating.md has no ACL SETUSER line for ${user}`);
  return line.trim().split(/\s+/).slice(1);
}

/** The extra line of docs/operating.md for `user` on a Redis Cluster. */
function clusterAclLine(user: string): string[] {
  const line = GUIDE.split("\n").find((l) => l.startsWith(`ACL SETUSER ${user} +cluster`));
  assert.ok(line, `docs/operating.md has no cluster ACL SETUSER line for ${user}`);
  return line.trim().split(/\s+/).slice(1);
}

/** The keys that point the tool at `source` and `target` as the guide's users. */
function usersEnv(
  source: { host: string; port: number },
  target: { host: string; port: number },
): Record<string, string> {
  return {
    SOURCE_REDIS_HOST: source.host,
    SOURCE_REDIS_PORT: String(source.port),
    SOURCE_REDIS_USERNAME: "sync-source",
    SOURCE_REDIS_PASSWORD: "source-password",
    TARGET_REDIS_HOST: target.host,
    TARGET_REDIS_PORT: String(target.port),
    TARGET_REDIS_USERNAME: "sync-target",
    TARGET_REDIS_PASSWORD: "target-password",
    REDIS_DB_SEARCH_RANGE: "0",
  };
}

Deno.test("users made with exactly the guide's ACL lines replicate, and status and verify work", async () => {
  await using source = await RedisServer.start();
  await using target = await RedisServer.start({ appendOnly: true });
  await using src = await connect(source);
  await using dst = await connect(target);
  const [sourceLine, targetLine] = [aclLine("sync-source"), aclLine("sync-target")];
  await src.send(["ACL", ...sourceLine]);
  await dst.send(["ACL", ...targetLine]);
  // No other user may be used by accident: the default user is turned off on both.
  await src.send(["ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all"]);
  await dst.send(["ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all"]);
  await using srcAdmin = await connect(source, { username: "admin", password: "admin-pw" });
  await using dstAdmin = await connect(target, { username: "admin", password: "admin-pw" });
  await srcAdmin.send(["ACL", "SETUSER", "default", "off"]);
  await dstAdmin.send(["ACL", "SETUSER", "default", "off"]);
  for (const key of ["acl-a-stream", "acl-b-stream"]) await addEntries(srcAdmin, key, 120);
  const env = {
    ...usersEnv(source, target),
    MIRROR_SOURCE_TRIM: "true",
    STREAM_DISCOVERY_PATTERNS: "acl-*",
    LOG_LEVEL: "INFO",
  };
  const run = await runCli(["run", "--once"], { env, timeoutMs: 60_000 });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /NOPERM|WARNING|ERROR/, run.stderr);
  for (const key of ["acl-a-stream", "acl-b-stream"]) {
    const difference = entriesDifference(
      await dstAdmin.xrangeAll(key),
      await srcAdmin.xrangeAll(key),
    );
    assert.equal(difference, undefined, `${key}: ${difference}`);
  }
  const status = await runCli(["status", "--json"], { env, timeoutMs: 60_000 });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout).streams as Array<{ key: string; state: string }>;
  assert.deepEqual(rows.map((r) => r.state), ["in-sync", "in-sync"], status.stdout);
  const verify = await runCli(["verify"], { env, timeoutMs: 60_000 });
  assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);

  // `run`: wake-ups, lease ticks, trim mirroring and group maintenance with the same users.
  await srcAdmin.send(["XGROUP", "CREATECONSUMER", "acl-a-stream", "redis-sync-group", "old"]);
  const first = (await srcAdmin.xrangeAll("acl-a-stream"))[10][0];
  await srcAdmin.send(["XTRIM", "acl-a-stream", "MINID", first]);
  await using service = spawnCli(["run"], {
    env: {
      ...env,
      STREAM_POLL_INTERVAL: "0.2",
      STREAM_DISCOVERY_INTERVAL: "0.3",
      STREAM_PENDING_CHECK_INTERVAL: "0.5",
      STREAM_CONSUMER_IDLE_TIMEOUT: "0.5",
      STREAM_LEASE_TTL: "1",
    },
    timeoutMs: 120_000,
  });
  await service.waitForOutput(/Replicating 2 new streams/, 30_000);
  await addEntries(srcAdmin, "acl-c-stream", 30);
  await waitFor(async () => {
    const consumers = await srcAdmin.send([
      "XINFO",
      "CONSUMERS",
      "acl-a-stream",
      "redis-sync-group",
    ]);
    return Number(await dstAdmin.send(["XLEN", "acl-c-stream"])) === 30 &&
      Number(await dstAdmin.send(["XLEN", "acl-a-stream"])) === 110 &&
      !(consumers as unknown[][]).some((c) => String(c[1]) === "old");
  }, {
    timeoutMs: 30_000,
    message: `the new stream copied, the trim mirrored, "old" removed\n${service.stderr()}`,
  });
  service.signal("SIGTERM");
  const stopped = await service.wait();
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.doesNotMatch(stopped.stderr, /NOPERM|WARNING|ERROR/, stopped.stderr);
});

/** A source and a target with the guide's users, the default user off; `drop` removes one rule. */
async function serversWithUsers(drop: { side: "source" | "target"; rule: string }) {
  const source = await RedisServer.start();
  const target = await RedisServer.start({ appendOnly: true });
  for (const [server, user] of [[source, "sync-source"], [target, "sync-target"]] as const) {
    await using admin = await connect(server);
    const dropping = drop.side === (server === source ? "source" : "target");
    const line = aclLine(user).filter((rule) => !(dropping && rule === drop.rule));
    assert.equal(line.length, aclLine(user).length - (dropping ? 1 : 0));
    await admin.send(["ACL", ...line]);
    await admin.send(["ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all"]);
  }
  const env = {
    ...usersEnv(source, target),
    STREAM_DISCOVERY_PATTERNS: "acl-*",
    METRICS_PORT: "0",
  };
  return {
    source,
    target,
    env,
    async [Symbol.asyncDispose]() {
      await source[Symbol.asyncDispose]();
      await target[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a target user without +xadd: the copy stops with the documented error naming the rule to add, nothing acknowledged", async () => {
  await using servers = await serversWithUsers({ side: "target", rule: "+xadd" });
  await using src = await connect(servers.source);
  await addEntries(src, "acl-x-stream", 20);
  const run = await runCli(["run", "--once"], { env: servers.env, timeoutMs: 60_000 });
  assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(
    run.stderr,
    /NOPERM [^\n]*'xadd' command \(the ACL user needs \+xadd; see "ACL users" in docs\/operating\.md\)/,
  );
  assert.equal(await pendingCount(src, "acl-x-stream", "redis-sync-group"), 20);
});

Deno.test("a source user without +client|unblock: one WARNING naming the rule, and replication goes on", async () => {
  await using servers = await serversWithUsers({ side: "source", rule: "+client|unblock" });
  await using src = await connect(servers.source);
  await using dst = await connect(servers.target);
  await addEntries(src, "acl-u-1", 20);
  await using service = spawnCli(["run"], {
    env: { ...servers.env, STREAM_POLL_INTERVAL: "0.5", STREAM_DISCOVERY_INTERVAL: "0.3" },
    timeoutMs: 120_000,
  });
  await waitFor(async () => Number(await dst.send(["XLEN", "acl-u-1"])) === 20, {
    timeoutMs: 30_000,
    message: "the first stream copied",
  });
  // New streams make the reader be woken (CLIENT UNBLOCK), which is refused.
  for (let i = 2; i <= 4; i++) {
    await addEntries(src, `acl-u-${i}`, 20);
    await waitFor(async () => Number(await dst.send(["XLEN", `acl-u-${i}`])) === 20, {
      timeoutMs: 30_000,
      message: `stream ${i} copied`,
    });
  }
  await service.waitForOutput(/WARNING[^\n]*the ACL user needs \+client\|unblock/, 30_000);
  service.signal("SIGTERM");
  const stopped = await service.wait();
  assert.equal(stopped.code, 0, stopped.stderr);
  const warnings = stopped.stderr.split("\n").filter((l) => /needs \+client\|unblock/.test(l));
  assert.equal(warnings.length, 1, stopped.stderr);
  assert.doesNotMatch(stopped.stderr, /ERROR/);
  for (let i = 1; i <= 4; i++) {
    assert.equal(
      entriesDifference(await dst.xrangeAll(`acl-u-${i}`), await src.xrangeAll(`acl-u-${i}`)),
      undefined,
    );
  }
});

Deno.test("on clusters, users made with the guide's ACL lines plus its cluster lines replicate live (notifications) and once, and status and verify work", async () => {
  const [sourceCluster, targetCluster] = await startClusters(2);
  await using source = sourceCluster;
  await using target = targetCluster;
  for (const node of source.nodes) {
    await using c = await connect(node);
    await c.send(["ACL", ...aclLine("sync-source")]);
    await c.send(["ACL", ...clusterAclLine("sync-source")]);
    await c.send(["CONFIG", "SET", "notify-keyspace-events", "Et"]);
  }
  for (const node of target.nodes) {
    await using c = await connect(node);
    await c.send(["ACL", ...aclLine("sync-target")]);
    await c.send(["ACL", ...clusterAclLine("sync-target")]);
  }
  await using src = new ClusterTestClient(source.seed);
  await using dst = new ClusterTestClient(target.seed);
  const keys = Array.from({ length: 12 }, (_, i) => `acl-cl:${i}`);
  for (const key of keys) for (let i = 0; i < 50; i++) await src.xadd(key, { n: String(i) });
  const env = {
    ...usersEnv(source.seed, target.seed),
    SOURCE_REDIS_CLUSTER: "true",
    TARGET_REDIS_CLUSTER: "true",
    STREAM_DISCOVERY_PATTERNS: "acl-cl:*",
    STREAM_DISCOVERY_INTERVAL: "0.3",
    // A sweep far away: the live entries below arrive by notification (subscribe allowed).
    STREAM_POLL_INTERVAL: "30",
    LOG_LEVEL: "INFO",
  };
  const same = async () => {
    for (const key of keys) {
      if (entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key))) return false;
    }
    return true;
  };
  {
    await using cli = spawnCli(["run"], { env, timeoutMs: 120_000 });
    await waitFor(same, { timeoutMs: 60_000, message: "the backlog copied" });
    for (const key of keys) await src.xadd(key, { n: "live" });
    await waitFor(same, { timeoutMs: 20_000, message: "live entries copied by notification" });
    cli.signal("SIGTERM");
    const result = await cli.wait();
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /NOPERM|sends no stream notifications/);
  }
  for (const key of keys) await src.xadd(key, { n: "once" });
  const once = await runCli(["run", "--once"], { env, timeoutMs: 60_000 });
  assert.equal(once.code, 0, once.stderr);
  assert.ok(await same());
  const status = await runCli(["status", "--json"], { env, timeoutMs: 60_000 });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).streams.length, keys.length);
  const verify = await runCli(["verify"], { env, timeoutMs: 60_000 });
  assert.equal(verify.code, 0, verify.stderr + verify.stdout);
});
