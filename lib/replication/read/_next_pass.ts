/**
 * What a reader's loop does next: which of its streams the next pass
 * takes. A read takes a window of them, in turns (`run --once`: those that
 * want entries; else those with a backlog, and now and then a look at the
 * others); only a wait, when none has a backlog, lists them all. With
 * thousands of streams per reader, a list of them all for each read was
 * most of what a backfill allocated. Internal to the reader.
 *
 * @module
 */
import type { ReplicatedStream } from "../stream/stream.ts";
import { Rotation } from "../rotation.ts";

/**
 * Streams one pass takes at most (a backfill's read takes fewer when the
 * read-ahead memory is short; the others are taken by the next passes).
 */
export const READ_WINDOW = 2000;
/** While streams with a backlog are read, the others are looked at this often, at most. */
export const LOOK_INTERVAL_MS = 5;
/**
 * Keys a reader's looks at the others send per millisecond, at most (a look of 2,000 streams
 * is followed by the next after 10 ms): the source spends about 0.16 us per key of an XREAD
 * that finds nothing new (measured on Redis 7.0), so the looks cost it at most ~3% of a core.
 */
export const LOOK_KEYS_PER_MS = 200;
/**
 * Streams a look takes at most, in turns (fewer when the memory for a read is short): with a
 * backlog elsewhere, a reader's other streams are looked at within
 * `ceil(streams / 2,000) * max(5 ms, 2,000 / 200 ms)`: 5 ms for 1,000, 50 ms for 10,000.
 */
export const LOOK_STREAMS = 2000;

/** Whether any of `streams` wants entries (stops at the first). */
function someWant(
  streams: ReadonlySet<ReplicatedStream>,
  wants: (s: ReplicatedStream) => boolean,
): boolean {
  for (const s of streams) if (wants(s)) return true;
  return false;
}

/**
 * Keys one read of a look without waiting takes at most (with notifications, the look that
 * replaces a blocking wait): the source serves nobody else while it runs one, about 0.65 to
 * 0.9 us a key (Redis 7.0, measured), so 1,000 keys hold it about 1 ms, not 9 ms for 10,000.
 */
export const LOOK_KEYS_PER_READ = 1000;

/** One pass of the loop. */
export interface Pass {
  /** The streams it reads or waits for (told when it fails; a wait lists them when asked). */
  readonly streams: ReplicatedStream[];
  /** A wait (never pipelined). */
  blocking: boolean;
  /** Sends it. */
  send(): Promise<void>;
  /** It is not sent now: the streams it took are taken first next time. */
  putBack(): void;
}

/** What {@linkcode NextPass} needs of its reader. */
export interface NextPassContext {
  /** The reader's streams (it keeps them). */
  streams: ReadonlySet<ReplicatedStream>;
  /** The streams to read next even without a backlog (a cluster's notifications). */
  notified: ReadonlySet<ReplicatedStream>;
  /**
   * The streams a fenced wait or look saw entries of (marked hot), until the reply of their
   * read: how many is not known, so their read is sent once, not several times over in one
   * round trip unless others have a backlog, and not again while it is out.
   */
  woken: ReadonlySet<ReplicatedStream>;
  /** `run --once`: never wait. */
  once: boolean;
  /** Whether `stream` wants entries now. */
  wants(stream: ReplicatedStream): boolean;
  /** How many others (no backlog) a look takes at most, while some have one. */
  lookSize(): number;
  /** The reader's reads: see `StreamReader`. */
  readNow(streams: ReplicatedStream[], repeat: boolean): Promise<void>;
  lookAtOthers(others: ReplicatedStream[]): Promise<void>;
  /**
   * No stream has a backlog or was notified: wait. `wanting` lists the streams that want
   * entries (every one of the reader's streams is asked: called only when needed).
   */
  quiet(wanting: () => ReplicatedStream[]): Promise<void>;
}

/** Picks a reader's next pass; see the module doc. */
export class NextPass {
  readonly #c: NextPassContext;
  readonly #window: Rotation<ReplicatedStream>;
  readonly #others: Rotation<ReplicatedStream>;
  /** When the others were last looked at (ms since epoch), and when the next look is due. */
  #lookedAt = 0;
  #lookEveryMs = LOOK_INTERVAL_MS;

  constructor(context: NextPassContext) {
    this.#c = context;
    this.#window = new Rotation(context.streams);
    this.#others = new Rotation(context.streams);
  }

  /**
   * The next pass (undefined: no stream wants entries). `readsOnly` (a pass
   * is in flight, which is waited for before any wait): undefined instead
   * of a wait, without listing every stream for it (at 10,000 streams a
   * reader, that list delayed the handling of the reply in flight).
   */
  next(readsOnly = false): Pass | undefined {
    const c = this.#c;
    const wants = (s: ReplicatedStream) => c.wants(s);
    const notified = c.notified;
    const hot = (s: ReplicatedStream) => s.hot || s.history !== undefined || notified.has(s);
    if (c.once) {
      const streams = this.#window.take(READ_WINDOW, wants);
      if (streams.length === 0) return undefined;
      return this.#pass(streams, this.#window, () => c.readNow(streams, streams.some(hot)));
    }
    // Not a woken stream whose read is out: its reply says whether more is there (read once).
    const backlog = this.#window.take(
      READ_WINDOW,
      (s) => hot(s) && wants(s) && !(s.readsInFlight > 0 && c.woken.has(s)),
    );
    // More to read than a wait said (a full batch came back, or history): a backlog, and while
    // there is one the others are looked at now and then. Not streams only woken: the wait that
    // follows their read covers the others.
    const more = backlog.some((s) => s.history !== undefined || (s.hot && !c.woken.has(s)));
    if (backlog.some((s) => s.hot || s.history !== undefined)) {
      if (more && Date.now() - this.#lookedAt >= this.#lookEveryMs) {
        const others = this.#others.take(c.lookSize(), (s) => !hot(s) && wants(s));
        if (others.length > 0) {
          this.#lookedAt = Date.now();
          this.#lookEveryMs = Math.max(
            LOOK_INTERVAL_MS,
            Math.ceil(others.length / LOOK_KEYS_PER_MS),
          );
          return this.#pass(others, this.#others, () => c.lookAtOthers(others));
        }
      }
      // Streams with a backlog: several reads in one round trip. Streams only woken (most
      // often one new entry each): one read; several, at thousands of woken streams a second,
      // were most of what the source did (each an EVAL of the fence).
      return this.#pass(backlog, this.#window, () => c.readNow(backlog, more));
    }
    if (backlog.length > 0) {
      // Only notified (one server's or a cluster's notifications): read once, without waiting,
      // and without listing every stream (at 10,000 a reader, most of what a wake-up cost).
      return this.#pass(backlog, this.#window, () => c.readNow(backlog, false));
    }
    if (readsOnly) return undefined;
    if (!someWant(c.streams, wants)) return undefined;
    let wanting: ReplicatedStream[] | undefined;
    const list = () => {
      if (wanting) return wanting;
      wanting = [];
      for (const s of c.streams) if (wants(s)) wanting.push(s);
      return wanting;
    };
    return {
      get streams() {
        return list();
      },
      blocking: true,
      send: () => c.quiet(list),
      putBack: () => {},
    };
  }

  #pass(streams: ReplicatedStream[], from: Rotation<ReplicatedStream>, send: () => Promise<void>) {
    return { streams, blocking: false, send, putBack: () => from.putBack(streams) };
  }
}
