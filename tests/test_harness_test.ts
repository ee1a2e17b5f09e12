/**
 * Tests of the test harness itself: testing/redis.ts against real
 * redis-server processes, and testing/cli.ts against tiny temporary scripts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import { runCli, spawnCli, START_FLAGS, waitFor, writeConfig } from "../testing/cli.ts";

const CONFIG_PATH = fileURLToPath(new URL("../deno.json", import.meta.url));
const REDIS_MODULE = new URL("../testing/redis.ts", import.meta.url).href;

/** A temporary directory, removed on disposal. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "redis-stream-sync-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Writes a script into `dir` and returns its path. */
async function writeScript(dir: string, name: string, source: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, source);
  return path;
}

Deno.test("RedisServer: starts on a free port, answers PING, disposal removes its directory", async () => {
  let dir: string;
  {
    await using server = await RedisServer.start();
    dir = server.dir;
    assert.equal(server.host, "127.0.0.1");
    assert.ok(server.port > 0);
    assert.ok(server.running);
    assert.ok((await Deno.stat(dir)).isDirectory);
    await using client = await connect(server);
    assert.equal(await client.send(["PING"]), "PONG");
    const config = await client.send(["CONFIG", "GET", "appendonly"]);
    assert.deepEqual(config, ["appendonly", "no"]);
    assert.match(await Deno.readTextFile(server.logPath), /Ready to accept connections/);
  }
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
});

Deno.test("TestClient: a binary stream entry is written and read back byte for byte", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const invalidUtf8 = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0d, 0x0a]);
  const id = await client.xadd("bin\xffstream", "1-1", [invalidUtf8, allBytes, "text", "é"]);
  assert.equal(id, "1-1");
  const id2 = await client.xadd("bin\xffstream", "*", { a: "1", b: new Uint8Array() });
  assert.match(id2, /^\d+-\d+$/);

  const entries = await client.xrangeAll("bin\xffstream");
  assert.deepEqual(entries, [
    ["1-1", [
      invalidUtf8,
      allBytes,
      new TextEncoder().encode("text"),
      new TextEncoder().encode("é"),
    ]],
    [id2, [
      new TextEncoder().encode("a"),
      new TextEncoder().encode("1"),
      new TextEncoder().encode("b"),
      new Uint8Array(),
    ]],
  ]);
  const raw = await client.sendBuffers(["XRANGE", "bin\xffstream", "1-1", "1-1"]) as unknown[][];
  assert.ok(raw[0][0] instanceof Uint8Array);
  assert.deepEqual(await client.xrangeAll("missing"), []);
});

Deno.test("TestClient: xrangeAll reads long streams page by page, and clientList parses CLIENT LIST", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server, { db: 3 });
  await Promise.all(
    Array.from({ length: 2500 }, (_, i) => client.xadd("long", `${i + 1}-0`, { n: String(i) })),
  );
  const entries = await client.xrangeAll("long");
  assert.equal(entries.length, 2500);
  assert.equal(entries[0][0], "1-0");
  assert.equal(entries[1000][0], "1001-0");
  assert.equal(entries[2499][0], "2500-0");
  assert.equal(new TextDecoder().decode(entries[2499][1][1]), "2499");

  await client.send(["CLIENT", "SETNAME", "harness"]);
  const clients = await client.clientList();
  const me = clients.find((c) => c.name === "harness");
  assert.ok(me, JSON.stringify(clients));
  assert.equal(me.db, "3");
  assert.equal(me.cmd, "client|list");
  assert.match(me.addr, /^127\.0\.0\.1:\d+$/);
});

Deno.test("RedisServer: with appendOnly, data survives stop()/start() and kill()/restart()", async () => {
  await using server = await RedisServer.start({ appendOnly: true });
  const port = server.port;
  {
    await using client = await connect(server);
    await client.xadd("s", "1-0", { f: "v1" });
  }
  await server.stop();
  assert.equal(server.running, false);
  await server.start();
  assert.equal(server.port, port);
  {
    await using client = await connect(server);
    assert.deepEqual((await client.xrangeAll("s")).map(([id]) => id), ["1-0"]);
    await client.xadd("s", "2-0", { f: "v2" });
  }
  await server.kill();
  assert.equal(server.running, false);
  await server.restart();
  assert.equal(server.running, true);
  await using client = await connect(server);
  assert.deepEqual((await client.xrangeAll("s")).map(([id]) => id), ["1-0", "2-0"]);
  await server.restart();
  await using again = await connect(server);
  assert.deepEqual((await again.xrangeAll("s")).map(([id]) => id), ["1-0", "2-0"]);
});

Deno.test("RedisServer: without appendOnly, a restart starts empty", async () => {
  await using server = await RedisServer.start();
  {
    await using client = await connect(server);
    await client.xadd("s", "1-0", { f: "v" });
  }
  await server.restart();
  await using client = await connect(server);
  assert.equal(await client.send(["EXISTS", "s"]), 0);
});

