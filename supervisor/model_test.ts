// Model-based property test: random sequences of crashes, normal and
// shutdown exits, terminations, restarts, deletions, new children and time
// steps run against a real Supervisor and a small reference model of OTP's
// rules; the clock is a ManualClock under the test's control. Mutated models
// show that the comparison catches deviations.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ExitReason,
  type RestartType,
  type Strategy,
  Supervisor,
  SupervisorError,
  workerSpec,
} from "./mod.ts";
import { testRuntime, Worker } from "./_test_util.ts";

// Deno 2.8+ turned the op and resource sanitizers off by default; these tests
// promise no leaked timers, ops or resources, so they opt back in.
Deno.test.sanitizer({ ops: true, resources: true });

type Op =
  | {
    readonly op: "exit";
    readonly child: number;
    readonly reason: "normal" | "shutdown" | "crash";
  }
  | { readonly op: "terminate"; readonly child: number }
  | { readonly op: "restart"; readonly child: number }
  | { readonly op: "delete"; readonly child: number }
  | { readonly op: "start"; readonly restart: RestartType }
  | { readonly op: "advance"; readonly ms: number };

/** Deviations a broken supervisor might have; the model test must catch each. */
type Mutation =
  | "none"
  | "transient_restarts_on_normal"
  | "intensity_allows_one_more"
  | "rest_for_one_acts_as_one_for_one"
  | "restart_window_ignored"
  | "temporary_kept_after_exit";

interface ModelChild {
  id: string;
  restart: RestartType;
  running: boolean;
  restartCount: number;
}

/** The reference: OTP's supervisor rules, written independently of supervisor.ts. */
class Model {
  children: ModelChild[];
  stamps: number[] = [];
  alive = true;
  now = 0;

  constructor(readonly strategy: Strategy, restarts: RestartType[], readonly mutation: Mutation) {
    this.children = restarts.map((restart, i) => ({
      id: `c${i}`,
      restart,
      running: true,
      restartCount: 0,
    }));
  }

  #restartable(child: ModelChild, reason: string): boolean {
    if (child.restart === "permanent") return true;
    if (child.restart === "temporary") return false;
    if (this.mutation === "transient_restarts_on_normal") return true;
    return reason === "crash";
  }

  #addRestart(): boolean {
    const window = this.mutation === "restart_window_ignored" ? Infinity : 5000;
    this.stamps = this.stamps.filter((t) => t >= this.now - window);
    this.stamps.push(this.now);
    const max = this.mutation === "intensity_allows_one_more" ? 4 : 3;
    return this.stamps.length <= max;
  }

  exit(child: ModelChild, reason: string): void {
    child.running = false;
    if (!this.#restartable(child, reason)) {
      if (child.restart === "temporary" && this.mutation !== "temporary_kept_after_exit") {
        this.children = this.children.filter((c) => c !== child);
      }
      return;
    }
    if (!this.#addRestart()) {
      this.alive = false;
      return;
    }
    const index = this.children.indexOf(child);
    const strategy = this.mutation === "rest_for_one_acts_as_one_for_one" &&
        this.strategy === "rest_for_one"
      ? "one_for_one"
      : this.strategy;
    const group = strategy === "one_for_one"
      ? [child]
      : strategy === "one_for_all"
      ? [...this.children]
      : this.children.slice(index);
    const dropped = group.filter((c) => c !== child && c.restart === "temporary");
    this.children = this.children.filter((c) => !dropped.includes(c));
    for (const c of group) {
      if (dropped.includes(c)) continue;
      c.running = true;
      c.restartCount++;
    }
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("exit" as const),
      child: fc.nat(9),
      reason: fc.constantFrom("normal" as const, "shutdown" as const, "crash" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("terminate" as const), child: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("restart" as const), child: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), child: fc.nat(9) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("start" as const),
      restart: fc.constantFrom<RestartType>("permanent", "transient", "temporary"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.constantFrom(0, 100, 1000, 2500, 6000),
    }),
  },
);

const restartArb = fc.constantFrom<RestartType>("permanent", "transient", "temporary");

const scenarioArb = fc.record({
  strategy: fc.constantFrom<Strategy>("one_for_one", "one_for_all", "rest_for_one"),
  restarts: fc.array(restartArb, { minLength: 1, maxLength: 4 }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 30 }),
});

