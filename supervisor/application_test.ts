import assert from "node:assert/strict";
import { Application, type GenServer, type SignalSource, Supervisor, workerSpec } from "./mod.ts";
import { Worker } from "./_test_util.ts";

// Deno 2.8+ turned the op and resource sanitizers off by default; these tests
// promise no leaked timers, ops or resources, so they opt back in.
Deno.test.sanitizer({ ops: true, resources: true });

function fakeSignals() {
  const handlers = new Map<string, () => void>();
  const source: SignalSource = {
    subscribe(signal, handler) {
      handlers.set(signal, handler);
      return () => handlers.delete(signal);
    },
  };
  return { source, handlers };
}

Deno.test("application: SIGTERM stops the tree in reverse order and exits 0", async () => {
  for (const signal of ["SIGTERM", "SIGINT"]) {
    const log: string[] = [];
    const { source, handlers } = fakeSignals();
    const codes: number[] = [];
    const app = await Application.start({
      runtime: { report: () => {} },
      signals: source,
      exit: (c) => codes.push(c),
      start: (rt) =>
        Supervisor.start(
          rt,
          ["a", "b", "c"].map((id) => workerSpec(id, Worker, { id, log, trapExit: true })),
        ),
    });
    handlers.get(signal)!();
    assert.equal(await app.exited, 0);
    assert.deepEqual(codes, [0]);
    assert.deepEqual(log, ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]);
    assert.equal(handlers.size, 0); // listeners removed
    assert.equal(app.runtime.processCount, 0);
  }
});

Deno.test("application: a root that crashes (intensity exceeded) exits non-zero", async () => {
  const { source } = fakeSignals();
  const codes: number[] = [];
  const app = await Application.start({
    runtime: { report: () => {} },
    signals: source,
    exit: (c) => codes.push(c),
    start: (rt) =>
      Supervisor.start(rt, [workerSpec("w", Worker, { id: "w" }, { name: "w" })], {
        maxRestarts: 0,
      }),
  });
  app.runtime.cast("w", { crash: "x" });
  assert.equal(await app.exited, 1);
  assert.deepEqual(codes, [1]);
});

Deno.test("application: a root that stops through auto_shutdown exits 0", async () => {
  const { source } = fakeSignals();
  const codes: number[] = [];
  const app = await Application.start({
    runtime: { report: () => {} },
    signals: source,
    exit: (c) => codes.push(c),
    start: (rt) =>
      Supervisor.start(rt, [
        workerSpec("job", Worker, { id: "job" }, {
          name: "job",
          restart: "transient",
          significant: true,
        }),
      ], { autoShutdown: "any_significant" }),
  });
  app.runtime.cast("job", { stop: "normal" }); // the job is done: the tree's work is done
  assert.equal(await app.exited, 0);
  assert.deepEqual(codes, [0]);
});

Deno.test("application: a stop that exceeds shutdownTimeoutMs kills the root and exits 1", async () => {
  const { source, handlers } = fakeSignals();
  const codes: number[] = [];
  const Hang: GenServer<void, null> = {
    init(_, ctx) {
      ctx.trapExit(true);
      return { state: null };
    },
    terminate: () => new Promise(() => {}),
  };
  const app = await Application.start({
    runtime: { report: () => {} },
    signals: source,
    exit: (c) => codes.push(c),
    shutdownTimeoutMs: 20,
    start: (rt) =>
      Supervisor.start(rt, [{
        id: "h",
        start: (ctx) => ctx.startLink(Hang, undefined),
        shutdown: "infinity",
      }]),
  });
  handlers.get("SIGINT")!();
  assert.equal(await app.exited, 1);
  assert.deepEqual(codes, [1]);
});

async function runApp(args: string[], signal: Deno.Signal | null) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      new URL("./testdata/app_main.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const decoder = new TextDecoderStream();
  const reader = child.stdout.pipeThrough(decoder).getReader();
  let buffer = "";
  let signalled = false;
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    lines.push(...parts);
    if (!signalled && signal !== null && lines.includes("ready")) {
      signalled = true;
      child.kill(signal);
    }
  }
  const status = await child.status;
  clearTimeout(deadline);
  await child.stderr.cancel();
  return { code: status.code, lines };
}

Deno.test("application subprocess: a real SIGTERM stops the tree in order, exit code 0", async () => {
  const { code, lines } = await runApp([], "SIGTERM");
  assert.deepEqual(lines, ["ready", "stop:c", "stop:b", "stop:a"]);
  assert.equal(code, 0);
});

Deno.test("application subprocess: a crash reaching the root exits non-zero", async () => {
  const { code, lines } = await runApp(["crash"], null);
  assert.equal(lines[0], "ready");
  assert.ok(lines.includes("stop:a") && lines.includes("stop:c"));
  assert.equal(code, 1);
});
