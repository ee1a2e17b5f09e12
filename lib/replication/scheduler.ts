/**
 * One timer for many streams: a due-time queue (a binary heap) of tasks,
 * for retries after a backoff and periodic per-stream work, so that ten
 * thousand streams do not mean ten thousand timers.
 *
 * @module
 */

interface Task {
  due: number;
  seq: number;
  run: () => void;
  cancelled: boolean;
}

/** A handle to cancel a scheduled task. */
export interface ScheduledTask {
  /** Cancels the task if it has not run yet. */
  cancel(): void;
}

/** Runs tasks at their due time (ms since epoch), earliest first, with one timer. */
export class Scheduler {
  #heap: Task[] = [];
  #seq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;
  #closed = false;

  /** Tasks waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Runs `run` in `ms` milliseconds (at once, on a later tick, when `ms` <= 0). */
  after(ms: number, run: () => void): ScheduledTask {
    const task: Task = {
      due: Date.now() + Math.max(0, ms),
      seq: this.#seq++,
      run,
      cancelled: false,
    };
    if (this.#closed) return { cancel() {} };
    this.#push(task);
    if (task.due < this.#timerDue) this.#arm(task.due);
    return {
      cancel: () => {
        task.cancelled = true;
      },
    };
  }

  /** A promise resolved in `ms` milliseconds, or as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted || ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        task.cancel();
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const task = this.after(ms, done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Drops every task and the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const tasks = this.#heap;
    this.#heap = [];
    // Sleepers are woken, so nothing waits for ever on a closed scheduler.
    for (const task of tasks) if (!task.cancelled) task.run();
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, due - Date.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    const now = Date.now();
    while (this.#heap.length > 0 && this.#heap[0].due <= now) {
      const task = this.#pop();
      if (!task.cancelled) task.run();
    }
    // Cancelled tasks at the top need no timer of their own.
    while (this.#heap.length > 0 && this.#heap[0].cancelled) this.#pop();
    if (this.#heap.length > 0 && !this.#closed) this.#arm(this.#heap[0].due);
  }

  #push(task: Task): void {
    const heap = this.#heap;
    heap.push(task);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #pop(): Task {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Task, b: Task): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
