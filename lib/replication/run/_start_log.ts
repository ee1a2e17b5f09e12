/**
 * The INFO line of a start of streams: how many, which (the first five),
 * and whether they are new here or came from another instance (handed
 * over, or taken over from one that is gone). Internal to the run folder.
 *
 * @module
 */
import { counted, getLog } from "../../log.ts";
import { someLabels, type StreamRef } from "../stream/stream_ref.ts";

const log = getLog("orchestrator");

/**
 * Says that `started` replicate now; `moved` tells those whose lease
 * another instance held before; `created`: consumer groups made.
 */
export function sayStarted(
  started: readonly StreamRef[],
  moved: (ref: StreamRef) => boolean,
  created: number,
): void {
  const fromOthers = started.filter(moved);
  const fresh = started.filter((ref) => !moved(ref));
  if (fresh.length > 0 || started.length === 0) {
    log.info("Replicating {newStreams} ({groups} created): {streams}", {
      newStreams: counted(fresh.length, "new stream"),
      groups: counted(created, "consumer group"),
      count: fresh.length,
      created,
      streams: someLabels(fresh),
    });
  }
  if (fromOthers.length > 0) {
    log.info(
      "Replicating {moved} handed over or taken over from other instances: {streams}",
      {
        moved: counted(fromOthers.length, "stream"),
        count: fromOthers.length,
        streams: someLabels(fromOthers),
      },
    );
  }
}
