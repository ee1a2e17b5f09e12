import assert from "node:assert/strict";
import {
  AuthError,
  ConfigError,
  ConnectionError,
  errorMessage,
  EXIT_CODES,
  isRetriableError,
  RedisReplyError,
  StreamStoppedError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "../lib/errors.ts";

Deno.test("isRetriableError() retries passing server states and lost connections only", () => {
  for (
    const message of [
      "LOADING Redis is loading",
      "OOM command not allowed",
      "READONLY You can't write",
      "MISCONF",
      "BUSY script",
      "TRYAGAIN",
      "NOAUTH Authentication required.",
    ]
  ) {
    assert.equal(isRetriableError(new RedisReplyError(message)), true, message);
  }
  assert.equal(isRetriableError(new ConnectionError("reset")), true);
  assert.equal(isRetriableError(new TimeoutError("no reply")), true);
  assert.equal(isRetriableError(new AuthError("WRONGPASS")), true); // while running: the password may be changing
  for (
    const message of [
      "WRONGTYPE Operation against a key",
      "NOGROUP No such key",
      "ERR syntax error",
    ]
  ) {
    assert.equal(isRetriableError(new RedisReplyError(message)), false, message);
  }
  assert.equal(isRetriableError(new StreamStoppedError("stop")), false);
  assert.equal(isRetriableError(new TypeError("bug")), false);
});

Deno.test("error classes carry their names, codes and exit codes", () => {
  assert.equal(new RedisReplyError("WRONGTYPE Operation").code, "WRONGTYPE");
  assert.equal(new ConfigError(["a", "b"]).message, "a\nb");
  assert.deepEqual(new ConfigError(["a", "b"]).problems, ["a", "b"]);
  assert.equal(new ConfigError("x").exitCode, EXIT_CODES.CONFIG);
  assert.equal(new AuthError("x").exitCode, 78);
  assert.equal(new AuthError("x").name, "AuthError");
  assert.equal(new UnreachableError("x").exitCode, 69);
  assert.equal(new UsageError("x").exitCode, 2);
  const cause = new Error("socket");
  assert.equal(new ConnectionError("lost", { cause }).cause, cause);
});

Deno.test("errorMessage() says what to add to the ACL user when Redis refuses a permission", () => {
  assert.equal(
    errorMessage(
      new RedisReplyError(
        "NOPERM this user has no permissions to run the 'client|unblock' command",
      ),
    ),
    `NOPERM this user has no permissions to run the 'client|unblock' command (the ACL user needs +client|unblock; see "ACL users" in docs/operating.md)`,
  );
  assert.match(
    errorMessage(
      new RedisReplyError(
        "NOPERM this user has no permissions to access one of the keys used as arguments",
      ),
    ),
    /needs access to these keys/,
  );
  assert.match(
    errorMessage(
      new RedisReplyError(
        "ERR The user executing the script can't run this command or subcommand script: 31ee, on @user_script:2.",
      ),
    ),
    /a lease script was refused a command/,
  );
  assert.equal(
    errorMessage(new RedisReplyError("WRONGTYPE Operation against a key")),
    "WRONGTYPE Operation against a key",
  );
});
