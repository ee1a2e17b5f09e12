/**
 * What is kept of a stream after it ended here (caught up, stopped, in
 * error, skipped), for `status`, the run's result and `run --once`'s last
 * checks: its name, its status object, its state machine and its copy's
 * last known ID. The rest of its {@linkcode ReplicatedStream} (buffers,
 * read and write bookkeeping, ~500 bytes with what hangs off it) is let go:
 * `run --once` over 100,000 streams keeps every one that ended until it
 * exits.
 *
 * @module
 */
import type { StreamLife } from "./stream_life.ts";
import type { StreamRef } from "./stream_ref.ts";
import type { StreamStatus } from "./stream_status.ts";

/** A stream as `status`, stats and the run's result see it: running or ended. */
export interface ShownStream {
  /** Which stream, and where it goes. */
  readonly ref: StreamRef;
  /** Its status object. */
  readonly status: StreamStatus;
  /** Its state machine. */
  readonly life: StreamLife;
  /** The target stream's last ID as last known. */
  readonly targetTop: string;
  /** Whether it ended. */
  readonly ended: boolean;
  /** Whether it copies new entries now. */
  readonly active: boolean;
}

/** A stream that ended: see the module doc. */
export class EndedStream implements ShownStream {
  readonly ref: StreamRef;
  readonly status: StreamStatus;
  readonly life: StreamLife;
  readonly targetTop: string;

  constructor(stream: ShownStream) {
    this.ref = stream.ref;
    this.status = stream.status;
    this.life = stream.life;
    this.targetTop = stream.targetTop;
  }

  /** Always true, but for a state machine that is not ended (a bug of the caller). */
  get ended(): boolean {
    return this.life.ended;
  }

  /** Never: it ended. */
  get active(): boolean {
    return false;
  }
}
