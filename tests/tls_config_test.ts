/**
 * The TLS keys as loadConfig() reads them (pure), and loadTlsFiles() on
 * files made with `openssl`.
 */
import assert from "node:assert/strict";
import { formatConfig } from "../lib/config/format_config.ts";
import { loadConfig } from "../lib/config/load_config.ts";
import { loadTlsFiles } from "../lib/config/tls_files.ts";
import { ConfigError } from "../lib/errors.ts";
import { problemsOf } from "./_config.ts";
import { endpointFor } from "../lib/redis/endpoint.ts";
import { makeCertificates } from "../testing/tls.ts";

Deno.test("TLS is off by default, and on with *_REDIS_TLS=true or a rediss:// URL", () => {
  const plain = loadConfig({}, {}, "").config;
  assert.equal(plain.source.tls, undefined);
  assert.equal(plain.target.tls, undefined);
  const { config } = loadConfig(
    {},
    {},
    "SOURCE_REDIS_TLS=true\nSOURCE_REDIS_TLS_SERVERNAME=redis.internal\n" +
      "TARGET_REDIS_URL=rediss://u:pw@t.example:6380/2\nTARGET_REDIS_TLS_CA_FILE=/etc/ca.pem\n",
  );
  assert.deepStrictEqual(config.source.tls, { servername: "redis.internal", insecure: false });
  assert.deepStrictEqual(config.target.tls, { caFile: "/etc/ca.pem", insecure: false });
  assert.equal(config.target.host, "t.example");
  assert.equal(config.target.db, 2);
  const printed = formatConfig(config);
  assert.match(printed, /^TARGET_REDIS_URL=rediss:\/\/u:\*\*\*@t\.example:6380\/2$/m);
  assert.match(printed, /^TARGET_REDIS_TLS=true$/m);
  assert.match(printed, /^SOURCE_REDIS_TLS_SERVERNAME=redis\.internal$/m);
  // What --print-config prints loads back to the same TLS settings.
  const again = loadConfig({}, {}, printed.replace("u:***@", "u:pw@")).config;
  assert.deepStrictEqual(again.target.tls, config.target.tls);
  assert.deepStrictEqual(again.source.tls, config.source.tls);
});

Deno.test("a TLS key set while TLS is off, TLS=false beside rediss://, and a certificate without its key are configuration errors", () => {
  assert.deepStrictEqual(
    problemsOf("SOURCE_REDIS_TLS_CA_FILE=/etc/ca.pem\nTARGET_REDIS_TLS_INSECURE=true\n"),
    [
      "SOURCE_REDIS_TLS_CA_FILE is set (env.conf line 1), but TLS is off: set SOURCE_REDIS_TLS=true " +
      "(or use a rediss:// URL), or empty SOURCE_REDIS_TLS_CA_FILE",
      "TARGET_REDIS_TLS_INSECURE is set (env.conf line 2), but TLS is off: set TARGET_REDIS_TLS=true " +
      "(or use a rediss:// URL), or empty TARGET_REDIS_TLS_INSECURE",
    ],
  );
  const [conflict] = problemsOf("SOURCE_REDIS_URL=rediss://h\nSOURCE_REDIS_TLS=false\n");
  assert.match(
    conflict,
    /^SOURCE_REDIS_TLS is false \(env\.conf line 2\), but SOURCE_REDIS_URL is rediss:\/\/ \(TLS\)/,
  );
  assert.deepStrictEqual(problemsOf("TARGET_REDIS_TLS=true\nTARGET_REDIS_TLS_CERT_FILE=/c.pem\n"), [
    "TARGET_REDIS_TLS_KEY_FILE must be set too: TARGET_REDIS_TLS_CERT_FILE is set, and a client " +
    "certificate needs both its certificate and its key",
  ]);
  assert.match(problemsOf("SOURCE_REDIS_TLS=maybe\n")[0], /^SOURCE_REDIS_TLS must be/);
});

Deno.test("PEM text where a TLS file path belongs is refused without being printed", () => {
  const problems = problemsOf(
    'SOURCE_REDIS_TLS=true\nSOURCE_REDIS_TLS_KEY_FILE="-----BEGIN PRIVATE KEY-----\\nMIIsecret\\n"\n',
  );
  assert.deepStrictEqual(problems, [
    "SOURCE_REDIS_TLS_KEY_FILE must be the path of a PEM file, not its contents (env.conf line 2): " +
    "write it to a file (readable only by the service, for a key) and give its path",
  ]);
});

Deno.test("TARGET_WAIT_TIMEOUT must be below the target's command timeout", () => {
  assert.deepStrictEqual(
    problemsOf("TARGET_WAIT_REPLICAS=1\nTARGET_WAIT_TIMEOUT=10\n"),
    ["TARGET_WAIT_TIMEOUT must be below TARGET_REDIS_COMMAND_TIMEOUT: got 10 s and 10 s"],
  );
  assert.equal(
    loadConfig({}, {}, "TARGET_WAIT_REPLICAS=1\nTARGET_WAIT_TIMEOUT=2\n").config.targetWaitTimeout,
    2,
  );
});

Deno.test("TLS_INSECURE is a warning of every load", () => {
  const { warnings } = loadConfig(
    {},
    {},
    "SOURCE_REDIS_TLS=true\nSOURCE_REDIS_TLS_INSECURE=true\n",
  );
  assert.deepStrictEqual(warnings, [
    "SOURCE_REDIS_TLS_INSECURE is true: the source's certificate and name are not verified, so " +
    "anyone on the path could read and change the data",
  ]);
});

Deno.test("loadTlsFiles() fills in the PEM contents, and endpoints refuse TLS files not loaded", async () => {
  await using certs = await makeCertificates();
  const { config } = loadConfig(
    {},
    {},
    `SOURCE_REDIS_TLS=true\nSOURCE_REDIS_TLS_CA_FILE=${certs.ca}\n` +
      `SOURCE_REDIS_TLS_CERT_FILE=${certs.clientCert}\nSOURCE_REDIS_TLS_KEY_FILE=${certs.clientKey}\n`,
  );
  assert.throws(
    () => endpointFor("source", config.source),
    /TLS files of the source are not loaded/,
  );
  const loaded = await loadTlsFiles(config);
  assert.equal(loaded.source.tls?.ca, await Deno.readTextFile(certs.ca));
  assert.equal(loaded.source.tls?.key, await Deno.readTextFile(certs.clientKey));
  const endpoint = endpointFor("source", loaded.source);
  assert.equal(endpoint.tls?.cert, await Deno.readTextFile(certs.clientCert));
  assert.equal(endpoint.tls?.insecure, false);
  assert.deepStrictEqual(loaded.target, config.target);
  // A CA file that holds a key is refused, naming the key and the file.
  await assert.rejects(
    loadTlsFiles(
      loadConfig({}, {}, `TARGET_REDIS_TLS=true\nTARGET_REDIS_TLS_CA_FILE=${certs.clientKey}\n`)
        .config,
    ),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.length === 1 &&
      error.problems[0].startsWith(
        `TARGET_REDIS_TLS_CA_FILE "${certs.clientKey}" holds no certificate`,
      ),
  );
});
