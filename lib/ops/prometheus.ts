/**
 * The Prometheus text exposition format (version 0.0.4) for the few metric
 * kinds the service needs: counters and gauges with labels, a histogram
 * without labels. It replaces prom-client, whose import alone took ~80 ms of
 * every start (more than half of the time to the first copied entry) and
 * whose registry kept more than the service exposes.
 *
 * @example
 * ```ts
 * import { Counter, Registry } from "./prometheus.ts";
 *
 * const registry = new Registry();
 * const copied = new Counter(registry, {
 *   name: "copied_total",
 *   help: "Entries copied",
 *   labelNames: ["stream"],
 * });
 * copied.inc({ stream: "orders" }, 3);
 * registry.metrics(); // "# HELP copied_total Entries copied\n# TYPE copied_total counter\ncopied_total{stream=\"orders\"} 3\n"
 * ```
 *
 * @module
 */

/** The content type of {@linkcode Registry.metrics}. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** What a metric needs to be exposed. */
interface Exposed {
  readonly name: string;
  /** Appends the metric's HELP, TYPE and sample lines to `out`. */
  write(out: string[]): void;
}

/** The metrics of one exposition, in registration order. */
export class Registry {
  #metrics: Exposed[] = [];

  /** Adds a metric; its name must be new. */
  register(metric: Exposed): void {
    if (this.#metrics.some((m) => m.name === metric.name)) {
      throw new Error(`A metric named "${metric.name}" is already registered`);
    }
    this.#metrics.push(metric);
  }

  /** The text exposition of every metric (gauges are collected first). */
  metrics(): string {
    const out: string[] = [];
    for (const metric of this.#metrics) metric.write(out);
    return out.join("");
  }
}

/** Options of a counter or a gauge. */
export interface MetricOptions {
  /** The metric's name (`[a-zA-Z_:][a-zA-Z0-9_:]*`). */
  name: string;
  /** One line saying what it counts. */
  help: string;
  /**
   * The names of its labels, in exposition order.
   * @default {[]}
   */
  labelNames?: readonly string[];
}

/** The series of one labelled metric, keyed by their rendered labels. */
class Series {
  readonly name: string;
  readonly #help: string;
  readonly #type: string;
  readonly #labelNames: readonly string[];
  readonly values = new Map<string, number>();

  constructor(type: string, options: MetricOptions) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(options.name)) {
      throw new Error(`Metric name "${options.name}" is not a valid Prometheus name`);
    }
    this.name = options.name;
    this.#help = options.help;
    this.#type = type;
    this.#labelNames = options.labelNames ?? [];
  }

  /** `{a="1",b="x"}` for `labels` (every label name must have a value). */
  key(labels: Labels): string {
    if (this.#labelNames.length === 0) return "";
    const parts = this.#labelNames.map((name) => {
      const value = labels[name];
      if (value === undefined) {
        throw new Error(`Metric "${this.name}" needs a value for its label "${name}"`);
      }
      return `${name}="${escapeLabelValue(value)}"`;
    });
    return `{${parts.join(",")}}`;
  }

  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.#help)}\n# TYPE ${this.name} ${this.#type}\n`);
    for (const [key, value] of this.values) out.push(`${this.name}${key} ${formatValue(value)}\n`);
  }
}

/** A value that only goes up, per label set. */
export class Counter {
  readonly #series: Series;

  constructor(registry: Registry, options: MetricOptions) {
    this.#series = new Series("counter", options);
    registry.register(this.#series);
  }

  /** Adds `by` (at least 0) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`A counter cannot go down (inc by "${by}")`);
    const key = this.#series.key(labels);
    this.#series.values.set(key, (this.#series.values.get(key) ?? 0) + by);
  }

  /** Drops the series of `labels` (its stream is gone). */
  remove(labels: Labels): void {
    this.#series.values.delete(this.#series.key(labels));
  }
}

/** Options of a {@linkcode KeyedCounter}. */
export interface KeyedCounterOptions<T> extends MetricOptions {
  /** The key of `item`'s series (items with the same key count together). */
  keyOf: (item: T) => string;
  /** The labels of `item`'s series, made when exposed. */
  labelsOf: (item: T) => Labels;
}

/**
 * A counter whose series are kept by a key of the caller's (a stream's id),
 * their labels rendered only when exposed: an increment is a map lookup, not
 * a label string made and escaped (at 100,000 streams, each one kept).
 */
export class KeyedCounter<T> {
  readonly #options: KeyedCounterOptions<T>;
  /** Each series' last item (its labels come from it) and value. */
  readonly #values = new Map<string, { item: T; value: number }>();