Deno.test("RedisServer: after kill() the port refuses connections, and a connected client fails", async () => {
  await using server = await RedisServer.start();
  await using client = await connect(server);
  await server.kill();
  assert.equal(server.running, false);
  await assert.rejects(client.send(["PING"]));
  await assert.rejects(connect(server), /ECONNREFUSED|refused/i);
  await assert.rejects(
    Deno.connect({ hostname: server.host, port: server.port }),
    Deno.errors.ConnectionRefused,
  );
  await server.stop(); // a no-op now
  await server.kill(); // a no-op too
});

Deno.test("RedisServer: --requirepass rejects a wrong password, accepts the right one", async () => {
  await using server = await RedisServer.start({ args: ["--requirepass", "s3cret"] });
  await assert.rejects(connect(server, { password: "wrong" }), /WRONGPASS/);
  await assert.rejects(
    connect(server, { username: "default", password: "wrong" }),
    /WRONGPASS invalid username-password pair/,
  );
  await using anonymous = await connect(server);
  await assert.rejects(anonymous.send(["PING"]), /NOAUTH/);
  await using client = await connect(server, { password: "s3cret" });
  assert.equal(await client.send(["PING"]), "PONG");
  await using named = await connect(server, { username: "default", password: "s3cret" });
  assert.equal(await named.send(["PING"]), "PONG");
  await server.restart();
  await using afterRestart = await connect(server, { password: "s3cret" });
  assert.equal(await afterRestart.send(["PING"]), "PONG");
});

Deno.test("RedisServer: a taken port fails start() with the server's log", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  const port = (listener.addr as Deno.NetAddr).port;
  const error = await RedisServer.start({ port }).then(
    () => assert.fail("start() succeeded on a taken port"),
    (error: Error) => error,
  );
  assert.match(error.message, new RegExp(`port ${port} exited during start-up`));
  assert.match(error.message, /Address already in use/);
});

Deno.test("RedisServer: another redis-server on the port is not taken for the new one", async () => {
  await using first = await RedisServer.start();
  await assert.rejects(
    RedisServer.start({ port: first.port }),
    /exited during start-up[\s\S]*Address already in use/,
  );
  await using client = await connect(first);
  assert.equal(await client.send(["PING"]), "PONG");
});

Deno.test("RedisServer: bad arguments fail start() with the server's output", async () => {
  await assert.rejects(
    RedisServer.start({ args: ["--no-such-option", "1"] }),
    /exited during start-up[\s\S]*no-such-option/,
  );
});

Deno.test("freePort returns distinct ports that can be listened on", () => {
  const ports = Array.from({ length: 20 }, () => freePort());
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports) {
    assert.ok(port > 0 && port < 65536);
    using listener = Deno.listen({ hostname: "127.0.0.1", port });
    assert.equal((listener.addr as Deno.NetAddr).port, port);
  }
});

Deno.test("RedisServer: says how to install redis-server when it is not on PATH", async () => {
  await using dir = await tempDir();
  const script = await writeScript(
    dir.path,
    "start.ts",
    `import { RedisServer } from ${JSON.stringify(REDIS_MODULE)};
try {
  await RedisServer.start();
} catch (error) {
  console.log((error as Error).message);
  Deno.exit(3);
}`,
  );
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG_PATH, script],
    env: { PATH: dir.path, DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 3, `${stdout}${new TextDecoder().decode(output.stderr)}`);
  assert.equal(
    stdout.trim(),
    'redis-server not found: install it with "apt-get install -y redis-server" (or run scripts/setup.sh)',
  );
});

Deno.test("START_FLAGS are the start task's permission and V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(CONFIG_PATH));
  const words: string[] = config.tasks.start.split(/\s+/);
  assert.ok(START_FLAGS.length > 0);
  assert.deepEqual(
    START_FLAGS,
    words.filter((word) => /^--(allow-|deny-|v8-flags=)/.test(word)),
  );
  assert.ok(!START_FLAGS.includes("--allow-all"));
});

Deno.test("runCli: passes arguments, stdin, cwd and only PATH, HOME, METRICS_PORT=0 and the given env", async () => {
  await using dir = await tempDir();
  const script = await writeScript(
    dir.path,
    "echo.ts",
    `const stdin = await new Response(Deno.stdin.readable).text();
console.log(JSON.stringify({ args: Deno.args, env: Deno.env.toObject(), cwd: Deno.cwd(), stdin }));
console.error("to stderr");
Deno.exit(3);`,
  );
  const result = await runCli(["run", "--flag", "a b"], {
    script,
    cwd: dir.path,
    env: { REDIS_SOURCE_URL: "redis://x" },
    stdin: "hello\n",
  });
  assert.equal(result.code, 3, result.stderr);
  assert.equal(result.signal, null);
  assert.equal(result.stderr, "to stderr\n");
  const seen = JSON.parse(result.stdout);
  assert.deepEqual(seen.args, ["run", "--flag", "a b"]);
  assert.equal(seen.stdin, "hello\n");
  assert.equal(seen.cwd, await Deno.realPath(dir.path));
  assert.equal(seen.env.REDIS_SOURCE_URL, "redis://x");
  assert.equal(seen.env.PATH, Deno.env.get("PATH"));
  assert.equal(seen.env.METRICS_PORT, "0");
  const allowed = new Set([
    "PATH",
    "HOME",
    "DENO_DIR",
    "DENO_NO_UPDATE_CHECK",
    "METRICS_PORT",
    "REDIS_SOURCE_URL",
  ]);
  assert.deepEqual(Object.keys(seen.env).filter((name) => !allowed.has(name)), []);
});

