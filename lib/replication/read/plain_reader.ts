/**
 * The plain reader (one server, no leases): when no stream has a backlog,
 * it blocks on all its streams at once with one `XREADGROUP ... BLOCK ms`
 * (of one DB at a time), whose `STREAMS ...` part is encoded once and
 * reused while its streams stay the same; a stream that wants entries and
 * is not in that read wakes it (CLIENT UNBLOCK). When the source's
 * notifications reach it, it waits here instead (woken by a notification,
 * which names the stream to read), and sends that read without BLOCK when
 * the block would have ended: the same coverage, without a read blocked
 * over thousands of keys on the server.
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { TailCache } from "./_read_command.ts";
import { RefusedRead } from "./_read_replies.ts";
import { StreamReader } from "./reader.ts";
import { LOOK_KEYS_PER_READ } from "./_next_pass.ts";

/** Reads with a blocking XREADGROUP when nothing has a backlog. */
export class PlainReader extends StreamReader {
  readonly #tail = new TailCache();
  /** How long the last wait blocked, or would have (ms): with notifications, how often it looks. */
  #waitMs = 0;

  protected async quiet(wanting: () => ReplicatedStream[]): Promise<void> {
    const notifications = this.options.notifications?.() ?? false;
    if (notifications && !(await this.wake.lookDue(this.#waitMs))) return;
    const { db, streams, blockMs } = this.nextDb(wanting());
    this.#waitMs = blockMs;
    if (notifications) {
      // The same read without BLOCK, in parts (the source is not held by 10,000 keys at once).
      for (let i = 0; i < streams.length; i += LOOK_KEYS_PER_READ) {
        await this.#read(db, streams.slice(i, i + LOOK_KEYS_PER_READ), 0);
      }
      return;
    }
    this.wake.blockStarted();
    try {
      await this.#read(db, streams, blockMs);
    } finally {
      this.wake.blockEnded();
    }
  }

  async #read(db: number, streams: ReplicatedStream[], blockMs: number): Promise<void> {
    const [reply] = await this.send(db, [{ streams, tail: this.#tail.of(streams) }], blockMs);
    if (reply instanceof RedisReplyError) throw new RefusedRead(reply, streams);
    this.dispatchWoken(db, streams, reply);
  }
}
