/**
 * What a MULTI/XADD.../EXEC's replies become (lib/redis/_outcomes.ts
 * execReplies), on replies of a real server: a transaction that the server
 * discarded at EXEC because it ran out of memory, or became a read-only
 * replica, after the commands were queued, is that error (OOM, READONLY):
 * retried, not a stream stopped.
 */
import assert from "node:assert/strict";
import { isRetriableError, RedisReplyError } from "../lib/errors.ts";
import { execReplies } from "../lib/redis/mod.ts";
import { PARSE_VALUES } from "../lib/redis/parse_mode.ts";
import { RespParser, type RespValue } from "../lib/redis/resp_parser.ts";
import { RespWriter } from "../lib/redis/resp_writer.ts";
import { connect, freePort, RedisServer, type TestClient } from "../testing/redis.ts";

/** A raw connection: commands sent one group at a time, replies parsed as the writer parses them. */
class RawConnection implements Disposable {
  readonly #conn: Deno.TcpConn;
  readonly #parser = new RespParser();
  readonly #replies: RespValue[] = [];

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(server: RedisServer): Promise<RawConnection> {
    return new RawConnection(await Deno.connect({ hostname: server.host, port: server.port }));
  }

  /** Sends `commands` and returns their `commands.length` replies. */
  async send(commands: string[][]): Promise<RespValue[]> {
    const out = new RespWriter();
    for (const c of commands) out.command(c);
    const bytes = out.take();
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    while (this.#replies.length < commands.length) {
      const room = this.#parser.writable();
      const n = await this.#conn.read(room);
      if (n === null) throw new Error("connection closed");
      this.#parser.commit(n);
      this.#parser.parse(() => PARSE_VALUES, (value) => this.#replies.push(value));
    }
    return this.#replies.splice(0, commands.length);
  }

  [Symbol.dispose](): void {
    this.#conn.close();
  }
}

/** Queues two XADDs, then `between` changes the server, then EXEC: every reply, in order. */
async function discardedAtExec(
  server: RedisServer,
  between: (admin: TestClient) => Promise<unknown>,
): Promise<RespValue[]> {
  await using admin = await connect(server);
  using raw = await RawConnection.open(server);
  const queued = await raw.send([
    ["MULTI"],
    ["XADD", "s", "1-1", "f", "v"],
    ["XADD", "s", "1-2", "f", "v"],
  ]);
  assert.deepEqual(queued, ["OK", "QUEUED", "QUEUED"], "the commands were queued");
  await between(admin);
  return [...queued, ...await raw.send([["EXEC"]])];
}

function refusal(replies: RespValue[]): RedisReplyError {
  try {
    execReplies(replies, "the target");
  } catch (error) {
    assert.ok(error instanceof RedisReplyError, String(error));
    return error;
  }
  assert.fail(`execReplies accepted ${JSON.stringify(replies)}`);
}

Deno.test("an EXEC discarded for lack of memory after its XADDs were queued is the OOM error: retriable, with the server's words", async () => {
  await using server = await RedisServer.start();
  const replies = await discardedAtExec(
    server,
    (admin) => admin.send(["CONFIG", "SET", "maxmemory", "1"]),
  );
  const exec = replies.at(-1);
  assert.ok(exec instanceof RedisReplyError && exec.code === "EXECABORT", String(exec));
  const error = refusal(replies);
  assert.equal(error.code, "OOM");
  assert.match(error.message, /^OOM command not allowed when used memory > 'maxmemory'/);
  assert.ok(isRetriableError(error), "an OOM at EXEC is retried");
});

Deno.test("an EXEC discarded because the target became a read-only replica after its XADDs were queued is the READONLY error: retriable", async () => {
  await using server = await RedisServer.start();
  const replies = await discardedAtExec(server, async (admin) => {
    // A replica of a master that is not there: read-only at once, never synced.
    await admin.send(["REPLICAOF", "127.0.0.1", String(freePort())]);
  });
  const exec = replies.at(-1);
  assert.ok(exec instanceof RedisReplyError, String(exec));
  const error = refusal(replies);
  assert.ok(isRetriableError(error), `${error.code}: ${error.message}`);
});

Deno.test("an EXECABORT whose cause is a refused queued command is that command's error, and one without a known cause stays EXECABORT", () => {
  const queuedRefusal = refusal([
    "OK",
    new RedisReplyError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    new RedisReplyError("EXECABORT Transaction discarded because of previous errors."),
  ]);
  assert.equal(queuedRefusal.code, "WRONGTYPE");
  const unknown = refusal([
    "OK",
    "QUEUED",
    new RedisReplyError("EXECABORT Transaction discarded because of previous errors."),
  ]);
  assert.equal(unknown.code, "EXECABORT");
  assert.ok(!isRetriableError(unknown));
});
