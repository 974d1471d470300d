import assert from "node:assert/strict";
import fc from "fast-check";
import { Counter, Histogram, Registry } from "prom-client";
import { LocalCounter, LocalHistogram } from "./local_metrics.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** Feeds the same observations to prom-client's metrics and to the local ones; both texts. */
async function bothTexts(
  observations: readonly { command: string; outcome: "ok" | "error"; seconds: number }[],
): Promise<{ theirs: string; ours: string }> {
  const theirs = new Registry();
  const ours = new Registry();
  const counter = new Counter({
    name: "t_commands_total",
    help: "h",
    labelNames: ["command", "outcome"],
    registers: [theirs],
  });
  const histogram = new Histogram({
    name: "t_seconds",
    help: "h",
    labelNames: ["command"],
    buckets: BUCKETS,
    registers: [theirs],
  });
  const localCounter = new LocalCounter({
    name: "t_commands_total",
    help: "h",
    labelNames: ["command", "outcome"],
    registers: [ours],
  });
  const localHistogram = new LocalHistogram({
    name: "t_seconds",
    help: "h",
    labelNames: ["command"],
    buckets: BUCKETS,
    registers: [ours],
  });
  for (const o of observations) {
    counter.inc({ command: o.command, outcome: o.outcome });
    histogram.observe({ command: o.command }, o.seconds);
    localCounter.cell(o.command, o.outcome).inc();
    localHistogram.cell(o.command).observe(o.seconds);
  }
  return { theirs: await theirs.metrics(), ours: await ours.metrics() };
}

Deno.test("local counters and histograms scrape to the same text as prom-client's", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          command: fc.constantFrom("get", "set", "del"),
          outcome: fc.constantFrom("ok" as const, "error" as const),
          // Bucket edges themselves included: a value equal to a bound belongs to it.
          seconds: fc.oneof(
            fc.constantFrom(...BUCKETS, 0, 5),
            fc.double({ min: 0, max: 3, noNaN: true }),
          ),
        }),
        { maxLength: 60 },
      ),
      async (observations) => {
        const { theirs, ours } = await bothTexts(observations);
        assert.equal(ours, theirs);
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("the comparison notices a value counted one bucket too high", async () => {
  // The checker above must be able to fail: count `seconds` as if it were a bit larger.
  const { theirs } = await bothTexts([{ command: "get", outcome: "ok", seconds: 0.01 }]);
  const { ours } = await bothTexts([{ command: "get", outcome: "ok", seconds: 0.0100001 }]);
  assert.notEqual(ours, theirs);
});

Deno.test("local metrics refuse bad names, label counts and buckets", () => {
  const registers = [new Registry()];
  assert.throws(
    () => new LocalCounter({ name: "bad-name", help: "h", labelNames: [], registers }),
    /Invalid metric name "bad-name"/,
  );
  assert.throws(
    () =>
      new LocalHistogram({ name: "h1", help: "h", labelNames: ["le"], buckets: [1], registers }),
    /Invalid label name "le"/,
  );
  assert.throws(
    () => new LocalHistogram({ name: "h2", help: "h", labelNames: [], buckets: [2, 1], registers }),
    /finite and ascending/,
  );
  const c = new LocalCounter({ name: "c1", help: "h", labelNames: ["a", "b"], registers });
  assert.throws(() => c.cell("x"), /has labels a, b; got 1 values/);
});

Deno.test("a registry reset zeroes the local metrics, and cells looked up before keep counting", async () => {
  const registry = new Registry();
  const c = new LocalCounter({
    name: "r_total",
    help: "h",
    labelNames: ["a"],
    registers: [registry],
  });
  const h = new LocalHistogram({
    name: "r_seconds",
    help: "h",
    labelNames: [],
    buckets: [1],
    registers: [registry],
  });
  const cell = c.cell("x");
  const hc = h.cell();
  cell.inc(5);
  hc.observe(2);
  registry.resetMetrics();
  assert.match(await registry.metrics(), /r_total\{a="x"\} 0\n/);
  assert.match(await registry.metrics(), /r_seconds_count 0\n/);
  cell.inc();
  hc.observe(0.5);
  const text = await registry.metrics();
  assert.match(text, /r_total\{a="x"\} 1\n/);
  assert.match(text, /r_seconds_bucket\{le="1"\} 1\n/);
  assert.match(text, /r_seconds_count 1\n/);
});
