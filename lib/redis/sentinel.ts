/**
 * Redis Sentinel: which server is the master of a monitored name now. A
 * connection to a server behind sentinels asks them at every (re)connect
 * (`SENTINEL get-master-addr-by-name`), one after the other until one
 * answers, starting with the last that did; it then checks with `ROLE`
 * that the server it reached is a master, and drops itself when a command
 * is refused with READONLY (the master became a replica): its next command
 * asks the sentinels again.
 *
 * @module
 */
import { ConnectError, NotMasterError, RedisReplyError, TlsError } from "../errors.ts";
import type { EndpointSentinel } from "./endpoint.ts";
import { PARSE_VALUES } from "./parse_mode.ts";
import type { RespValue } from "./resp_parser.ts";
import { Socket } from "./_socket.ts";

/** Options for {@linkcode resolveMaster}. */
export interface ResolveMasterOptions {
  /** "source" or "target", for messages. */
  role: string;
  /** Milliseconds one sentinel may take to answer. */
  timeoutMs: number;
  /** Aborts the resolution. */
  signal: AbortSignal;
}

/** Which sentinel to ask first, per side and master name. */
const askFirst = new Map<string, number>();
/** Which sentinel answered last, per side and master name. */
const answered = new Map<string, number>();

function slot(role: string, sentinel: EndpointSentinel): string {
  return `${role}\0${sentinel.masterName}`;
}

/**
 * The address of the current master, from the first sentinel that knows
 * it.
 *
 * @throws {ConnectError} naming every sentinel's failure when none answered
 * with an address (retriable: the caller backs off and asks again).
 */
export async function resolveMaster(
  sentinel: EndpointSentinel,
  options: ResolveMasterOptions,
): Promise<{ host: string; port: number }> {
  const { addresses, masterName } = sentinel;
  const key = slot(options.role, sentinel);
  const first = askFirst.get(key) ?? 0;
  const failures: string[] = [];
  const tlsFailures: TlsError[] = [];
  for (let i = 0; i < addresses.length; i++) {
    if (options.signal.aborted) break;
    const at = (first + i) % addresses.length;
    const address = addresses[at];
    try {
      const master = await askOne(sentinel, address, options);
      askFirst.set(key, at);
      answered.set(key, at);
      return master;
    } catch (error) {
      if (error instanceof TlsError) tlsFailures.push(error);
      failures.push(`${address.host}:${address.port}: ${(error as Error).message}`);
    }
  }
  // Every sentinel refused the TLS settings: a configuration error, not an outage.
  if (tlsFailures.length === addresses.length) {
    throw new TlsError(
      `No sentinel of the ${options.role} could be reached: ${failures.join("; ")}`,
      {
        cause: tlsFailures[0],
      },
    );
  }
  throw new ConnectError(
    `No sentinel gave the ${options.role}'s master "${masterName}": ${failures.join("; ")}`,
  );
}

async function askOne(
  sentinel: EndpointSentinel,
  address: { host: string; port: number },
  options: ResolveMasterOptions,
): Promise<{ host: string; port: number }> {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  let socket: Socket | undefined;
  try {
    socket = await Socket.connect(address.host, address.port, {
      signal: controller.signal,
      where: `sentinel "${address.host}:${address.port}"`,
      onIdle: () => {},
      onLost: () => {},
      ...(sentinel.tls ? { tls: sentinel.tls, role: options.role, sentinel: true } : {}),
    });
    const opened = socket;
    controller.signal.addEventListener("abort", () => {
      opened.destroy(new ConnectError(`no answer within ${options.timeoutMs} ms`));
    }, { once: true });
    const commands: string[][] = [];
    if (sentinel.password) {
      commands.push(
        sentinel.username
          ? ["AUTH", sentinel.username, sentinel.password]
          : ["AUTH", sentinel.password],
      );
    }
    commands.push(["SENTINEL", "get-master-addr-by-name", sentinel.masterName]);
    const replies = await socket.send(commands.length, (w) => {
      for (const args of commands) w.command(args);
    }, {
      count: commands.length,
      buffers: false,
      parse: PARSE_VALUES,
      limitMs: options.timeoutMs,
      name: "SENTINEL get-master-addr-by-name",
    });
    for (const reply of replies) if (reply instanceof RedisReplyError) throw reply;
    return masterAddress(replies[replies.length - 1], sentinel.masterName);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", onAbort);
    socket?.destroy(new ConnectError("done"));
  }
}

function masterAddress(reply: RespValue, name: string): { host: string; port: number } {
  if (!Array.isArray(reply) || reply.length !== 2) {
    throw new Error(`it does not monitor a master named "${name}"`);
  }
  const host = String(reply[0]);
  const port = Number(String(reply[1]));
  if (host === "" || !Number.isInteger(port)) {
    throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  }
  return { host, port };
}

/**
 * Throws unless a `ROLE` reply says master. A sentinel may name a master
 * that was demoted meanwhile (or be misconfigured): the sentinel that named
 * it is then asked last next time, the others first.
 */
export function checkMasterRole(
  reply: RespValue,
  options: { where: string; role: string; sentinel: EndpointSentinel },
): void {
  const role = Array.isArray(reply) ? String(reply[0]) : String(reply);
  if (role === "master") return;
  // The one after the sentinel that named it (set, not incremented: several connections
  // finding the same thing at once move it once).
  const key = slot(options.role, options.sentinel);
  askFirst.set(key, ((answered.get(key) ?? 0) + 1) % options.sentinel.addresses.length);
  throw new NotMasterError(
    `${options.where} is not a master (ROLE: ${role}); asking the other sentinels`,
  );
}
