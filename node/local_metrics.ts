/**
 * Metrics on the hot path, counted in plain numbers and handed to
 * prom-client's registry only when it is scraped.
 *
 * Why: prom-client's `Counter.inc` and `Histogram.observe` convert, validate
 * and hash the label set on every call, even through a `labels()` child.
 * Counting a client command that way cost more than a microsecond, about 5%
 * of a GET's CPU. Here a command counts into a cell found once per label value;
 * the registry formats the cells with its own code (`registerMetric` with an
 * object whose `get()` returns prom-client's value shape).
 *
 * @module
 */

import type { Metric, Registry } from "prom-client";

/** One label value's share of a {@link LocalHistogram}. */
export class HistogramCell {
  /** Observations per bucket, not cumulative; the last slot is above every bound. */
  readonly counts: Float64Array;
  /** Sum of the observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;
  readonly #bounds: Float64Array;

  /**
   * @param bounds the upper bounds, ascending
   */
  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /**
   * Counts one observation.
   * @param value the observed value (a finite number)
   */
  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Back to no observations. */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** One label value's share of a {@link LocalCounter}. */
export class CounterCell {
  /** The count. */
  value = 0;

  /**
   * Adds to the count.
   * @param n how much (>= 0); default 1
   */
  inc(n = 1): void {
    this.value += n;
  }

  /** Back to 0. */
  reset(): void {
    this.value = 0;
  }
}

/** Options of the local metrics. */
export interface LocalMetricOptions {
  /** Metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
  readonly name: string;
  /** Help text. */
  readonly help: string;
  /** Label names; a cell is found by the values in this order. */
  readonly labelNames: readonly string[];
  /** Registries to register with. */
  readonly registers: readonly Registry[];
}

/** One sample line: labels, value, and the series name when it is not the metric's. */
interface LocalMetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** What prom-client's registry reads of a metric: `get()` and `reset()`, plus the header. */
abstract class LocalMetric<C extends { reset(): void }> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = "sum" as const;
  readonly labelNames: readonly string[];
  readonly #cells = new Map<string, { labels: Record<string, string>; cell: C }>();

  constructor(options: LocalMetricOptions) {
    if (!METRIC_NAME.test(options.name)) {
      throw new RangeError(`Invalid metric name ${JSON.stringify(options.name)}`);
    }
    for (const l of options.labelNames) {
      if (!LABEL_NAME.test(l) || l === "le") {
        throw new RangeError(`Invalid label name ${JSON.stringify(l)} of ${options.name}`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = [...options.labelNames];
    // prom-client's registry takes any object with its metrics' get/reset shape.
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  abstract readonly type: "counter" | "histogram";

  protected abstract newCell(): C;

  /** The values of every cell, in prom-client's shape. */
  protected abstract values(): LocalMetricValue[];

  /** @returns the metric as prom-client's registry formats it */
  get(): Promise<{
    name: string;
    help: string;
    type: "counter" | "histogram";
    aggregator: "sum";
    values: LocalMetricValue[];
  }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.values(),
    });
  }

  /**
   * The cell of one label set: look it up once and keep it.
   * @param values the label values, in `labelNames` order
   * @returns the cell
   * @throws {RangeError} when the number of values is not the number of label names
   */
  cell(...values: string[]): C {
    const key = values.join("\u0000");
    let entry = this.#cells.get(key);
    if (entry === undefined) {
      if (values.length !== this.labelNames.length) {
        throw new RangeError(
          `${this.name} has labels ${this.labelNames.join(", ")}; got ${values.length} values`,
        );
      }
      const labels: Record<string, string> = {};
      this.labelNames.forEach((l, i) => labels[l] = values[i]!);
      entry = { labels, cell: this.newCell() };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }

  /**
   * Zeroes every cell (prom-client's `registry.resetMetrics()`). Cells are kept, not
   * dropped: callers hold on to the cells they looked up.
   */
  reset(): void {
    for (const { cell } of this.#cells.values()) cell.reset();
  }

  protected entries(): Iterable<{ labels: Record<string, string>; cell: C }> {
    return this.#cells.values();
  }
}

/** A counter by label values, in prom-client's text format at scrape time. */
export class LocalCounter extends LocalMetric<CounterCell> {
  readonly type = "counter" as const;

  protected newCell(): CounterCell {
    return new CounterCell();
  }

  protected values(): LocalMetricValue[] {
    return [...this.entries()].map((e) => ({ labels: e.labels, value: e.cell.value }));
  }
}

/** Options of a {@link LocalHistogram}. */
export interface LocalHistogramOptions extends LocalMetricOptions {
  /** Upper bounds of the buckets, ascending, finite. */
  readonly buckets: readonly number[];
}

/** A histogram by label values, in prom-client's text format at scrape time. */
export class LocalHistogram extends LocalMetric<HistogramCell> {
  readonly type = "histogram" as const;
  readonly #bounds: Float64Array;

  /**
   * @param options name, help, labels, buckets and registries
   * @throws {RangeError} for bad names or buckets that are not ascending and finite
   */
  constructor(options: LocalHistogramOptions) {
    super(options);
    options.buckets.forEach((b, i) => {
      if (!Number.isFinite(b) || (i > 0 && b <= options.buckets[i - 1]!)) {
        throw new RangeError(`Buckets of ${options.name} must be finite and ascending`);
      }
    });
    this.#bounds = Float64Array.from(options.buckets);
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.#bounds);
  }

  /** The buckets (cumulative, with `+Inf`), sum and count of every cell. */
  protected values(): LocalMetricValue[] {
    const values: LocalMetricValue[] = [];
    for (const { labels, cell } of this.entries()) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += cell.counts[i]!;
        const le = i < this.#bounds.length ? this.#bounds[i]! : "+Inf";
        values.push({
          labels: { le, ...labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return values;
  }
}
