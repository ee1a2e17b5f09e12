/**
 * The healing of a target that holds less than it should: a target stream
 * that lost entries confirmed on it (flushed, deleted, restarted without
 * persistence or from an older snapshot, failed over), and a consumer group
 * moved past entries the target does not hold (XGROUP SETID). Each is said
 * at WARNING (one line for the streams of a moment) and the range is copied
 * again from the source by the stream's recovery, before anything newer.
 * The writer finds losses on its own writes; the stats of each discovery
 * pass ask for the checks of the streams that are not written to.
 *
 * @module
 */
import { errorMessage, type TargetLostError } from "../../errors.ts";
import { getLog } from "../../log.ts";
import { compareIds, type ServerPool } from "../../redis/mod.ts";
import { LogDigest } from "../_log_digest.ts";
import type { ReplicatedStream } from "../stream/stream.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { readTargetTop, targetLost } from "../write/target_check.ts";

const log = getLog("replicator");

/** What the healer works with. */
export interface HealerOptions {
  /** The target's connections. */
  target: ServerPool;
  /** Recovers the stream (its `refill` is copied first). */
  recover(stream: ReplicatedStream, reason: string): void;
  /**
   * A target stream was found holding less than was copied to it (for metrics).
   * @default {undefined}
   */
  onTargetLoss?: (stream: StreamRef) => void;
}

/** Notices and heals a target that holds less than it should; see the module doc. */
export class Healer {
  readonly #o: HealerOptions;
  readonly #lostLog = new LogDigest(
    log,
    "warning",
    (streams) =>
      `The target holds less than was copied to it of ${streams} (flushed, restarted without persistence, failed over to a replica that lacked the last writes, or deleted); copying what it lost again from the source`,
    0,
  );

  constructor(options: HealerOptions) {
    this.#o = options;
  }

  /**
   * The target holds less than was confirmed for `stream`: said, counted,
   * and the range lost copied again from the source before anything else.
   */
  targetLost(stream: ReplicatedStream, error: TargetLostError): void {
    if (stream.ended) return;
    stream.status.targetLosses++;
    stream.status.lastError = error.message;
    this.#lostLog.add(stream.ref.label, "");
    log.debug("{error}", { error: error.message });
    stream.targetLost(error.found, compareIds);
    this.#o.onTargetLoss?.(stream.ref);
    this.#o.recover(stream, "target lost");
  }

  /**
   * The stats found `stream`'s target stream below what was confirmed on it:
   * unless a write or a recovery of it is under way (they check it
   * themselves), its last generated ID is read; one below what was confirmed
   * means the target lost entries.
   */
  checkTarget(stream: ReplicatedStream): void {
    if (stream.ended || stream.writing || !stream.active) return;
    const before = stream.targetTop;
    readTargetTop(this.#o.target.client(stream.ref.targetDb), stream).then((top) => {
      // A write since checks the target itself.
      if (stream.targetTop !== before || stream.writing || !stream.active) return;
      if (compareIds(top, before) < 0) this.targetLost(stream, targetLost(stream, top));
    }, (error) =>
      log.debug("Checking the target of {stream} failed: {error}", {
        stream: stream.ref.label,
        error: errorMessage(error),
      }));
  }

  /**
   * The stats found `stream`'s group delivered past its target's top with
   * nothing pending: its recovery looks whether the first source entry
   * above the top is pending, and copies what was passed by when it is not.
   */
  checkGroupGap(stream: ReplicatedStream, delivered: string): void {
    if (stream.ended || !stream.active || stream.writing || stream.buffered > 0) return;
    // Not below where the group stood when the stream started here (made by someone else at
    // "$", it passed older entries on purpose).
    const floor = stream.startDelivered;
    const after = floor && compareIds(floor, stream.targetTop) > 0 ? floor : stream.targetTop;
    if (compareIds(delivered, after) > 0) this.passedBy(stream, after, delivered);
  }

  /** Entries of `stream` after `after` up to `to` may have been passed by: its recovery looks. */
  passedBy(stream: ReplicatedStream, after: string, to: string): void {
    if (stream.ended) return;
    stream.suspectGap(after, to, compareIds);
    this.#o.recover(stream, "group moved");
  }
}
