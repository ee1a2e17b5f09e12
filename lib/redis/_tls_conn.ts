/**
 * A TLS connection as the socket reads and writes it (`read`, `write`,
 * `close`, like a `Deno.Conn`), made with `node:tls`: unlike
 * `Deno.connectTls`, it can send a server name other than the host, turn
 * verification off, and present a client certificate in every case. Its
 * failures that come from the certificates or from a side that does not
 * speak TLS become {@linkcode TlsError}s that say what to change. Internal
 * to the redis folder.
 *
 * @module
 */
import { isIP } from "node:net";
import tls from "node:tls";
import { TlsError } from "../errors.ts";
import type { EndpointTls } from "./endpoint.ts";

/** What the socket needs of a connection. */
export interface ByteConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** Options for {@linkcode connectTls}. */
export interface ConnectTlsOptions {
  /** The TLS settings. */
  tls: EndpointTls;
  /** Aborts the connect and the handshake. */
  signal: AbortSignal;
  /** `source "host:port"`, for messages. */
  where: string;
  /** "source" or "target": the prefix of the keys a message names. */
  role: string;
  /**
   * The server is a sentinel: a message names `*_SENTINEL_TLS`, and no
   * server name (a sentinel's certificate is checked against its address).
   * @default {false}
   */
  sentinel?: boolean;
}

/** Bytes received and not yet read after which the socket stops reading. */
const HIGH_WATER = 1 << 20;

/**
 * Opens a TLS connection to `host:port` and resolves once the handshake is
 * done; rejects with a {@linkcode TlsError} for certificate problems, else
 * with the socket's error.
 */
export function connectTls(
  host: string,
  port: number,
  options: ConnectTlsOptions,
): Promise<ByteConn> {
  const { tls: settings, signal, where, role } = options;
  const sentinel = options.sentinel ?? false;
  const servername = settings.servername ?? (isIP(host) ? undefined : host);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      ...(servername === undefined ? {} : { servername }),
      ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      ...(settings.cert === undefined ? {} : { cert: settings.cert, key: settings.key }),
      rejectUnauthorized: !settings.insecure,
    });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason ?? new Error("aborted"));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const onError = (error: Error) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(tlsFailure(error, { where, role, servername: servername ?? host, sentinel }));
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      try {
        socket.setNoDelay(true);
        socket.setKeepAlive(true);
      } catch {
        // not fatal
      }
      resolve(new NodeTlsConn(socket, { where, role, servername: servername ?? host, sentinel }));
    });
  });
}

interface FailureContext {
  where: string;
  role: string;
  servername: string;
  sentinel: boolean;
}

/** A `node:tls` socket read and written like a `Deno.Conn`. */
class NodeTlsConn implements ByteConn {
  readonly #socket: tls.TLSSocket;
  readonly #context: FailureContext;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | null = null;
  #waiting: (() => void) | null = null;

  constructor(socket: tls.TLSSocket, context: FailureContext) {
    this.#socket = socket;
    this.#context = context;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= HIGH_WATER) socket.pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= tlsFailure(error, context);
      this.#wake();
    });
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
    let n = 0;
    while (n < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, buffer.length - n);
      buffer.set(take === chunk.length ? chunk : chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered < HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(data: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (error?: Error | null) => {
        if (error) reject(this.#error ?? tlsFailure(error, this.#context));
        else resolve(data.length);
      });
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wake();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }
}

/** Verification failures of the server's certificate chain (OpenSSL's names, as node:tls reports them). */
const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * The error a TLS failure becomes: a {@linkcode TlsError} that says what to
 * change when it comes from the certificates, else `error` itself.
 */
export function tlsFailure(error: Error, context: FailureContext): Error {
  if (error instanceof TlsError) return error;
  const { where, role, servername, sentinel } = context;
  const prefix = `${role.toUpperCase()}_REDIS_TLS`;
  const code = String((error as { code?: unknown }).code ?? "");
  const detail = `${error.message}${code && !error.message.includes(code) ? ` (${code})` : ""}`;
  const make = (message: string) => new TlsError(message, { cause: error });
  if (UNTRUSTED.has(code) || /UnknownIssuer|not trusted|self[- ]signed/i.test(error.message)) {
    return make(
      `The certificate of ${where} is not trusted: ${detail}. Set ${prefix}_CA_FILE to the CA ` +
        `certificate that signed it (or, for a test server only, ${prefix}_INSECURE=true)`,
    );
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    return make(`The certificate of ${where} is not valid now: ${detail}`);
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /not valid for name/i.test(error.message)) {
    if (sentinel) {
      return make(
        `The certificate of ${where} is not valid for the address "${servername}" it is ` +
          `reached at: ${detail}. Give the sentinel a certificate for that address`,
      );
    }
    return make(
      `The certificate of ${where} is not valid for the name "${servername}": ${detail}. Set ` +
        `${prefix}_SERVERNAME to a name the certificate holds`,
    );
  }
  if (/CERTIFICATE_REQUIRED|CertificateRequired/i.test(code + error.message)) {
    return make(
      `${capitalize(where)} requires a client certificate: set ${prefix}_CERT_FILE and ` +
        `${prefix}_KEY_FILE`,
    );
  }
  if (
    /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED)/
      .test(code)
  ) {
    return make(
      `${capitalize(where)} refused the client certificate of ${prefix}_CERT_FILE: ${detail}`,
    );
  }
  if (
    /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER|CorruptMessage|InvalidContentType/i
      .test(code + error.message)
  ) {
    const key = `${role.toUpperCase()}_REDIS_${sentinel ? "SENTINEL_TLS" : "TLS"}`;
    return make(
      `${capitalize(where)} does not speak TLS on that port (${detail}): set ${key}=false, ` +
        "or use its TLS port",
    );
  }
  return error;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
