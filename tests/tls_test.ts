/**
 * TLS on both sides, against real `redis-server` TLS ports and certificates
 * made with `openssl` at test time: exact copies (client certificate,
 * server name, `rediss://` URL with user, password and DB), each start-up
 * failure with its message and exit code, `*_TLS_INSECURE`, bad files, and
 * a restart of a TLS server during `run`.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../testing/cli.ts";
import { connect } from "../testing/redis.ts";
import { addEntries, entriesDifference, FAST_SETTINGS, waitFor } from "./_replication.ts";
import { makeCertificates, startTlsServer, type TestCertificates } from "../testing/tls.ts";

const LOOPBACK = "127.0.0.1";

function tlsEnv(
  side: "SOURCE" | "TARGET",
  port: number,
  settings: Record<string, string> = {},
): Record<string, string> {
  return {
    [`${side}_REDIS_HOST`]: LOOPBACK,
    [`${side}_REDIS_PORT`]: String(port),
    [`${side}_REDIS_TLS`]: "true",
    ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [`${side}_REDIS_${k}`, v])),
  };
}

function clientCert(certs: TestCertificates): Record<string, string> {
  return { TLS_CA_FILE: certs.ca, TLS_CERT_FILE: certs.clientCert, TLS_KEY_FILE: certs.clientKey };
}

Deno.test("run --once copies exactly over TLS on both sides: client certificate, server name, rediss:// URL with user, password and DB", async () => {
  await using certs = await makeCertificates();
  await using source = await startTlsServer(certs, { clientCerts: true });
  await using target = await startTlsServer(certs);
  await using src = await connect(source.server);
  await using dst = await connect(target.server);
  await dst.send(["ACL", "SETUSER", "copier", "on", ">tls-secret-pw", "~*", "+@all"]);
  // A target that keeps its data: the start has nothing to warn about.
  await dst.send(["CONFIG", "SET", "appendonly", "yes"]);
  for (const key of ["tls-a", "tls-b"]) await addEntries(src, key, 150);
  const env = {
    ...FAST_SETTINGS,
    ...tlsEnv("SOURCE", source.tlsPort, clientCert(certs)),
    TARGET_REDIS_URL: `rediss://copier:tls-secret-pw@${LOOPBACK}:${target.tlsPort}/3`,
    TARGET_REDIS_TLS_CA_FILE: certs.ca,
    TARGET_REDIS_TLS_SERVERNAME: "redis.test",
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_DISCOVERY_PATTERNS: "tls-*",
    LOG_LEVEL: "DEBUG",
  };
  const run = await runCli(["run", "--once"], { env, timeoutMs: 60_000 });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.ok(
    !`${run.stdout}${run.stderr}`.includes("tls-secret-pw"),
    "the URL's password was printed",
  );
  assert.doesNotMatch(run.stderr, /WARNING|ERROR/);
  await dst.send(["SELECT", "3"]);
  for (const key of ["tls-a", "tls-b"]) {
    const difference = entriesDifference(await dst.xrangeAll(key), await src.xrangeAll(key));
    assert.equal(difference, undefined, `${key}: ${difference}`);
  }
});

Deno.test("TLS failures at start-up exit 78, each with a message that says what to change", async () => {
  await using certs = await makeCertificates();
  await using plainAuth = await startTlsServer(certs);
  await using mutual = await startTlsServer(certs, { clientCerts: true });
  const target = { TARGET_REDIS_HOST: LOOPBACK, TARGET_REDIS_PORT: String(plainAuth.server.port) };
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      "untrusted certificate",
      tlsEnv("SOURCE", plainAuth.tlsPort),
      /The certificate of source "127\.0\.0\.1:\d+" is not trusted: .*Set SOURCE_REDIS_TLS_CA_FILE/,
    ],
    [
      "name mismatch",
      tlsEnv("SOURCE", plainAuth.tlsPort, { TLS_CA_FILE: certs.ca, TLS_SERVERNAME: "wrong.test" }),
      /is not valid for the name "wrong\.test".*Set SOURCE_REDIS_TLS_SERVERNAME/,
    ],
    [
      "client certificate required",
      tlsEnv("SOURCE", mutual.tlsPort, { TLS_CA_FILE: certs.ca }),
      /Source "127\.0\.0\.1:\d+" requires a client certificate: set SOURCE_REDIS_TLS_CERT_FILE and SOURCE_REDIS_TLS_KEY_FILE/,
    ],
    [
      "client certificate refused",
      tlsEnv("SOURCE", mutual.tlsPort, {
        TLS_CA_FILE: certs.ca,
        TLS_CERT_FILE: certs.otherCert,
        TLS_KEY_FILE: certs.otherKey,
      }),
      /Source "127\.0\.0\.1:\d+" refused the client certificate of SOURCE_REDIS_TLS_CERT_FILE/,
    ],
    [
      "TLS spoken to a plain port",
      { ...tlsEnv("SOURCE", plainAuth.server.port), SOURCE_REDIS_COMMAND_TIMEOUT: "2" },
      /Source "127\.0\.0\.1:\d+" does not speak TLS on that port .*set SOURCE_REDIS_TLS=false/,
    ],
    [
      "plain spoken to a TLS port",
      { SOURCE_REDIS_HOST: LOOPBACK, SOURCE_REDIS_PORT: String(plainAuth.tlsPort) },
      /Source "127\.0\.0\.1:\d+" speaks TLS on that port, and the connection was plain: set SOURCE_REDIS_TLS=true/,
    ],
  ];
  // Independent runs: all at the same time.
  const results = await Promise.all(
    cases.map(([, env]) => runCli(["check"], { env: { ...target, ...env }, timeoutMs: 60_000 })),
  );
  for (const [i, [name, , message]] of cases.entries()) {
    const result = results[i];
    assert.equal(result.code, 78, `${name}: ${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, message, name);
    assert.doesNotMatch(result.stderr, /Socket closed unexpectedly|stack|at async/, name);
  }
  // The target side names its own keys.
  const target2 = await runCli(["check"], {
    env: {
      SOURCE_REDIS_HOST: LOOPBACK,
      SOURCE_REDIS_PORT: String(plainAuth.server.port),
      ...tlsEnv("TARGET", mutual.tlsPort, { TLS_CA_FILE: certs.ca }),
    },
    timeoutMs: 60_000,
  });
  assert.equal(target2.code, 78, target2.stderr);
  assert.match(
    target2.stderr,
    /Target "127\.0\.0\.1:\d+" requires a client certificate: set TARGET_REDIS_TLS_CERT_FILE/,
  );
});

Deno.test("TLS_INSECURE connects to a server whose certificate is not trusted, and warns at every start", async () => {
  await using certs = await makeCertificates();
  await using server = await startTlsServer(certs);
  const env = {
    ...tlsEnv("SOURCE", server.tlsPort, { TLS_INSECURE: "true", TLS_SERVERNAME: "wrong.test" }),
    TARGET_REDIS_HOST: LOOPBACK,
    TARGET_REDIS_PORT: String(server.server.port),
    // One server for both sides: the copies go to a DB that is not scanned.
    REDIS_DB_SEARCH_RANGE: "0",
    TARGET_REDIS_DB: "1",
  };
  for (let start = 0; start < 2; start++) {
    const result = await runCli(["check"], { env, timeoutMs: 60_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(
      result.stderr,
      /WARNING - SOURCE_REDIS_TLS_INSECURE is true: the source's certificate and name are not verified/,
    );
  }
});

Deno.test("TLS files that cannot be read or parsed are configuration errors naming the key and the file", async () => {
  await using certs = await makeCertificates();
  const missing = `${certs.dir}/missing.crt`;
  const result = await runCli(["check"], {
    env: {
      ...tlsEnv("SOURCE", 1, {
        TLS_CA_FILE: missing,
        TLS_CERT_FILE: certs.clientKey,
        TLS_KEY_FILE: certs.clientKey,
      }),
      ...tlsEnv("TARGET", 1, { TLS_CERT_FILE: certs.clientCert, TLS_KEY_FILE: certs.encryptedKey }),
    },
    timeoutMs: 60_000,
  });
  assert.equal(result.code, 78, result.stderr);
  const lines = result.stderr.split("\n");
  const has = (pattern: RegExp) =>
    assert.ok(lines.some((l) => pattern.test(l)), `${pattern}\n${result.stderr}`);
  has(new RegExp(`SOURCE_REDIS_TLS_CA_FILE "${missing}" cannot be read`));
  has(
    new RegExp(
      `SOURCE_REDIS_TLS_CERT_FILE "${certs.clientKey}" holds no certificate: expected PEM`,
    ),
  );
  has(new RegExp(`TARGET_REDIS_TLS_KEY_FILE "${certs.encryptedKey}" is encrypted`));
  // A key that is not the certificate's.
  const mismatch = await runCli(["check"], {
    env: tlsEnv("SOURCE", 1, { TLS_CERT_FILE: certs.clientCert, TLS_KEY_FILE: certs.otherKey }),
    timeoutMs: 60_000,
  });
  assert.equal(mismatch.code, 78, mismatch.stderr);
  assert.match(
    mismatch.stderr,
    /SOURCE_REDIS_TLS_KEY_FILE ".*other\.key" is not the key of the certificate in SOURCE_REDIS_TLS_CERT_FILE/,
  );
  assert.doesNotMatch(mismatch.stderr, /PRIVATE KEY/);
});

Deno.test("a TLS source restarted during run: the copy resumes over TLS and ends exact", async () => {
  await using certs = await makeCertificates();
  // Persistent, so that its data survives the restart; the TLS port stays (fixed in its arguments).
  await using source = await startTlsServer(certs, { clientCerts: true, appendOnly: true });
  await using target = await startTlsServer(certs);
  const env = {
    ...FAST_SETTINGS,
    ...tlsEnv("SOURCE", source.tlsPort, clientCert(certs)),
    ...tlsEnv("TARGET", target.tlsPort, { TLS_CA_FILE: certs.ca }),
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_DISCOVERY_PATTERNS: "tls-live-*",
  };
  {
    await using src = await connect(source.server);
    await addEntries(src, "tls-live-1", 50);
  }
  await using cli = spawnCli(["run"], { env, timeoutMs: 120_000 });
  await using dst = await connect(target.server);
  await waitFor(async () => (await dst.xrangeAll("tls-live-1")).length === 50, {
    timeoutMs: 30_000,
    message: "the first 50 entries on the target",
  });
  await source.server.restart();
  await using src = await connect(source.server);
  await addEntries(src, "tls-live-1", 70);
  await waitFor(async () => (await dst.xrangeAll("tls-live-1")).length === 120, {
    timeoutMs: 60_000,
    message: "all 120 entries on the target after the restart",
  });
  const difference = entriesDifference(
    await dst.xrangeAll("tls-live-1"),
    await src.xrangeAll("tls-live-1"),
  );
  assert.equal(difference, undefined, difference);
  cli.signal("SIGTERM");
  const result = await cli.wait();
  assert.equal(result.code, 0, result.stderr);
});
