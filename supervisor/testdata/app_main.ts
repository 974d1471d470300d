// A small application for the subprocess test of the real signal path:
// prints "ready" once its tree runs, "stop:<id>" as each worker terminates.
// With "crash", it crashes a worker until the root gives up (exit code 1).

import { Application, type GenServer, Supervisor, supervisorSpec, workerSpec } from "../mod.ts";

const Printer: GenServer<string, string, never, never, "crash"> = {
  init(id, ctx) {
    ctx.trapExit(true);
    return { state: id };
  },
  handleCast(_m) {
    throw new Error("crash requested");
  },
  terminate(_reason, id) {
    console.log(`stop:${id}`);
  },
};

const app = await Application.start({
  runtime: { report: () => {} },
  start: (rt) =>
    Supervisor.start(rt, [
      workerSpec("a", Printer, "a", { name: "a" }),
      supervisorSpec("sub", [workerSpec("b", Printer, "b", { name: "b" })], { maxRestarts: 0 }),
      workerSpec("c", Printer, "c", { name: "c" }),
    ], { maxRestarts: 0 }),
});
console.log("ready");
if (Deno.args[0] === "crash") app.runtime.cast("b", "crash");
