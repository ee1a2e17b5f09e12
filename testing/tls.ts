/**
 * Test certificates made with `openssl` at test time, and the arguments
 * that give a `redis-server` a TLS port beside its plain one (tests seed and
 * read data on the plain port; the replicator is pointed at the TLS port).
 *
 * @module
 */
import { join } from "node:path";
import { freePort, RedisServer } from "./redis.ts";

/** Paths of the PEM files of one test PKI, in a temporary directory. */
export interface TestCertificates extends AsyncDisposable {
  dir: string;
  /** The test CA's certificate. */
  ca: string;
  /** Server certificate, for DNS:redis.test, DNS:localhost and IP:127.0.0.1, signed by `ca`. */
  serverCert: string;
  serverKey: string;
  /** Client certificate signed by `ca`. */
  clientCert: string;
  clientKey: string;
  /** A self-signed certificate of another CA, and its key (a client certificate `ca` did not sign). */
  otherCert: string;
  otherKey: string;
  /** `clientKey`, encrypted with the passphrase "pass". */
  encryptedKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * The files of the test PKI, by name, with their modes: made by openssl once per process (the
 * RSA keys take most of a second), then written anew for each {@linkcode makeCertificates}.
 */
let pki: Promise<Map<string, { bytes: Uint8Array; mode: number }>> | undefined;

/**
 * Makes a CA, a server and a client certificate (RSA 2048, valid 2 days) in a new directory:
 * the same certificates and keys for every call in one process, each call its own copy of the
 * files (removed by its disposal).
 */
export async function makeCertificates(): Promise<TestCertificates> {
  pki ??= makePki().catch((error) => {
    pki = undefined; // the next call tries again
    throw error;
  });
  const files = await pki;
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-tls-" });
  try {
    for (const [name, { bytes, mode }] of files) {
      await Deno.writeFile(join(dir, name), bytes, { mode });
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const at = (file: string) => join(dir, file);
  return {
    dir,
    ca: at("ca.crt"),
    serverCert: at("server.crt"),
    serverKey: at("server.key"),
    clientCert: at("client.crt"),
    clientKey: at("client.key"),
    otherCert: at("other.crt"),
    otherKey: at("other.key"),
    encryptedKey: at("encrypted.key"),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs openssl in a temporary directory for the files of the test PKI; reads them and removes it. */
async function makePki(): Promise<Map<string, { bytes: Uint8Array; mode: number }>> {
  const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-pki-" });
  try {
    await opensslPki(dir);
    const files = new Map<string, { bytes: Uint8Array; mode: number }>();
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      const path = join(dir, entry.name);
      const mode = ((await Deno.stat(path)).mode ?? 0o600) & 0o777;
      files.set(entry.name, { bytes: await Deno.readFile(path), mode });
    }
    return files;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The openssl runs that make the test PKI's files in `dir`. */
async function opensslPki(dir: string): Promise<void> {
  const days = ["-days", "2"];
  const rsa = ["-newkey", "rsa:2048", "-nodes"];
  // The keys first, all at the same time (each key takes a while), then the signatures.
  await Promise.all([
    openssl([
      "req",
      "-x509",
      ...rsa,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      ...days,
      "-subj",
      "/CN=Test CA",
    ], dir),
    openssl([
      "req",
      "-x509",
      ...rsa,
      "-keyout",
      "other.key",
      "-out",
      "other.crt",
      ...days,
      "-subj",
      "/CN=Other CA",
    ], dir),
    ...["server", "client"].map((name) =>
      openssl([
        "req",
        ...rsa,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${name}`,
      ], dir)
    ),
    Deno.writeTextFile(
      join(dir, "server.ext"),
      "subjectAltName=DNS:redis.test,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    ),
    Deno.writeTextFile(
      join(dir, "client.ext"),
      "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    ),
  ]);
  await Promise.all([
    // Serial numbers given (not a shared serial file written by both at once).
    ...["server", "client"].map((name, i) =>
      openssl([
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        String(i + 1),
        "-out",
        `${name}.crt`,
        ...days,
        "-extfile",
        `${name}.ext`,
      ], dir)
    ),
    openssl([
      "pkey",
      "-in",
      "client.key",
      "-aes256",
      "-passout",
      "pass:pass",
      "-out",
      "encrypted.key",
    ], dir),
  ]);
}

/** A test server with a TLS port (`tlsPort`) beside its plain one (`port`). */
export interface TlsServer {
  server: RedisServer;
  tlsPort: number;
}

/**
 * Starts a `redis-server` with a TLS port. With `clientCerts`, clients
 * must present a certificate signed by the test CA (`tls-auth-clients yes`).
 */
export async function startTlsServer(
  certs: TestCertificates,
  options: { clientCerts?: boolean; appendOnly?: boolean; args?: string[] } = {},
): Promise<TlsServer & AsyncDisposable> {
  const tlsPort = freePort();
  const server = await RedisServer.start({
    args: [
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      certs.serverCert,
      "--tls-key-file",
      certs.serverKey,
      "--tls-ca-cert-file",
      certs.ca,
      "--tls-auth-clients",
      options.clientCerts ? "yes" : "no",
      ...(options.args ?? []),
    ],
    appendOnly: options.appendOnly ?? false,
  });
  return {
    server,
    tlsPort,
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}
