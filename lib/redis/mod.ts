/**
 * The transport layer's door: the client interface the upper layers talk to, the pools,
 * the one mapping of a server's configuration to connection options, server health, and the
 * stream commands' codec (`stream_commands.ts`). What other layers, `main.ts` and `mod.ts` may import of `lib/redis/`; the
 * rest (sockets, handshake, the RESP codec's internals) stays inside.
 *
 * @module
 */
export type { RedisClient } from "./client.ts";
export { execReplies, RedisConnection, serverAddress } from "./connection.ts";
export { globExample, globMatch } from "./glob.ts";
export { KEY_EVENTS_RECHECK_MS, type KeyEvent, keyEventOf, watchKeyEvents } from "./key_events.ts";
export { CLUSTER_SLOTS, clusterSlot, crc16 } from "./key_slot.ts";
export { clientFor, connectionFor } from "./one_shot.ts";
export { openPool } from "./open_pool.ts";
export { ascii, compareIds, idTime, parseFlatMap, text } from "./replies.ts";
export {
  CLAIM_REPLY,
  encodeFencedRead,
  encodeGroupRead,
  encodeStreamsTail,
  encodeStreamWrite,
  encodeWaitRead,
  entryId,
  FENCED_CLAIM_REPLY,
  FENCED_READ_REPLY,
  fencedReadReply,
  leaseLostPositions,
  parseEntries,
  parseFencedClaim,
  parseRawAutoClaim,
  parseRawEntries,
  parseRawMultiRead,
  RANGE_COUNT_REPLY,
  RANGE_REPLY,
  RawEntry,
  READ_REPLY,
  wokenKeys,
  WRITE_REPLY,
  writeReplies,
} from "./stream_commands.ts";
export type { GroupRead, RawEntries, StreamEntry } from "./stream_commands.ts";
export { PARSE_BYTE_STRINGS, type ParseMode } from "./parse_mode.ts";
export type { RespValue } from "./resp_parser.ts";
export type { RespWriter } from "./resp_writer.ts";
export { ServerHealth } from "./server_health.ts";
export type { ServerHealthStatus } from "./server_health.ts";
export type { ServerPool } from "./server_pool.ts";