Deno.test("runCli: the program runs with the start task's permissions only", async () => {
  await using dir = await tempDir();
  const script = await writeScript(
    dir.path,
    "perm.ts",
    `const run = await Deno.permissions.query({ name: "run" });
const net = await Deno.permissions.query({ name: "net" });
console.log(run.state, net.state);`,
  );
  const result = await runCli([], { script });
  assert.equal(result.code, 0, result.stderr);
  const [run, net] = result.stdout.trim().split(" ");
  assert.notEqual(run, "granted");
  assert.equal(net, "granted");
});

Deno.test("runCli: a program that runs too long is killed, and runCli fails clearly", async () => {
  await using dir = await tempDir();
  const script = await writeScript(
    dir.path,
    "hang.ts",
    `console.log("hanging"); setInterval(() => {}, 1000);`,
  );
  await assert.rejects(
    runCli([], { script, timeoutMs: 2000 }),
    /timed out after 2000 ms and was killed\n--- stdout ---\n/,
  );
});

Deno.test("spawnCli: waits for output, signals, collects everything", async () => {
  await using dir = await tempDir();
  const script = await writeScript(
    dir.path,
    "serve.ts",
    `Deno.addSignalListener("SIGTERM", () => { console.log("bye"); Deno.exit(0); });
console.error("listening on 1234");
setInterval(() => {}, 1000);`,
  );
  await using cli = spawnCli(["run"], { script });
  await cli.waitForOutput(/listening on (\d+)/, 20_000);
  assert.equal(cli.stderr(), "listening on 1234\n");
  assert.equal(cli.stdout(), "");
  assert.equal(cli.exited, false);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.deepEqual(result, {
    code: 0,
    stdout: "bye\n",
    stderr: "listening on 1234\n",
    signal: null,
  });
  assert.equal(cli.exited, true);
  cli.signal("SIGTERM"); // a no-op once exited
  await assert.rejects(cli.waitForOutput(/never/, 1000), /exited \(exit code 0\) before printing/);
});

Deno.test("spawnCli: waitForOutput times out; disposal kills a running program", async () => {
  await using dir = await tempDir();
  const script = await writeScript(dir.path, "idle.ts", `setInterval(() => {}, 1000);`);
  let cli;
  {
    await using spawned = spawnCli([], { script });
    cli = spawned;
    await assert.rejects(
      spawned.waitForOutput(/ready/, 300),
      /did not print \/ready\/ within 300 ms/,
    );
  }
  assert.equal(cli.exited, true);
  const result = await cli.wait();
  assert.equal(result.signal, "SIGKILL");
});

Deno.test("writeConfig writes env.conf; waitFor polls until true or fails with its message", async () => {
  await using dir = await tempDir();
  const path = await writeConfig(dir.path, "SOURCE_URL=redis://a\n");
  assert.equal(path, join(dir.path, "env.conf"));
  assert.equal(await Deno.readTextFile(path), "SOURCE_URL=redis://a\n");

  let calls = 0;
  await waitFor(() => ++calls >= 3, { intervalMs: 10 });
  assert.equal(calls, 3);
  await waitFor(async () => {
    await Promise.resolve();
    return true;
  });
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 100, intervalMs: 10, message: "the moon" }),
    /^Error: Timed out after 100 ms waiting for the moon$/,
  );
  await assert.rejects(
    waitFor(() => {
      throw new Error("boom");
    }, { timeoutMs: 50, intervalMs: 10 }),
    /waiting for the condition \(last error: boom\)/,
  );
});

Deno.test("waitFor fails at its deadline when the check itself never returns", async () => {
  await assert.rejects(
    waitFor(() => new Promise<boolean>(() => {}), { timeoutMs: 100, message: "a hung check" }),
    /^Error: Timed out after 100 ms waiting for a hung check \(last error: the last check did not return\)$/,
  );
});

Deno.test("TestClient: a command without a reply fails after commandTimeoutMs; INFO counters", async () => {
  await using server = await RedisServer.start();
  await using proxy = await TcpProxy.start(server);
  await using direct = await connect(server);
  const received = await direct.connectionsReceived();
  await using client = await connect(proxy, { commandTimeoutMs: 200 });
  assert.equal(await direct.connectionsReceived(), received + 1, "one connection more");
  const pings = await direct.commandCalls("ping");
  assert.equal(await client.send(["PING"]), "PONG");
  assert.equal(await direct.commandCalls("PING"), pings + 1);
  proxy.blackhole(true);
  await assert.rejects(
    client.send(["PING"]),
    new RegExp(
      `^Error: Timed out after 200 ms waiting for the reply to PING from 127\\.0\\.0\\.1:${proxy.port}$`,
    ),
  );
  proxy.blackhole(false);
  assert.equal((await direct.info("server")).get("tcp_port"), String(server.port));
});
