/**
 * How a reader is woken: out of its own wait (no stream wanted entries, or,
 * when notifications wake it, the time to its next look), or out of a
 * blocking read on the server (`CLIENT UNBLOCK` of its connection, sent
 * once per read).
 * Internal to the reader.
 *
 * @module
 */

/** What waking a blocking read needs. */
export interface UnblockContext {
  /** Whether the blocking read must end now (asked only while one is in flight). */
  mustEnd: () => boolean;
  /** The reader connection's CLIENT ID (undefined while it connects). */
  clientId: string | undefined;
  /**
   * Sends CLIENT UNBLOCK for that ID; resolves with whether it unblocked a
   * read (false: the read was not blocked on the server yet).
   */
  unblock: (clientId: string) => Promise<boolean>;
}

/**
 * How soon CLIENT UNBLOCK is sent again when it found the read not blocked
 * yet: it goes on another connection, and can overtake the read it is for.
 */
const UNBLOCK_RETRY_MS = 10;
/** Pokes kept while a blocking read is prepared, at most (beyond, the read ends as it starts). */
const MISSED_POKES = 64;

/** A reader's wake-up: its own wait, and its blocking read's unblocking. */
export class ReaderWake {
  #wake: (() => void) | null = null;
  /** A blocking read is in flight (unblockable). */
  #blocking = false;
  #unblockSent = false;
  /** Blocking reads started so far: which read an unblock is for. */
  #reads = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /**
   * A poke that came after the loop last looked at its streams and before
   * its blocking read started (while it loaded what the read needs): the
   * read is unblocked as soon as it starts, if it must end then.
   */
  #missed: UnblockContext[] = [];
  /** When the reader last looked at its streams without blocking (ms since epoch; see `lookDue`). */
  #lookedAt = 0;

  /** Waits until woken, or `ms` milliseconds at most (undefined: until woken). */
  async sleep(ms?: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = null;
  }

  /**
   * A wait that sleeps here, not on the server (notifications wake the
   * reader): sleeps until woken, or until `everyMs` after the last look.
   * True when a look (the wait's read without BLOCK) is due now: it counts
   * as sent from now on.
   */
  async lookDue(everyMs: number): Promise<boolean> {
    const left = this.#lookedAt + everyMs - Date.now();
    if (left > 0) {
      await this.sleep(left);
      if (Date.now() - this.#lookedAt < everyMs) return false; // woken: the loop looks again
    }
    this.#lookedAt = Date.now();
    return true;
  }

  /** The next `lookDue` is due at once (notifications may have been missed), and the wait ends. */
  lookSoon(): void {
    this.#lookedAt = 0;
    this.wakeUp();
  }

  /** Ends the reader's own wait now; false when it does not wait. */
  wakeUp(): boolean {
    if (!this.#wake) return false;
    this.#wake();
    return true;
  }

  /** The loop looks at its streams now: what was poked before is in what it sees. */
  looked(): void {
    this.#missed = [];
  }

  /** A blocking read starts: unblockable from now on (at once, if poked since the loop looked). */
  blockStarted(): void {
    this.#blocking = true;
    this.#unblockSent = false;
    this.#reads++;
    const missed = this.#missed;
    this.#missed = [];
    // Each may say the read must end (the last one may not: a stream already in it).
    const ending = missed.find((ctx) => ctx.mustEnd());
    if (ending) this.poke(ending);
  }

  /** Keeps a poke for the blocking read about to start (see `blockStarted`). */
  #keep(ctx: UnblockContext): void {
    // Many pokes (thousands of streams) are one that always ends the read.
    if (this.#missed.length < MISSED_POKES) this.#missed.push(ctx);
    else {
      this.#missed = [{
        mustEnd: () => true,
        get clientId() {
          return ctx.clientId;
        },
        unblock: ctx.unblock,
      }];
    }
  }

  /** The blocking read ended. */
  blockEnded(): void {
    this.#blocking = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  /** Wakes the wait, or unblocks the blocking read when `ctx.mustEnd()` (once per read). */
  poke(ctx: UnblockContext): void {
    if (this.wakeUp()) {
      // A sleep before a blocking read listed already (a fenced reader letting writes go
      // first) is followed by that read, not by a new look: the poke is kept for it.
      this.#keep(ctx);
      return;
    }
    if (!this.#blocking) return this.#keep(ctx);
    if (this.#unblockSent || !ctx.mustEnd()) return;
    const clientId = ctx.clientId;
    if (clientId === undefined) return; // still connecting: its read starts after this
    this.#unblockSent = true;
    const read = this.#reads;
    const attempt = () => {
      this.#retry = undefined;
      ctx.unblock(clientId).then((unblocked) => {
        // Not blocked yet: the read is still on its way to the server. Again, while it lasts.
        if (!unblocked && this.#blocking && this.#reads === read) {
          this.#retry = setTimeout(attempt, UNBLOCK_RETRY_MS);
        }
      });
    };
    attempt();
  }
}
