/**
 * After a connect failed in a way that a TLS mismatch explains (a TLS
 * handshake that got no answer, a plain connection closed before its first
 * reply), one short probe of the port tells whether the server speaks the
 * other protocol there, so that the error can say so. Internal to the
 * redis folder.
 *
 * @module
 */
import tls from "node:tls";
import { ConnectionError, NotMasterError, TimeoutError, TlsError } from "../errors.ts";
import type { EndpointLike } from "./connection_options.ts";

/** How long one probe may take. */
const PROBE_MS = 2000;

/** What {@linkcode diagnoseMismatch} needs besides the endpoint. */
export interface MismatchOptions {
  /** The connect deadline passed. */
  timedOut: boolean;
  /** The socket opened (the failure came after the TCP connect). */
  opened: boolean;
  /** `source "host:port"`. */
  where: string;
  /** Aborts the probe (the connection was closed). */
  signal: AbortSignal;
}

/**
 * A {@linkcode TlsError} when the port speaks the other protocol than the
 * one configured (probed once), else undefined.
 */
export async function diagnoseMismatch(
  endpoint: EndpointLike,
  error: unknown,
  options: MismatchOptions,
): Promise<TlsError | undefined> {
  const { timedOut, opened, where, signal } = options;
  if (error instanceof TlsError || error instanceof NotMasterError) return undefined;
  const side = endpoint.role.toUpperCase();
  if (endpoint.tls) {
    const handshakeLost = error instanceof Error && /closed|reset|EOF/i.test(error.message);
    if (!(timedOut || handshakeLost)) return undefined;
    if (!(await answersPlainPing(endpoint.host, endpoint.port, signal))) return undefined;
    return new TlsError(
      `${capitalize(where)} does not speak TLS on that port (it answers plain Redis commands): ` +
        `set ${side}_REDIS_TLS=false, or use the server's TLS port`,
      { cause: error },
    );
  }
  const closedEarly = opened && error instanceof ConnectionError &&
    !(error instanceof TimeoutError);
  if (!(closedEarly || (opened && timedOut))) return undefined;
  if (!(await completesTlsHandshake(endpoint.host, endpoint.port, signal))) return undefined;
  return new TlsError(
    `${capitalize(where)} speaks TLS on that port, and the connection was plain: set ` +
      `${side}_REDIS_TLS=true (or use a rediss:// URL), with ${side}_REDIS_TLS_CA_FILE if its ` +
      "certificate is not signed by a public CA",
    { cause: error },
  );
}

/** Whether `host:port` answers `PING` in plain RESP (any reply: +PONG, -NOAUTH...). */
async function answersPlainPing(
  host: string,
  port: number,
  closed: AbortSignal,
): Promise<boolean> {
  const signal = AbortSignal.any([AbortSignal.timeout(PROBE_MS), closed]);
  let conn: Deno.Conn | undefined;
  const timer = setTimeout(() => conn?.close(), PROBE_MS);
  const onClosed = () => conn?.close();
  closed.addEventListener("abort", onClosed, { once: true });
  try {
    conn = await Deno.connect({ hostname: host, port, signal });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    return n !== null && n > 0 && (buffer[0] === 0x2b || buffer[0] === 0x2d); // '+' or '-'
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    closed.removeEventListener("abort", onClosed);
    try {
      conn?.close();
    } catch {
      // closed by the timer
    }
  }
}

/** Whether `host:port` completes a TLS handshake (certificates not checked). */
function completesTlsHandshake(host: string, port: number, closed: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (closed.aborted) return resolve(false);
    const socket = tls.connect({ host, port, rejectUnauthorized: false });
    const done = (result: boolean) => {
      clearTimeout(timer);
      closed.removeEventListener("abort", onClosed);
      socket.destroy();
      resolve(result);
    };
    const onClosed = () => done(false);
    closed.addEventListener("abort", onClosed, { once: true });
    const timer = setTimeout(() => done(false), PROBE_MS);
    socket.once("secureConnect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
