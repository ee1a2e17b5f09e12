/**
 * Opening one socket of a connection: the master asked of the sentinels
 * (behind sentinels), the TCP or TLS connect and the handshake within one
 * deadline, and a failed connect explained when a plain/TLS port mismatch
 * explains it. Internal to the connection.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";
import { checkHandshake, handshakeCommands } from "./_handshake.ts";
import { pendingOptions } from "./_outcomes.ts";
import { diagnoseMismatch } from "./_port_probe.ts";
import { Socket } from "./_socket.ts";
import type { EndpointLike, RedisConnectionOptions } from "./connection_options.ts";
import { resolveMaster } from "./sentinel.ts";

/** What {@linkcode openSocket} needs of its connection. */
export interface OpenSocketOptions {
  /** `role "host:port"`, for messages. */
  where: string;
  /** The deadline of the connect and of the handshake, and of each sentinel asked. */
  timeoutMs: number;
  /** The DB the handshake selects. */
  db: number;
  /** How the connection is used (name, CLIENT ID, a subscriber's pushes). */
  connection: RedisConnectionOptions;
  /** Aborted at the deadline (here) or by the connection's close(). */
  controller: AbortController;
  /** Aborted by the connection's close() only (cuts the port probe). */
  closing: AbortSignal;
  /** The socket's idle and lost callbacks. */
  onIdle: () => void;
  onLost: (socket: Socket, error: Error) => void;
}

/**
 * Opens a socket to `endpoint` and runs the handshake on it; resolves to
 * the socket and the CLIENT ID (when asked for). Throws the failure, or
 * the port mismatch that explains it.
 */
export async function openSocket(
  endpoint: EndpointLike,
  options: OpenSocketOptions,
): Promise<{ socket: Socket; clientId?: string }> {
  const { where, timeoutMs, controller } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let socket: Socket | undefined;
  let at: { host: string; port: number } | undefined;
  try {
    // Behind sentinels: the master they name now (asked again at every connect; each
    // sentinel has its own deadline, before the connect's).
    at = endpoint.sentinel
      ? await resolveMaster(endpoint.sentinel, {
        role: endpoint.role,
        timeoutMs,
        signal: controller.signal,
      })
      : endpoint;
    timer = setTimeout(() => controller.abort(), timeoutMs);
    socket = await Socket.connect(at.host, at.port, {
      signal: controller.signal,
      where,
      onIdle: options.onIdle,
      onLost: options.onLost,
      onPush: options.connection.onPush,
      ...(endpoint.tls ? { tls: endpoint.tls, role: endpoint.role } : {}),
    });
    // close() or the connect deadline cuts a handshake that hangs, too.
    const opened = socket;
    controller.signal.addEventListener(
      "abort",
      () => opened.destroy(new ConnectError(`Connection to ${where} is closed`)),
      { once: true },
    );
    const commands = handshakeCommands(endpoint, { ...options.connection, db: options.db });
    const replies = await socket.send(commands.length, (w) => {
      for (const args of commands) w.command(args);
    }, pendingOptions({ name: "the handshake" }, { count: commands.length, timeoutMs }));
    const clientId = checkHandshake(replies, { endpoint, where, ...options.connection });
    return { socket, ...(clientId === undefined ? {} : { clientId }) };
  } catch (error) {
    socket?.destroy(error instanceof Error ? error : new Error(String(error)));
    if (options.closing.aborted || at === undefined) throw error;
    const mismatch = await diagnoseMismatch({ ...endpoint, ...at }, error, {
      timedOut: controller.signal.aborted,
      opened: socket !== undefined,
      where,
      signal: options.closing,
    });
    throw mismatch ?? error;
  } finally {
    clearTimeout(timer);
  }
}
