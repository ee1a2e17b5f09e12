/**
 * Standard error as a terminal shows it: log lines, and at most one status
 * line under them (the progress line of `run --once`), redrawn in place.
 * A log line written while the status line is shown goes above it: the
 * status line is erased, the log line written, the status line drawn again
 * below it; so the two never end up on one line.
 *
 * @module
 */

/** Carriage return, then erase the line. */
const ERASE = "\r\x1b[2K";
const TEXT_ENCODER = new TextEncoder();

/** Log lines and one status line on one output. */
export class TerminalLines {
  readonly #raw: (text: string) => void;
  #status = "";

  /** @param raw writes text as it is (synchronously). */
  constructor(raw: (text: string) => void) {
    this.#raw = raw;
  }

  /** Writes a whole log line (with its `"\n"`) above the status line, if one is shown. */
  log(line: string): void {
    this.#raw(this.#status ? `${ERASE}${line}${this.#status}` : line);
  }

  /**
   * Shows `text` as the status line, in place of the last one; `null` ends
   * it: the last text stays as a line of its own.
   */
  status(text: string | null): void {
    if (text === null) {
      if (this.#status) this.#raw("\n");
      this.#status = "";
      return;
    }
    this.#status = text;
    this.#raw(`${ERASE}${text}`);
  }
}

/** The process' standard error, written synchronously. */
export const STDERR_LINES: TerminalLines = new TerminalLines((text) => {
  const data = TEXT_ENCODER.encode(text);
  let written = 0;
  while (written < data.length) written += Deno.stderr.writeSync(data.subarray(written));
});
