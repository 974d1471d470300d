import assert from "node:assert/strict";
import {
  CallExitError,
  type ChildSpec,
  DynamicSupervisor,
  type ExitReason,
  type GenServer,
  type Pid,
  type RestartType,
  type RuntimeEvent,
  StartError,
  type Strategy,
  Supervisor,
  SupervisorError,
  supervisorSpec,
  workerSpec,
} from "./mod.ts";
import { testRuntime, Worker, type WorkerArgs } from "./_test_util.ts";

// Deno 2.8+ turned the op and resource sanitizers off by default; these tests
// promise no leaked timers, ops or resources, so they opt back in.
Deno.test.sanitizer({ ops: true, resources: true });

function w(
  id: string,
  log: string[],
  extra: Partial<WorkerArgs> = {},
  spec: Partial<ChildSpec> = {},
) {
  return workerSpec(id, Worker, { id, log, ...extra }, { name: id, ...spec });
}

function ofType<T extends RuntimeEvent["type"]>(events: RuntimeEvent[], type: T) {
  return events.filter((e): e is Extract<RuntimeEvent, { type: T }> => e.type === type);
}

function exitWith(rt: ReturnType<typeof testRuntime>["rt"], target: string, reason: ExitReason) {
  if (reason instanceof Error) rt.cast(target, { crash: reason.message });
  else rt.cast(target, { stop: reason });
}

Deno.test("children start in order and stop in reverse order", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [
    w("a", log, { trapExit: true }),
    w("b", log, { trapExit: true }),
    w("c", log, { trapExit: true }),
  ]);
  assert.deepEqual(log, ["start:a", "start:b", "start:c"]);
  assert.equal(await rt.stop(sup, "shutdown"), "shutdown");
  assert.deepEqual(log.slice(3), ["stop:c", "stop:b", "stop:a"]);
  assert.equal(rt.processCount, 0);
  rt.close();
});

// The strategies table: strategy x restart type of the exiting child x exit
// reason. Children a, b, c (a and c permanent); b exits. `restarts` says
// whether OTP restarts b for that restart type and reason.
const REASONS: [string, ExitReason][] = [
  ["normal", "normal"],
  ["shutdown", "shutdown"],
  ["{shutdown,x}", { shutdown: "x" }],
  ["error", new Error("crash")],
];
const RESTARTS: Record<RestartType, Record<string, boolean>> = {
  permanent: { normal: true, shutdown: true, "{shutdown,x}": true, error: true },
  transient: { normal: false, shutdown: false, "{shutdown,x}": false, error: true },
  temporary: { normal: false, shutdown: false, "{shutdown,x}": false, error: false },
};
const GROUPS: Record<Strategy, { terminated: string[]; restarted: string[] }> = {
  one_for_one: { terminated: [], restarted: ["b"] },
  one_for_all: { terminated: ["c", "a"], restarted: ["a", "b", "c"] },
  rest_for_one: { terminated: ["c"], restarted: ["b", "c"] },
};

for (const strategy of Object.keys(GROUPS) as Strategy[]) {
  for (const restart of Object.keys(RESTARTS) as RestartType[]) {
    for (const [reasonName, reason] of REASONS) {
      const restarts = RESTARTS[restart][reasonName]!;
      Deno.test(`strategy table: ${strategy}, ${restart} child exits ${reasonName} -> ${restarts ? "restart" : "no restart"}`, async () => {
        const { rt, events } = testRuntime();
        const log: string[] = [];
        const sup = await Supervisor.start(rt, [
          w("a", log),
          w("b", log, {}, { restart }),
          w("c", log),
        ], { strategy });
        const before = await Supervisor.whichChildren(rt, sup);
        events.length = 0;
        exitWith(rt, "b", reason);
        await rt.idle();
        const terminated = ofType(events, "child_terminated").map((e) => e.id);
        const restarted = ofType(events, "child_restarted").map((e) => e.id);
        const after = await Supervisor.whichChildren(rt, sup);
        const group = GROUPS[strategy];
        if (restarts) {
          assert.deepEqual(terminated, group.terminated);
          assert.deepEqual(restarted, group.restarted);
          for (const id of ["a", "b", "c"]) {
            const was = before.find((c) => c.id === id)!.pid;
            const now = after.find((c) => c.id === id)!.pid;
            assert.ok(now !== null && rt.isAlive(now));
            assert.equal(was === now, !group.restarted.includes(id), `pid of ${id}`);
          }
        } else {
          assert.deepEqual(terminated, []);
          assert.deepEqual(restarted, []);
          const ids = after.map((c) => c.id);
          if (restart === "temporary") assert.deepEqual(ids, ["a", "c"]);
          else {
            assert.deepEqual(ids, ["a", "b", "c"]);
            assert.equal(after[1]!.pid, null);
            assert.equal(after[1]!.status, "terminated");
          }
          assert.equal(after[0]!.pid, before[0]!.pid);
          assert.equal(after.at(-1)!.pid, before[2]!.pid);
        }
        await rt.stop(sup, "shutdown");
        rt.close();
      });
    }
  }
}

