/**
 * How a connection is made and used: where it goes (an endpoint, or just an
 * address), its DB, name and health bookkeeping, and the options of one
 * command.
 *
 * @module
 */
import type { Endpoint } from "./endpoint.ts";
import type { ParseMode } from "./parse_mode.ts";
import type { RespValue } from "./resp_parser.ts";
import type { ServerHealth } from "./server_health.ts";

/** What a connection needs to know about its server: an {@linkcode Endpoint}, or just an address. */
export type EndpointLike = Pick<Endpoint, "role" | "host" | "port"> & Partial<Endpoint>;

/** How one connection behaves. */
export interface RedisConnectionOptions {
  /**
   * The DB selected when the connection opens.
   * @default {0}
   */
  db?: number;
  /**
   * What the connection is for: its CLIENT SETNAME is `redis-stream-sync-<name>`.
   * @default {undefined}
   */
  name?: string;
  /**
   * Shared up/down bookkeeping for all connections to one server.
   * @default {undefined}
   */
  health?: ServerHealth;
  /**
   * Fetch the server's CLIENT ID after each connect (needed to CLIENT UNBLOCK it).
   * @default {false}
   */
  trackClientId?: boolean;
  /**
   * Called when a reply or a failure hints that a cluster's layout changed
   * (a redirection, CLUSTERDOWN, a lost or refused connection).
   * @default {undefined}
   */
  onLayoutHint?: () => void;
  /**
   * Makes it a subscriber's connection: pub/sub messages are handed here
   * (`["message", channel, payload]`, bytes) instead of being taken as replies.
   * @default {undefined}
   */
  onPush?: (message: RespValue[]) => void;
}

/** Options of one command. */
export interface SendOptions {
  /**
   * Return bulk strings as `Uint8Array` views instead of text.
   * @default {false}
   */
  buffers?: boolean;
  /**
   * Extra milliseconds to wait on top of the command timeout (a BLOCK time).
   * @default {0}
   */
  blockMs?: number;
  /**
   * The command's name in a timeout message.
   * @default {the first argument, or "pipeline"}
   */
  name?: string;
  /**
   * How the reply is parsed: `PARSE_VALUES`, `PARSE_SKIP_BULKS` (no bulk
   * string kept), `rawArraysAt(depth)`, `entriesAt(depth)` (stream
   * entries: 3 for XREADGROUP, 2 for XAUTOCLAIM, 1 for XRANGE) or
   * `flatEntriesAt(depth)` (a script's flat lists of entries).
   * @default {PARSE_VALUES}
   */
  parse?: ParseMode;
}