type Scenario = { strategy: Strategy; restarts: RestartType[]; ops: Op[] };

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e) => e instanceof SupervisorError && e.code === code);
}

/** Runs one scenario on the real supervisor and the model; throws on the first difference. */
async function runScenario(s: Scenario, mutation: Mutation): Promise<void> {
  const { rt, clock } = testRuntime();
  try {
    const model = new Model(s.strategy, s.restarts, mutation);
    const spec = (id: string, restart: RestartType) =>
      workerSpec(id, Worker, { id }, { restart, shutdown: "brutal_kill" });
    const sup = await Supervisor.start(
      rt,
      model.children.map((c) => spec(c.id, c.restart)),
      { strategy: s.strategy },
    );
    let fresh = 0;
    for (const [step, op] of s.ops.entries()) {
      if (!model.alive) break;
      const child = model.children.length === 0
        ? undefined
        : model.children[("child" in op ? op.child : 0) % model.children.length]!;
      const where = `step ${step} ${JSON.stringify(op)}`;
      switch (op.op) {
        case "advance":
          clock.advance(op.ms);
          model.now += op.ms;
          break;
        case "exit": {
          if (child === undefined || !child.running) break;
          const [real] = (await Supervisor.whichChildren(rt, sup)).filter((c) => c.id === child.id);
          assert.ok(real?.pid, `${where}: ${child.id} should be running`);
          const reason: ExitReason = op.reason === "crash" ? new Error("crash") : op.reason;
          if (reason instanceof Error) rt.cast(real.pid, { crash: "crash" });
          else rt.cast(real.pid, { stop: reason });
          model.exit(child, op.reason);
          break;
        }
        case "terminate":
          if (child === undefined) break;
          await Supervisor.terminateChild(rt, sup, child.id);
          child.running = false;
          if (child.restart === "temporary") {
            model.children = model.children.filter((c) => c !== child);
          }
          break;
        case "restart":
          if (child === undefined) break;
          if (child.running) {
            await expectCode(Supervisor.restartChild(rt, sup, child.id), "running");
          } else {
            await Supervisor.restartChild(rt, sup, child.id);
            child.running = true;
          }
          break;
        case "delete":
          if (child === undefined) break;
          if (child.running) await expectCode(Supervisor.deleteChild(rt, sup, child.id), "running");
          else {
            await Supervisor.deleteChild(rt, sup, child.id);
            model.children = model.children.filter((c) => c !== child);
          }
          break;
        case "start": {
          const id = `n${fresh++}`;
          await Supervisor.startChild(rt, sup, spec(id, op.restart));
          model.children.push({ id, restart: op.restart, running: true, restartCount: 0 });
          break;
        }
      }
      await rt.idle();
      assert.equal(rt.isAlive(sup), model.alive, `${where}: supervisor alive`);
      if (!model.alive) break;
      const real = (await Supervisor.whichChildren(rt, sup)).map((c) => ({
        id: c.id,
        running: c.pid !== null && rt.isAlive(c.pid),
        restartCount: c.restartCount,
      }));
      const expected = model.children.map((c) => ({
        id: c.id,
        running: c.running,
        restartCount: c.restartCount,
      }));
      assert.deepEqual(real, expected, `${where}: children`);
    }
    if (!model.alive) assert.equal(rt.processCount, 0, "everything stopped after max intensity");
    else await rt.stop(sup, "shutdown");
  } finally {
    rt.close();
  }
}

Deno.test("model: the supervisor follows OTP's rules on random operation sequences", async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, (s) => runScenario(s, "none")),
    { numRuns: 300, seed: 20261122 },
  );
});

const MUTATIONS: Mutation[] = [
  "transient_restarts_on_normal",
  "intensity_allows_one_more",
  "rest_for_one_acts_as_one_for_one",
  "restart_window_ignored",
  "temporary_kept_after_exit",
];

for (const mutation of MUTATIONS) {
  Deno.test(`model: a planted deviation (${mutation}) is caught`, async () => {
    const result = await fc.check(
      fc.asyncProperty(scenarioArb, (s) => runScenario(s, mutation)),
      { numRuns: 300, seed: 7 },
    );
    assert.equal(result.failed, true, `${mutation} was not detected in ${result.numRuns} runs`);
  });
}
