/**
 * Reads and checks the TLS files a configuration names (CA, client
 * certificate, key), once at start-up, so that a file that cannot be read
 * or parsed is a configuration error naming its key and its path, not a
 * failed handshake later.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { ConfigError } from "../errors.ts";
import type { Config, RedisServerConfig, TlsConfig } from "./types.ts";

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The configuration with the contents of its TLS files filled in (`ca`,
 * `cert`, `key` of each side's `tls`); unchanged when neither side uses
 * TLS files.
 *
 * @throws {ConfigError} listing every file that cannot be read, is not PEM,
 * holds an encrypted key, or whose key does not belong to its certificate.
 */
export async function loadTlsFiles(config: Config): Promise<Config> {
  const problems: string[] = [];
  const source = await loadSide(config.source, "SOURCE", problems);
  const target = await loadSide(config.target, "TARGET", problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ...config,
    source: { ...config.source, ...source },
    target: { ...config.target, ...target },
  };
}

async function loadSide(
  server: RedisServerConfig,
  side: "SOURCE" | "TARGET",
  problems: string[],
): Promise<{ tls?: TlsConfig }> {
  const tls = server.tls;
  if (!tls) return {};
  const prefix = `${side}_REDIS_TLS_`;
  const readPem = async (key: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      problems.push(`${prefix}${key} "${path}" cannot be read: ${(error as Error).message}`);
      return undefined;
    }
  };
  const ca = await readPem("CA_FILE", tls.caFile);
  const cert = await readPem("CERT_FILE", tls.certFile);
  const key = await readPem("KEY_FILE", tls.keyFile);
  if (ca !== undefined) checkCertificates(ca, `${prefix}CA_FILE "${tls.caFile}"`, problems);
  const certOk = cert !== undefined &&
    checkCertificates(cert, `${prefix}CERT_FILE "${tls.certFile}"`, problems);
  if (key !== undefined) {
    checkKey(key, {
      what: `${prefix}KEY_FILE "${tls.keyFile}"`,
      cert: certOk ? cert : undefined,
      certWhat: `${prefix}CERT_FILE "${tls.certFile}"`,
    }, problems);
  }
  return {
    tls: {
      ...tls,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    },
  };
}

/** Whether `pem` holds at least one certificate, each of which parses. */
function checkCertificates(pem: string, what: string, problems: string[]): boolean {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    problems.push(
      `${what} holds no certificate: expected PEM ("-----BEGIN CERTIFICATE-----" blocks)`,
    );
    return false;
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      problems.push(
        `${what}: certificate ${i + 1} of ${blocks.length} cannot be parsed (${
          (error as Error).message
        })`,
      );
      return false;
    }
  }
  return true;
}

function checkKey(
  pem: string,
  options: { what: string; cert: string | undefined; certWhat: string },
  problems: string[],
): void {
  const { what, cert, certWhat } = options;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    problems.push(
      `${what} is encrypted: expected an unencrypted PEM key (decrypt it with ` +
        "`openssl pkey -in KEY -out KEY.plain` and keep the result readable only by the service)",
    );
    return;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    problems.push(`${what} holds no private key: expected PEM ("-----BEGIN PRIVATE KEY-----")`);
    return;
  }
  let keyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (error) {
    problems.push(`${what} cannot be parsed as a private key (${(error as Error).message})`);
    return;
  }
  if (cert === undefined) return;
  const first = cert.match(CERTIFICATE_BLOCK)![0];
  if (!new X509Certificate(first).checkPrivateKey(keyObject)) {
    problems.push(`${what} is not the key of the certificate in ${certWhat}`);
  }
}