  constructor(registry: Registry, options: KeyedCounterOptions<T>) {
    const series = new Series("counter", options);
    this.#options = options;
    registry.register({
      name: series.name,
      write: (out) => {
        for (const { item, value } of this.#values.values()) {
          const key = series.key(options.labelsOf(item));
          series.values.set(key, (series.values.get(key) ?? 0) + value);
        }
        series.write(out);
        series.values.clear();
      },
    });
  }

  /** Adds `by` (at least 0) to the series of `item`. */
  inc(item: T, by = 1): void {
    if (!(by >= 0)) throw new Error(`A counter cannot go down (inc by "${by}")`);
    const key = this.#options.keyOf(item);
    const known = this.#values.get(key);
    if (known) {
      known.item = item;
      known.value += by;
    } else this.#values.set(key, { item, value: by });
  }

  /** Drops the series of `item` (its stream is gone). */
  remove(item: T): void {
    this.#values.delete(this.#options.keyOf(item));
  }
}

/** Options of a gauge. */
export interface GaugeOptions extends MetricOptions {
  /**
   * Called before each exposition to set the gauge's values (after
   * {@linkcode Gauge.reset} if the set of series can shrink).
   * @default {undefined}
   */
  collect?: (gauge: Gauge) => void;
  /**
   * The type it is exposed as: `counter` for a value that only grows and
   * is read at exposition from where it is kept (reconnects of a server).
   * @default {"counter" for a name ending in `_total`, else "gauge"}
   */
  exposedAs?: "gauge" | "counter";
}

/** A value that goes up and down, per label set. */
export class Gauge {
  readonly #series: Series;

  constructor(registry: Registry, options: GaugeOptions) {
    // Prometheus' convention: a `_total` series is a counter.
    const type = options.exposedAs ?? (options.name.endsWith("_total") ? "counter" : "gauge");
    this.#series = new Series(type, options);
    const series = this.#series;
    const collect = options.collect;
    registry.register({
      name: series.name,
      write: (out) => {
        collect?.(this);
        series.write(out);
      },
    });
  }

  /** Sets the series of `labels` to `value`. */
  set(labels: Labels, value: number): void {
    this.#series.values.set(this.#series.key(labels), value);
  }

  /** Drops every series. */
  reset(): void {
    this.#series.values.clear();
  }
}

/** Options of a histogram. */
export interface HistogramOptions {
  /** The metric's name; the series are `<name>_bucket`, `<name>_sum` and `<name>_count`. */
  name: string;
  /** One line saying what it measures. */
  help: string;
  /** Upper bounds of the buckets, ascending (`+Inf` is added). */
  buckets: readonly number[];
}

/** A distribution of observed values, without labels. */
export class Histogram {
  readonly name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(registry: Registry, options: HistogramOptions) {
    this.name = options.name;
    this.#help = options.help;
    const bounds = [...options.buckets];
    if (bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]))) {
      throw new Error(`Histogram "${options.name}" needs finite ascending buckets`);
    }
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
    registry.register(this);
  }

  /** Counts `value`, `times` times (a run of equal values at once). */
  observe(value: number, times = 1): void {
    this.#sum += value * times;
    this.#count += times;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]) {
        this.#counts[i] += times;
        return;
      }
    }
  }

  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.#help)}\n# TYPE ${this.name} histogram\n`);
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i];
      out.push(`${this.name}_bucket{le="${formatValue(this.#bounds[i])}"} ${cumulative}\n`);
    }
    out.push(`${this.name}_bucket{le="+Inf"} ${this.#count}\n`);
    out.push(`${this.name}_sum ${formatValue(this.#sum)}\n${this.name}_count ${this.#count}\n`);
  }
}

/** A label value as the format wants it: backslash, double quote and newline escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** A HELP text as the format wants it: backslash and newline escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value: integers and decimals as JavaScript prints them, `NaN`, `+Inf`, `-Inf`. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
