/**
 * The plain reader (one server, no leases): when no stream has a backlog,
 * it blocks on all its streams at once with one `XREADGROUP ... BLOCK ms`
 * (of one DB at a time), whose `STREAMS ...` part is encoded once and
 * reused while its streams stay the same; a stream that wants entries and
 * is not in that read wakes it (CLIENT UNBLOCK).
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import { TailCache } from "./_read_command.ts";
import { RefusedRead } from "./_read_replies.ts";
import { StreamReader } from "./reader.ts";

/** Reads with a blocking XREADGROUP when nothing has a backlog. */
export class PlainReader extends StreamReader {
  readonly #tail = new TailCache();

  protected async quiet(wanting: ReplicatedStream[]): Promise<void> {
    const { db, streams, blockMs } = this.nextDb(wanting);
    this.wake.blockStarted();
    try {
      const [reply] = await this.send(db, [{ streams, tail: this.#tail.of(streams) }], blockMs);
      if (reply instanceof RedisReplyError) throw new RefusedRead(reply, streams);
      this.dispatchWoken(db, streams, reply);
    } finally {
      this.wake.blockEnded();
    }
  }
}