Deno.test("one_for_all removes temporary siblings it stops instead of restarting them", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [w("a", log, {}, { restart: "temporary" }), w("b", log)], {
    strategy: "one_for_all",
  });
  rt.cast("b", { crash: "x" });
  await rt.idle();
  assert.deepEqual((await Supervisor.whichChildren(rt, sup)).map((c) => c.id), ["b"]);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("intensity: 3 restarts in 5 s are allowed, the 4th stops the supervisor with shutdown", async () => {
  const { rt, clock, events } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [w("a", log, { trapExit: true }), w("b", log)]);
  const down = rt.waitForExit(sup);
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    rt.cast("b", { crash: "x" });
    await rt.idle();
    assert.ok(rt.isAlive(sup));
  }
  clock.advance(1999); // the first restart (t=1000) is still inside the 5 s window
  log.length = 0;
  rt.cast("b", { crash: "x" });
  assert.equal(await down, "shutdown");
  assert.deepEqual(log, ["stop:b", "stop:a"]); // b's crash, then the remaining child is stopped
  assert.deepEqual(ofType(events, "supervisor_shutdown").map((e) => e.cause), ["max_intensity"]);
  assert.equal(rt.processCount, 0);
  rt.close();
});

Deno.test("intensity: restarts older than maxSeconds no longer count", async () => {
  const { rt, clock } = testRuntime();
  const sup = await Supervisor.start(rt, [w("b", [])], { maxRestarts: 2, maxSeconds: 1 });
  for (let i = 0; i < 10; i++) {
    clock.advance(600); // at most 2 restarts in any 1 s window
    rt.cast("b", { crash: "x" });
    await rt.idle();
    assert.ok(rt.isAlive(sup), `after crash ${i + 1}`);
  }
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("intensity: a restart exactly maxSeconds ago still counts, as OTP's inclusive window", async () => {
  const { rt, clock } = testRuntime();
  const sup = await Supervisor.start(rt, [w("b", [])], { maxRestarts: 1, maxSeconds: 1 });
  const down = rt.waitForExit(sup);
  rt.cast("b", { crash: "x" }); // restart at t=0
  await rt.idle();
  clock.advance(1000);
  rt.cast("b", { crash: "x" }); // t=1000: the t=0 restart is on the window's edge
  assert.equal(await down, "shutdown");
  rt.close();
});

Deno.test("escalation through three levels reaches the root, whose exit is seen", async () => {
  const { rt, events } = testRuntime();
  const log: string[] = [];
  const root = await Supervisor.start(rt, [
    supervisorSpec("mid", [
      supervisorSpec("leaf", [w("worker", log)], { maxRestarts: 1 }),
    ], { maxRestarts: 1 }),
  ], { maxRestarts: 1 });
  const rootDown = rt.waitForExit(root);
  // Each crash round: the leaf exceeds its intensity on the 2nd crash, the
  // mid restarts it; the mid exceeds on the 2nd leaf failure, the root
  // restarts it; the root exceeds on the 2nd mid failure.
  for (let i = 0; i < 8 && rt.isAlive(root); i++) {
    rt.cast("worker", { crash: `c${i}` });
    await rt.idle();
  }
  assert.equal(await rootDown, "shutdown");
  const shutdowns = ofType(events, "supervisor_shutdown").map((e) => e.supervisor);
  assert.equal(shutdowns.at(-1), root);
  const exited = ofType(events, "child_exited");
  assert.ok(exited.some((e) => e.id === "leaf" && e.reason === "shutdown"));
  assert.ok(exited.some((e) => e.id === "mid" && e.reason === "shutdown"));
  // Each parent applied its strategy before giving up itself.
  const restarted = ofType(events, "child_restarted").map((e) => e.id);
  assert.ok(
    restarted.includes("worker") && restarted.includes("leaf") && restarted.includes("mid"),
  );
  assert.equal(rt.processCount, 0);
  rt.close();
});

Deno.test("shutdown timeout: a child that ignores the stop is killed after its shutdown time", async () => {
  const { rt, clock, events } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [
    w("stubborn", log, { trapExit: true, hangInTerminate: true }, { shutdown: 2000 }),
  ]);
  const child = rt.whereis("stubborn")!;
  const supDown = rt.waitForExit(sup);
  const stopping = Supervisor.terminateChild(rt, sup, "stubborn");
  await new Promise((r) => setTimeout(r, 0)); // the supervisor now waits on its shutdown timer
  assert.deepEqual(log, ["start:stubborn", "stop:stubborn"]); // terminate started
  assert.ok(rt.isAlive(child));
  const queued = rt.call(child, "ping", { timeoutMs: Infinity }).catch((e) => e);
  rt.sendAfter(child, "tick", 60_000);
  assert.equal(rt.inspect(child)?.timers, 1);
  clock.advance(1999);
  assert.ok(rt.isAlive(child));
  clock.advance(1);
  await stopping;
  assert.equal(rt.isAlive(child), false);
  const [t] = ofType(events, "child_terminated");
  assert.equal(t?.reason, "killed");
  const failed = await queued; // kill fails its pending calls and drops its timers
  assert.ok(failed instanceof CallExitError && failed.reason === "killed");
  assert.equal(rt.timerCount, 0);
  await rt.stop(sup, "shutdown");
  assert.equal(await supDown, "shutdown");
  rt.close();
});

Deno.test("shutdown: a child that stops in time is reported with its own reason, and no shutdown timer is left", async () => {
  const { rt, events } = testRuntime();
  const sup = await Supervisor.start(rt, [w("polite", [], { trapExit: true }, { shutdown: 2000 })]);
  await Supervisor.terminateChild(rt, sup, "polite");
  assert.deepEqual(ofType(events, "child_terminated").map((e) => [e.id, e.reason]), [[
    "polite",
    "shutdown",
  ]]);
  assert.equal(rt.timerCount, 0);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("a nested supervisor's default shutdown is infinity: its parent waits for its children", async () => {
  const { rt, clock } = testRuntime();
  const log: string[] = [];
  const root = await Supervisor.start(rt, [
    supervisorSpec("sub", [
      w("slow", log, { trapExit: true, hangInTerminate: true }, { shutdown: 8000 }),
    ]),
  ]);
  const sub = rt.tree(root).children[0]!.pid!;
  const down = rt.waitForExit(root);
  const subDown = rt.waitForExit(sub);
  rt.stop(root, "shutdown").catch(() => {});
  await new Promise((r) => setTimeout(r, 0));
  clock.advance(5000); // a worker's default (5000 ms) would kill the sub-supervisor here
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(rt.isAlive(sub));
  clock.advance(3000); // the slow child's own shutdown time runs out
  assert.equal(await subDown, "shutdown");
  assert.equal(await down, "shutdown");
  rt.close();
});

Deno.test("shutdown brutal_kill kills at once; infinity waits for terminate", async () => {
  const { rt, events } = testRuntime();
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const SlowStop: GenServer<void, null> = {
    init(_, ctx) {
      ctx.trapExit(true);
      return { state: null };
    },
    terminate: async () => {
      await gate;
      log.push("slow done");
    },
  };
  const sup = await Supervisor.start(rt, [
    { id: "slow", start: (ctx) => ctx.startLink(SlowStop, undefined), shutdown: "infinity" },
    w("brutal", log, { trapExit: true }, { shutdown: "brutal_kill" }),
  ]);
  const stopping = rt.stop(sup, "shutdown");
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(log, ["start:brutal"]); // killed: no terminate
  assert.deepEqual(ofType(events, "child_terminated").map((e) => [e.id, e.reason]), [[
    "brutal",
    "killed",
  ]]);
  release();
  await stopping;
  assert.deepEqual(log, ["start:brutal", "slow done"]);
  rt.close();
});

Deno.test("a crash in init fails the supervisor's start and stops the children started before", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const err = await Supervisor.start(rt, [
    w("a", log, { trapExit: true }),
    w("a2", log, { trapExit: true }),
    w("b", log, { initError: new Error("init boom") }),
    w("c", log),
  ]).catch((e) => e);
  assert.ok(err instanceof StartError);
  const detail =
    (err.reason as { shutdown: { failedToStartChild: string; reason: Error } }).shutdown;
  assert.equal(detail.failedToStartChild, "b");
  assert.equal(detail.reason.message, "init boom");
  // Stopped by the supervisor, in reverse order, before its start fails.
  assert.deepEqual(log, ["start:a", "start:a2", "stop:a2", "stop:a"]);
  assert.equal(rt.processCount, 0);
  rt.close();
});

Deno.test("a crash during a restart is retried and counts toward the intensity", async () => {
  let starts = 0;
  let failNext = 0;
  const flaky: ChildSpec = {
    id: "flaky",
    start: (ctx) => {
      starts++;
      if (failNext > 0) {
        failNext--;
        return Promise.reject(new Error("restart boom"));
      }
      return ctx.startLink(Worker, { id: "flaky" }, { name: "flaky" });
    },
  };
  // The restart fails once, the retry succeeds.
  const t1 = testRuntime();
  const sup = await Supervisor.start(t1.rt, [flaky]);
  failNext = 1;
  t1.rt.cast("flaky", { crash: "x" });
  await t1.rt.idle();
  assert.equal(starts, 3);
  assert.equal(ofType(t1.events, "child_start_failed").length, 1);
  const [child] = await Supervisor.whichChildren(t1.rt, sup);
  assert.equal(child?.status, "running");
  assert.equal(child?.restartCount, 1);
  await t1.rt.stop(sup, "shutdown");
  t1.rt.close();

  // Every restart fails: the retries exceed the intensity and the supervisor exits.
  const t2 = testRuntime();
  starts = 0;
  const sup2 = await Supervisor.start(t2.rt, [flaky]);
  failNext = Infinity;
  const down = t2.rt.waitForExit(sup2);
  t2.rt.cast("flaky", { crash: "x" });
  assert.equal(await down, "shutdown");
  assert.equal(starts, 1 + 3); // the first start, then 3 failed attempts; the 4th exceeds
  assert.equal(ofType(t2.events, "child_start_failed").length, 3);
  t2.rt.close();
});

Deno.test("restartChild and deleteChild refuse a child whose restart is pending", async () => {
  const { rt } = testRuntime();
  let failures = 0;
  let gate: Promise<void> = Promise.resolve();
  let open!: () => void;
  const spec: ChildSpec = {
    id: "f",
    start: async (ctx) => {
      await gate;
      if (failures > 0 && failures--) throw new Error("restart boom");
      return ctx.startLink(Worker, { id: "f" }, { name: "f" });
    },
  };
  const sup = await Supervisor.start(rt, [spec]);
  failures = 1; // the restart fails once (after the gate), the retry succeeds
  gate = new Promise((r) => open = r);
  rt.cast("f", { crash: "x" });
  await new Promise((r) => setTimeout(r, 0)); // the supervisor now waits in the restart
  const restart = Supervisor.restartChild(rt, sup, "f").catch((e) => e);
  const del = Supervisor.deleteChild(rt, sup, "f").catch((e) => e);
  open();
  for (const refused of [await restart, await del]) {
    assert.ok(refused instanceof SupervisorError && refused.code === "restarting", String(refused));
  }
  await rt.idle();
  const [child] = await Supervisor.whichChildren(rt, sup);
  assert.equal(child?.status, "running");
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("init returning ignore: a temporary child is dropped, others are kept as ignored", async () => {
  const { rt } = testRuntime();
  const Ignore: GenServer<void, null> = { init: () => ({ ignore: true }) };
  const sup = await Supervisor.start(rt, [
    { id: "tmp", start: (ctx) => ctx.startLink(Ignore, undefined), restart: "temporary" },
    { id: "perm", start: (ctx) => ctx.startLink(Ignore, undefined) },
    w("a", []),
  ]);
  const which = await Supervisor.whichChildren(rt, sup);
  assert.deepEqual(which.map((c) => [c.id, c.status, c.pid]), [
    ["perm", "ignored", null],
    ["a", "running", which[1]!.pid],
  ]);
  assert.ok(which[1]!.pid !== null);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("auto_shutdown any_significant stops the supervisor when a significant child exits", async () => {
  const { rt, events } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [
    w("a", log, { trapExit: true }),
    w("job", log, {}, { restart: "transient", significant: true }),
  ], { autoShutdown: "any_significant" });
  const down = rt.waitForExit(sup);
  rt.cast("job", { stop: "normal" });
  assert.equal(await down, "shutdown");
  assert.deepEqual(log, ["start:a", "start:job", "stop:job", "stop:a"]);
  assert.deepEqual(ofType(events, "supervisor_shutdown").map((e) => e.cause), ["auto_shutdown"]);
  rt.close();
});

Deno.test("auto_shutdown all_significant waits for every significant child; terminateChild does not count", async () => {
  const { rt } = testRuntime();
  const sup = await Supervisor.start(rt, [
    w("j1", [], {}, { restart: "temporary", significant: true }),
    w("j2", [], {}, { restart: "transient", significant: true }),
    w("j3", [], {}, { restart: "transient", significant: true }),
  ], { autoShutdown: "all_significant" });
  await Supervisor.terminateChild(rt, sup, "j3");
  assert.ok(rt.isAlive(sup));
  const down = rt.waitForExit(sup);
  rt.cast("j1", { stop: "normal" });
  await rt.idle();
  assert.ok(rt.isAlive(sup));
  rt.cast("j2", { crash: "x" }); // transient + crash: restarted, still alive
  await rt.idle();
  assert.ok(rt.isAlive(sup));
  rt.cast("j2", { stop: "shutdown" });
  assert.equal(await down, "shutdown");
  rt.close();
});

Deno.test("significant children need auto_shutdown and a transient or temporary restart", async () => {
  const { rt } = testRuntime();
  assert.throws(
    () => Supervisor.start(rt, [w("j", [], {}, { restart: "transient", significant: true })]),
    TypeError,
  );
  assert.throws(
    () =>
      Supervisor.start(rt, [w("j", [], {}, { significant: true })], {
        autoShutdown: "any_significant",
      }),
    TypeError,
  );
  const sup = await Supervisor.start(rt, []);
  await assert.rejects(
    Supervisor.startChild(rt, sup, w("j", [], {}, { restart: "transient", significant: true })),
    (e) => e instanceof SupervisorError && e.code === "invalid_child_spec",
  );
  assert.equal((await Supervisor.countChildren(rt, sup)).specs, 0);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("startChild, terminateChild, restartChild, deleteChild, whichChildren, countChildren", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const sup = await Supervisor.start(rt, [w("a", log)]);
  const b = await Supervisor.startChild(rt, sup, w("b", log));
  assert.ok(b !== null && rt.isAlive(b));
  await assert.rejects(
    Supervisor.startChild(rt, sup, w("b", log)),
    (e) => e instanceof SupervisorError && e.code === "already_started",
  );
  assert.deepEqual(await Supervisor.countChildren(rt, sup), {
    specs: 2,
    active: 2,
    supervisors: 0,
    workers: 2,
  });
  await assert.rejects(
    Supervisor.deleteChild(rt, sup, "b"),
    (e) => e instanceof SupervisorError && e.code === "running",
  );
  await Supervisor.terminateChild(rt, sup, "b");
  assert.equal(rt.isAlive(b), false);
  await assert.rejects(
    Supervisor.startChild(rt, sup, w("b", log)),
    (e) => e instanceof SupervisorError && e.code === "already_present",
  );
  const which = await Supervisor.whichChildren(rt, sup);
  assert.deepEqual(which.map((c) => [c.id, c.status]), [["a", "running"], ["b", "terminated"]]);
  const b2 = await Supervisor.restartChild(rt, sup, "b");
  assert.ok(b2 !== null && b2 !== b && rt.isAlive(b2));
  await assert.rejects(
    Supervisor.restartChild(rt, sup, "b"),
    (e) => e instanceof SupervisorError && e.code === "running",
  );
  await Supervisor.terminateChild(rt, sup, "b");
  await Supervisor.deleteChild(rt, sup, "b");
  await assert.rejects(
    Supervisor.terminateChild(rt, sup, "b"),
    (e) => e instanceof SupervisorError && e.code === "not_found",
  );
  await assert.rejects(
    Supervisor.startChild(rt, sup, w("bad", log, { initError: new Error("nope") })),
    StartError,
  );
  assert.deepEqual((await Supervisor.whichChildren(rt, sup)).map((c) => c.id), ["a"]);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("DynamicSupervisor: starts on demand, restarts, honours maxChildren, terminates by pid", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const sup = await DynamicSupervisor.start(rt, { maxChildren: 2 });
  const spec = (id: string) => ({
    start: (ctx: import("./runtime.ts").Context) =>
      ctx.startLink(Worker, { id, log }, { name: id }),
  });
  const p1 = await DynamicSupervisor.startChild(rt, sup, spec("p1"));
  const p2 = await DynamicSupervisor.startChild(rt, sup, { ...spec("p2"), restart: "temporary" });
  await assert.rejects(
    DynamicSupervisor.startChild(rt, sup, spec("p3")),
    (e) => e instanceof SupervisorError && e.code === "max_children",
  );
  rt.cast("p1", { crash: "x" });
  await rt.idle();
  const which = await DynamicSupervisor.whichChildren(rt, sup);
  assert.equal(which.length, 2);
  assert.ok(which[0]!.pid !== p1 && which[0]!.restartCount === 1);
  assert.equal(which[0]!.id, String(which[0]!.pid)); // no id given: known by pid
  rt.cast("p2", { crash: "x" }); // temporary: gone
  await rt.idle();
  assert.equal((await DynamicSupervisor.countChildren(rt, sup)).active, 1);
  await DynamicSupervisor.terminateChild(rt, sup, which[0]!.pid as Pid);
  await assert.rejects(
    DynamicSupervisor.terminateChild(rt, sup, p2 as Pid),
    (e) => e instanceof SupervisorError && e.code === "not_found",
  );
  assert.equal((await DynamicSupervisor.countChildren(rt, sup)).specs, 0);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("DynamicSupervisor: stopping it stops every child at once and waits for each", async () => {
  const { rt, clock, events } = testRuntime();
  const log: string[] = [];
  const sup = await DynamicSupervisor.start(rt);
  for (const id of ["d1", "d2"]) {
    await DynamicSupervisor.startChild(rt, sup, {
      id,
      start: (ctx) => ctx.startLink(Worker, { id, log, trapExit: true, hangInTerminate: true }),
      shutdown: 1000,
    });
  }
  const down = rt.waitForExit(sup);
  rt.stop(sup, "shutdown").catch(() => {});
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(log.slice(2).sort(), ["stop:d1", "stop:d2"]); // both asked at once
  assert.ok(rt.isAlive(sup)); // and waited for
  clock.advance(1000);
  assert.equal(await down, "shutdown");
  assert.deepEqual(
    ofType(events, "child_terminated").map((e) => [e.id, e.reason]).sort(),
    [["d1", "killed"], ["d2", "killed"]],
  );
  assert.equal(rt.processCount, 0);
  rt.close();
});

Deno.test("Supervisor.startChild honours childrenMax", async () => {
  const { rt } = testRuntime();
  const sup = await Supervisor.start(rt, [w("a", [])], { childrenMax: 2 });
  await Supervisor.startChild(rt, sup, w("b", []));
  await assert.rejects(
    Supervisor.startChild(rt, sup, w("c", [])),
    (e) => e instanceof SupervisorError && e.code === "max_children",
  );
  assert.equal((await Supervisor.countChildren(rt, sup)).specs, 2);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("DynamicSupervisor retries a failed restart, and forgets a child whose restart is ignored", async () => {
  const { rt, events } = testRuntime();
  const sup = await DynamicSupervisor.start(rt);
  let mode: "ok" | "fail_once" | "ignore" = "ok";
  const Ignore: GenServer<void, null> = { init: () => ({ ignore: true }) };
  await DynamicSupervisor.startChild(rt, sup, {
    id: "p",
    start: (ctx) => {
      if (mode === "fail_once") {
        mode = "ok";
        return Promise.reject(new Error("restart boom"));
      }
      if (mode === "ignore") return ctx.startLink(Ignore, undefined);
      return ctx.startLink(Worker, { id: "p" }, { name: "p" });
    },
  });
  mode = "fail_once";
  rt.cast("p", { crash: "x" });
  await rt.idle();
  assert.equal(ofType(events, "child_start_failed").length, 1);
  let [child] = await DynamicSupervisor.whichChildren(rt, sup);
  assert.equal(child?.status, "running");
  assert.ok(child?.pid !== null && rt.isAlive(child!.pid));
  assert.equal(child?.restartCount, 1);
  mode = "ignore";
  rt.cast("p", { crash: "y" });
  await rt.idle();
  [child] = await DynamicSupervisor.whichChildren(rt, sup);
  assert.equal(child, undefined);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("DynamicSupervisor refuses significant children: it has no auto_shutdown", async () => {
  const { rt } = testRuntime();
  const sup = await DynamicSupervisor.start(rt);
  const spec = {
    start: (ctx: import("./runtime.ts").Context) => ctx.startLink(Worker, { id: "s" }),
    restart: "transient" as const,
    significant: true,
  };
  await assert.rejects(DynamicSupervisor.startChild(rt, sup, spec), TypeError);
  assert.equal((await DynamicSupervisor.countChildren(rt, sup)).specs, 0);
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("DynamicSupervisor exceeding its intensity exits shutdown", async () => {
  const { rt } = testRuntime();
  const sup = await DynamicSupervisor.start(rt, { maxRestarts: 1 });
  const down = rt.waitForExit(sup);
  await DynamicSupervisor.startChild(rt, sup, {
    start: (ctx) => ctx.startLink(Worker, { id: "p" }, { name: "p" }),
  });
  rt.cast("p", { crash: "1" });
  await rt.idle();
  rt.cast("p", { crash: "2" });
  assert.equal(await down, "shutdown");
  rt.close();
});

Deno.test("a supervisor ignores exit signals from processes that are not its children or parent", async () => {
  const { rt, events } = testRuntime();
  const sup = await Supervisor.start(rt, [w("a", [])]);
  const before = await Supervisor.whichChildren(rt, sup);
  events.length = 0;
  rt.exit(sup, new Error("stranger")); // trapped: an EXIT from <0.0>, not a child
  const Stranger: GenServer<Pid, null, never, never, "die"> = {
    init(target, ctx) {
      ctx.link(target);
      return { state: null };
    },
    handleCast: () => {
      throw new Error("linked stranger crashes");
    },
  };
  const stranger = await rt.start(Stranger, sup);
  rt.cast(stranger, "die");
  await rt.idle();
  assert.ok(rt.isAlive(sup));
  assert.deepEqual(await Supervisor.whichChildren(rt, sup), before);
  assert.deepEqual(
    events.filter((e) => e.type.startsWith("child_") || e.type === "supervisor_shutdown"),
    [],
  );
  await rt.stop(sup, "shutdown");
  rt.close();
});

Deno.test("the live tree: supervisors, children, status, restart counts, mailbox lengths", async () => {
  const { rt } = testRuntime();
  const root = await Supervisor.start(rt, [
    w("a", []),
    supervisorSpec("sub", [w("b", [])]),
    DynamicSupervisor.childSpec("dyn"),
  ]);
  rt.cast("b", { crash: "x" });
  await rt.idle();
  const tree = rt.tree(root);
  assert.deepEqual(tree.children.map((c) => [c.id, c.type, c.status]), [
    ["a", "worker", "running"],
    ["sub", "supervisor", "running"],
    ["dyn", "supervisor", "running"],
  ]);
  const b = tree.children[1]!.children[0]!;
  assert.equal(b.id, "b");
  assert.equal(b.restartCount, 1);
  assert.equal(b.mailboxLength, 0);
  await rt.stop(root, "shutdown");
  rt.close();
});
