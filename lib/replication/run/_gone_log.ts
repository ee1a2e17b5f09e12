/**
 * What the log says of streams that ended as gone: deleting streams is
 * normal, so they are summed up once a discovery pass (the first five
 * named), not one line each. Internal to the run folder.
 *
 * @module
 */
import { counted, getLog } from "../../log.ts";
import { someLabels, type StreamRef } from "../stream/stream_ref.ts";

const log = getLog("orchestrator");

/** The streams gone since the last summary, and the summary. */
export class GoneStreams {
  readonly #group: string;
  #since: Array<{ ref: StreamRef; reason: string }> = [];

  /** @param group the consumer group, for messages. */
  constructor(group: string) {
    this.#group = group;
  }

  /** `ref` ended as gone, for `reason` (the error that said so). */
  add(ref: StreamRef, reason: string): void {
    this.#since.push({ ref, reason });
  }

  /**
   * One INFO line for the streams gone since the last call: those `found`
   * again (by the discovery pass that calls this) lost their consumer group
   * (destroyed, or the stream was deleted and made again) and start again
   * from their first entry; the others were deleted. Without `found` (the
   * end of a run): only how many are gone.
   */
  say(found?: ReadonlySet<string>): void {
    const all = this.#since;
    if (all.length === 0) return;
    this.#since = [];
    // A key made another type is not the normal end of a stream: a WARNING of its own.
    const retyped = all.filter((g) => g.reason.includes("WRONGTYPE")).map((g) => g.ref);
    const gone = all.filter((g) => !g.reason.includes("WRONGTYPE")).map((g) => g.ref);
    if (retyped.length > 0) {
      log.warning("{retyped} replaced by a key of another type: {streams}; replication ended", {
        retyped: counted(retyped.length, "stream was", "streams were"),
        count: retyped.length,
        streams: someLabels(retyped),
      });
    }
    const lost = found ? gone.filter((ref) => found.has(ref.id)) : [];
    const deleted = found ? gone.filter((ref) => !found.has(ref.id)) : gone;
    if (deleted.length > 0) {
      log.info(
        "{gone} gone (deleted, or their group destroyed): {streams}; their replication ended",
        {
          gone: counted(deleted.length, "stream is", "streams are"),
          count: deleted.length,
          streams: someLabels(deleted),
        },
      );
    }
    if (lost.length > 0) {
      log.warning(
        "{lostGroup} consumer group {group} (destroyed, or the stream deleted and made again): {streams}; copied again from their first entry (what the target holds already is skipped)",
        {
          lostGroup: counted(lost.length, "stream lost", "streams lost"),
          count: lost.length,
          group: this.#group,
          streams: someLabels(lost),
        },
      );
    }
  }
}
