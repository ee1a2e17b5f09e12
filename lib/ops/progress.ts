/**
 * The live progress line of `run --once` on a terminal: entries copied of
 * the total, rate and ETA, redrawn in place on standard error, as its
 * status line (log lines go above it, see `lib/terminal.ts`). Nothing of
 * the kind when standard error is not a terminal or logs are JSON.
 *
 * @module
 */
import type { OrchestratorStatus } from "../replication/mod.ts";
import { STDERR_LINES, type TerminalLines } from "../terminal.ts";

/** Whether to draw the progress line. */
export function shouldShowProgress(isTerminal: boolean, logFormat: string): boolean {
  return isTerminal && logFormat.trim().toLowerCase() !== "json";
}

/** Progress figures at one moment. */
export interface ProgressSnapshot {
  /** Entries handled (copied or found already copied). */
  done: number;
  /** Entries to handle in all, as known (0 when unknown yet). */
  total: number;
  /** Entries per second since the start. */
  rate: number;
  /** Seconds left at that rate; null when unknown. */
  etaSeconds: number | null;
}

/** Options for {@linkcode progressOf}. */
export interface ProgressOfOptions {
  /** Milliseconds since the start. */
  elapsedMs: number;
  /** Entries to handle in all, as known (0 when unknown yet). */
  total: number;
}

/** Computes progress from a status snapshot and the elapsed time. */
export function progressOf(
  status: OrchestratorStatus,
  options: ProgressOfOptions,
): ProgressSnapshot {
  const { elapsedMs, total } = options;
  let done = 0;
  for (const s of status.streams) done += s.copied + s.skipped;
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const left = Math.max(0, total - done);
  return { done, total, rate, etaSeconds: rate > 0 && total > 0 ? left / rate : null };
}

/** The line itself, e.g. `copied 12,345 of 50,000 entries (24.7%), 45,000 entries/s, ETA 1 s`. */
export function formatProgress(p: ProgressSnapshot): string {
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  const of = p.total > 0
    ? ` of ${n(Math.max(p.total, p.done))} entries (${
      (Math.min(1, p.done / p.total) * 100).toFixed(1)
    }%)`
    : " entries";
  const eta = p.etaSeconds === null ? "" : `, ETA ${formatDuration(p.etaSeconds)}`;
  return `copied ${n(p.done)}${of}, ${n(p.rate)} entries/s${eta}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Options for {@linkcode startProgress}. */
export interface ProgressOptions {
  /**
   * Milliseconds between redraws.
   * @default {250}
   */
  intervalMs?: number;
  /**
   * Where the line goes, as raw text (`"\r\x1b[2K"` and the line at each
   * redraw, `"\n"` at the end); without it, the terminal's status line.
   * @default {undefined}
   */
  write?: (text: string) => void;
  /**
   * Without `write`: the output whose status line it is (log lines go above it).
   * @default {STDERR_LINES}
   */
  terminal?: TerminalLines;
}

/**
 * Redraws the progress line until the returned function is called (which
 * draws it one last time and ends the line).
 */
export function startProgress(
  status: () => OrchestratorStatus,
  options: ProgressOptions = {},
): () => void {
  const terminal = options.terminal ?? STDERR_LINES;
  const raw = options.write;
  const show = (line: string | null) => {
    if (!raw) terminal.status(line);
    else raw(line === null ? "\n" : `\r\x1b[2K${line}`);
  };
  const started = performance.now();
  // Each stream's total is fixed when its stats first appear: what it had
  // handled when they were read plus what was left then (lag + pending).
  const totals = new Map<string, number>();
  const draw = () => {
    const s = status();
    let total = 0;
    for (const st of s.streams) {
      const id = `${st.db}:${st.key}`;
      if (!totals.has(id) && st.stats) {
        const handled = st.stats.handledAtRefresh ?? st.copied + st.skipped;
        totals.set(id, handled + (st.stats.lag ?? 0) + st.stats.pending);
      }
      total += totals.get(id) ?? 0;
    }
    const elapsedMs = performance.now() - started;
    show(formatProgress(progressOf(s, { elapsedMs, total })));
  };
  draw();
  const timer = setInterval(draw, options.intervalMs ?? 250);
  return () => {
    clearInterval(timer);
    draw();
    show(null);
  };
}
