/**
 * The watchdog of the streams: a stream whose source holds entries beyond
 * its copy (above the target's top, or above where its group stood when it
 * started here, whichever is higher), with no progress for
 * STREAM_STALL_TIMEOUT, is stalled: an entry waits for a wake-up that did
 * not come. It is said at WARNING (one line for the streams of a pass),
 * counted, shown as `stalled`, and read at once; still stalled at the next
 * look, it is recovered (what is pending, for any consumer, is claimed and
 * copied, and its wait is set up again). It looks at every stream each
 * discovery pass: by its stats where they are read (all streams up to
 * 1,000, 1,000 a pass beyond), else by one XREAD per 1,000 streams from
 * their copies (`cover_check.ts`: 10,000 streams a pass at most, in
 * turns); so a stall is found within STREAM_STALL_TIMEOUT plus two or
 * three discovery passes up to 11,000 streams, later beyond.
 *
 * @module
 */
import { getLog } from "../../log.ts";
import { compareIds } from "../../redis/mod.ts";
import { LogDigest } from "../_log_digest.ts";
import { copyFloor } from "./cover_check.ts";
import type { ReplicatedStream } from "../stream/stream.ts";

const log = getLog("replicator");

/** What the watchdog acts through. */
export interface StallWatchOptions {
  /** STREAM_STALL_TIMEOUT in milliseconds. */
  stallMs: number;
  /** Acts on a stalled stream: `strike` 1 reads it at once, 2 and more recover it. */
  nudge(stream: ReplicatedStream, strike: number): void;
  /**
   * A stream was found stalled (for metrics).
   * @default {undefined}
   */
  onStall?: (stream: ReplicatedStream) => void;
}

/** Where a stream stood when the watchdog first saw it behind without progress. */
interface Behind {
  /** Its target top then. */
  top: string;
  /** Since when (ms since epoch). */
  since: number;
  /** Times it was found stalled since. */
  strikes: number;
}

/** Finds stalled streams; see the module doc. */
export class StallWatch {
  readonly #o: StallWatchOptions;
  readonly #behind = new WeakMap<ReplicatedStream, Behind>();
  readonly #log = new LogDigest(
    log,
    "warning",
    (streams) =>
      `Entries of ${streams} wait on the source with no progress of the copy for more than STREAM_STALL_TIMEOUT; reading them at once`,
    0,
  );

  constructor(options: StallWatchOptions) {
    this.#o = options;
  }

  /**
   * `stream`'s source holds entries up to `sourceLast` ("" when it is
   * empty), as its stats read just now (ms since epoch `now`).
   */
  observe(stream: ReplicatedStream, sourceLast: string, now = Date.now()): void {
    this.judge(stream, sourceLast !== "" && compareIds(sourceLast, copyFloor(stream)) > 0, now);
  }

  /**
   * `stream`'s source holds entries beyond its copy (`behind`), or not, as
   * seen just now (ms since epoch `now`): by its stats, or by the cheap look
   * of `cover_check.ts`.
   */
  judge(stream: ReplicatedStream, behind: boolean, now = Date.now()): void {
    const seen = this.#behind.get(stream);
    if (!behind || !stream.active || stream.life.state === "retrying") {
      // Not behind, or busy in a way that says so itself (recovering, retrying, ended).
      this.#behind.delete(stream);
      if (!behind && stream.life.state === "stalled") stream.life.on("flowing");
      return;
    }
    if (seen === undefined || seen.top !== stream.targetTop) {
      // Behind, but it moved since the last look: not stalled.
      this.#behind.set(stream, { top: stream.targetTop, since: now, strikes: 0 });
      if (seen !== undefined && stream.life.state === "stalled") stream.life.on("flowing");
      return;
    }
    if (now - seen.since < this.#o.stallMs || stream.writing) return;
    seen.strikes++;
    stream.status.stalls++;
    stream.life.on("stall");
    this.#log.add(stream.ref.label, "");
    log.debug(
      "Stream {stream} stalled: entries on the source beyond {top}, no progress for {ms} ms",
      {
        stream: stream.ref.label,
        top: stream.targetTop,
        ms: now - seen.since,
      },
    );
    this.#o.onStall?.(stream);
    this.#o.nudge(stream, seen.strikes);
  }
}
