/**
 * A pass's start of the streams it found, in waves: at most
 * {@linkcode START_WAVE} streams start together, so that what one start
 * holds (its streams' replies and plans) stays small when 100,000 are found
 * at once (started together they peaked at 616-642 MB RSS, in waves at
 * 362-371 MB). One INFO line for the pass says what started. Internal to
 * the run folder.
 *
 * @module
 */
import type { StreamRef } from "../stream/stream_ref.ts";
import { sayStarted } from "./_start_log.ts";

/** Streams started together, at most: more found at once start in waves of this many. */
export const START_WAVE = 10_000;

/** What the starts of a pass started: said in one line. */
export interface StartSummary {
  /** The streams that replicate now (those that ended at once left out). */
  started: StreamRef[];
  /** Consumer groups made. */
  created: number;
}

/** What {@linkcode startInWaves} needs. */
export interface StartInWavesOptions {
  /** Stops the waves: those whose wave did not come are not taken. */
  signal: AbortSignal;
  /** Starts one wave (begun with `beginStart`), adding what started to `said`. */
  start: (wave: StreamRef[], said: StartSummary) => Promise<unknown>;
  /** Whether a stream's lease was another instance's (said apart). */
  moved: (ref: StreamRef) => boolean;
  /** The stream table: told about the streams whose wave did not come. */
  table: {
    notTaken(refs: readonly StreamRef[]): void;
    endStart(refs: readonly StreamRef[]): void;
  };
}

/** Starts `refs` (all begun with `beginStart`) in waves; see the module doc. */
export async function startInWaves(
  refs: readonly StreamRef[],
  options: StartInWavesOptions,
): Promise<void> {
  const { signal, table } = options;
  const said: StartSummary = { started: [], created: 0 };
  let next = 0;
  let failed = false;
  try {
    while (next < refs.length && !signal.aborted) {
      const wave = refs.slice(next, next + START_WAVE);
      next += wave.length;
      await options.start(wave, said);
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // Those whose wave did not come: as a start that stopped (or failed) before them.
    const rest = refs.slice(next);
    if (rest.length > 0 && signal.aborted) table.notTaken(rest);
    else if (rest.length > 0) table.endStart(rest);
    // A failed wave says nothing of its own (its error is logged); earlier waves still count.
    if (next > 0 && (!failed || said.started.length > 0)) {
      sayStarted(said.started, options.moved, said.created);
    }
  }
}

/**
 * Of `begun`, those not `taken` (all of them once `signal` aborted). Its set
 * of 100,000 is let go on return, not kept while the streams start.
 */
export function notTakenOf(
  begun: readonly StreamRef[],
  taken: readonly StreamRef[],
  signal: AbortSignal,
): StreamRef[] {
  if (signal.aborted) return [...begun];
  if (taken === begun) return [];
  const mine = new Set(taken);
  return begun.filter((ref) => !mine.has(ref));
}
