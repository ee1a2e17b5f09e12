/**
 * The commands a new connection sends first, in one pipeline (AUTH, CLIENT
 * SETNAME, SELECT, CLIENT ID, and ROLE behind sentinels), and what their
 * replies must be. Internal to the redis folder.
 *
 * @module
 */
import type { EndpointLike, RedisConnectionOptions } from "./connection_options.ts";
import { clientName } from "./endpoint.ts";
import { RedisReplyError } from "../errors.ts";
import type { RespValue } from "./resp_parser.ts";
import type { RedisArg } from "./resp_writer.ts";
import { checkMasterRole } from "./sentinel.ts";

/** The handshake's commands, in order. */
export function handshakeCommands(
  endpoint: EndpointLike,
  options: RedisConnectionOptions & { db: number },
): RedisArg[][] {
  const commands: RedisArg[][] = [];
  if (endpoint.password !== undefined && endpoint.password !== "") {
    commands.push(
      endpoint.username
        ? ["AUTH", endpoint.username, endpoint.password]
        : ["AUTH", endpoint.password],
    );
  }
  if (options.name) commands.push(["CLIENT", "SETNAME", clientName(options.name)]);
  if (options.db !== 0) commands.push(["SELECT", String(options.db)]);
  if (options.trackClientId) commands.push(["CLIENT", "ID"]);
  if (endpoint.sentinel) commands.push(["ROLE"]);
  if (commands.length === 0) commands.push(["PING"]);
  return commands;
}

/**
 * Throws the first error reply of the handshake, or when a server behind
 * sentinels is not a master; returns the CLIENT ID when it was asked for.
 */
export function checkHandshake(
  replies: RespValue[],
  options: RedisConnectionOptions & { endpoint: EndpointLike; where: string },
): string | undefined {
  for (const reply of replies) if (reply instanceof RedisReplyError) throw reply;
  let end = replies.length;
  const sentinel = options.endpoint.sentinel;
  if (sentinel) {
    checkMasterRole(replies[--end], {
      where: options.where,
      role: options.endpoint.role,
      sentinel,
    });
  }
  return options.trackClientId ? String(replies[end - 1]) : undefined;
}
