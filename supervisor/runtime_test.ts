import assert from "node:assert/strict";
import {
  AlreadyRegisteredError,
  CallExitError,
  CallTimeoutError,
  type DownMessage,
  type ExitMessage,
  type ExitReason,
  type From,
  type GenServer,
  MailboxFullError,
  ManualClock,
  NoProcessError,
  Pid,
  Registry,
  Runtime,
  type RuntimeEvent,
  StartError,
  SystemLimitError,
} from "./mod.ts";
import { testRuntime, tick, Worker } from "./_test_util.ts";

// Deno 2.8+ turned the op and resource sanitizers off by default; these tests
// promise no leaked timers, ops or resources, so they opt back in.
Deno.test.sanitizer({ ops: true, resources: true });

/** Records every info message it gets; calls answer its pid's messages so far. */
const Collector: GenServer<{ trap?: boolean } | void, unknown[], "get", unknown[], never, unknown> =
  {
    label: "collector",
    init(args, ctx) {
      if (args?.trap === true) ctx.trapExit(true);
      return { state: [] };
    },
    handleCall: (_m, _f, s) => ({ reply: [...s], state: s }),
    handleInfo: (msg, s) => ({ state: [...s, msg] }),
  };

Deno.test("a process handles one message at a time, even across awaits", async () => {
  const { rt } = testRuntime();
  const trace: string[] = [];
  const Slow: GenServer<void, null, never, never, number> = {
    init: () => ({ state: null }),
    async handleCast(n, s) {
      trace.push(`begin ${n}`);
      await tick();
      await tick();
      trace.push(`end ${n}`);
      return { state: s };
    },
  };
  const pid = await rt.start(Slow, undefined);
  rt.cast(pid, 1);
  rt.cast(pid, 2);
  rt.cast(pid, 3);
  await rt.idle();
  assert.deepEqual(trace, ["begin 1", "end 1", "begin 2", "end 2", "begin 3", "end 3"]);
  rt.close();
});

Deno.test("a busy process yields after its turn and resumes, also after an async handler", async () => {
  const { rt } = testRuntime();
  const Count: GenServer<void, number, "n", number, "async" | "sync"> = {
    init: () => ({ state: 0 }),
    handleCall: (_m, _f, n) => ({ reply: n, state: n }),
    handleCast(m, n) {
      if (m === "async") return tick().then(() => ({ state: n + 1 }));
      return { state: n + 1 };
    },
  };
  const a = await rt.start(Count, undefined);
  const b = await rt.start(Count, undefined);
  rt.cast(a, "async");
  for (let i = 0; i < 500; i++) {
    rt.cast(a, "sync");
    rt.cast(b, "sync");
  }
  await rt.idle();
  assert.equal(await rt.call(a, "n"), 501);
  assert.equal(await rt.call(b, "n"), 500);
  rt.close();
});

Deno.test("call returns the reply; calls by registered name and via a Registry", async () => {
  const { rt, clock } = testRuntime();
  const regions = new Registry(rt);
  const a = await rt.start(Worker, { id: "a" }, { name: "a" });
  await rt.start(Worker, { id: "b" }, { name: { registry: regions, key: 42 } });
  assert.equal(await rt.call(a, "ping"), "pong:a");
  assert.equal(await rt.call("a", "ping"), "pong:a");
  assert.equal(await rt.call({ registry: regions, key: 42 }, "ping"), "pong:b");
  await tick();
  assert.equal(clock.pending, 0); // answered calls leave no host timer armed
  rt.close();
});

Deno.test("a deferred reply answers later without blocking the mailbox", async () => {
  const { rt } = testRuntime();
  type Msg = { op: "wait" } | { op: "release"; value: number } | { op: "peek" };
  const Deferred: GenServer<void, From<number | string>[], Msg, number | string> = {
    init: () => ({ state: [] }),
    handleCall(msg, from, waiting, ctx) {
      if (msg.op === "wait") return { noreply: true, state: [...waiting, from] };
      if (msg.op === "peek") return { reply: `waiting ${waiting.length}`, state: waiting };
      for (const f of waiting) ctx.reply(f, msg.value);
      return { reply: waiting.length, state: [] };
    },
  };
  const pid = await rt.start(Deferred, undefined);
  const waiter = rt.call(pid, { op: "wait" });
  assert.equal(await rt.call(pid, { op: "peek" }), "waiting 1"); // mailbox not blocked
  assert.equal(rt.inspect(pid)?.deferredCalls, 1);
  assert.equal(await rt.call(pid, { op: "release", value: 7 }), 1);
  assert.equal(await waiter, 7);
  rt.close();
});

Deno.test("a call to a dead or unknown process fails at once with NoProcessError", async () => {
  const { rt } = testRuntime();
  const pid = await rt.start(Worker, { id: "a" });
  await rt.stop(pid);
  await assert.rejects(rt.call(pid, "ping"), NoProcessError);
  await assert.rejects(rt.call("nobody", "ping"), NoProcessError);
  assert.equal(rt.timerCount, 0); // no timeout was armed for them
  rt.close();
});

Deno.test("a call times out with CallTimeoutError and the late reply is dropped", async () => {
  const { rt, clock } = testRuntime();
  let held: From<string> | null = null;
  const Silent: GenServer<void, null, "q", string> = {
    init: () => ({ state: null }),
    handleCall(_m, from, s) {
      held = from;
      return { noreply: true, state: s };
    },
  };
  const pid = await rt.start(Silent, undefined);
  const pending = rt.call(pid, "q", { timeoutMs: 100 });
  await rt.idle();
  clock.advance(99);
  let settled = false;
  pending.then(() => settled = true, () => settled = true);
  await tick();
  assert.equal(settled, false);
  clock.advance(1);
  await assert.rejects(pending, CallTimeoutError);
  assert.equal(rt.reply(held!, "late"), false); // dropped
  assert.ok(rt.isAlive(pid));
  assert.equal(rt.timerCount, 0);
  rt.close();
});

Deno.test("a call whose target crashes while handling it fails with the exit reason", async () => {
  const { rt } = testRuntime();
  const Crashy: GenServer<void, null, "sync" | "async", never> = {
    init: () => ({ state: null }),
    async handleCall(msg) {
      if (msg === "async") await tick();
      throw new Error(`boom ${msg}`);
    },
  };
  for (const kind of ["sync", "async"] as const) {
    const pid = await rt.start(Crashy, undefined);
    const first = rt.call(pid, kind).catch((e) => e);
    const queued = rt.call(pid, "sync").catch((e) => e); // behind it: fails with the same reason
    const err = await first;
    assert.ok(err instanceof CallExitError);
    assert.ok(err.reason instanceof Error && err.reason.message === `boom ${kind}`);
    const err2 = await queued;
    assert.ok(err2 instanceof CallExitError && err2.reason === err.reason);
    assert.equal(rt.isAlive(pid), false);
  }
  rt.close();
});

Deno.test("a deferred call fails with the exit reason when its holder is killed", async () => {
  const { rt } = testRuntime();
  const Holder: GenServer<void, null, "q", never> = {
    init: () => ({ state: null }),
    handleCall: (_m, _f, s) => ({ noreply: true, state: s }),
  };
  const pid = await rt.start(Holder, undefined);
  const pending = rt.call(pid, "q", { timeoutMs: Infinity });
  await rt.idle();
  rt.exit(pid, "kill");
  const err = await pending.catch((e) => e);
  assert.ok(err instanceof CallExitError && err.reason === "killed");
  rt.close();
});

Deno.test("a handler that throws or rejects crashes the process with that error; terminate runs", async () => {
  const { rt } = testRuntime();
  for (const asyncCrash of [false, true]) {
    const log: string[] = [];
    const pid = await rt.start(Worker, { id: "w", log });
    const down = rt.waitForExit(pid);
    const error = new Error("bad");
    if (asyncCrash) {
      const AsyncCrash: GenServer<void, null, never, never, "x"> = {
        init: () => ({ state: null }),
        handleCast: () => Promise.reject(error),
        terminate: () => void log.push("terminate"),
      };
      const p2 = await rt.start(AsyncCrash, undefined);
      const d2 = rt.waitForExit(p2);
      rt.cast(p2, "x");
      assert.equal(await d2, error);
      assert.deepEqual(log, ["start:w", "terminate"]);
      await rt.stop(pid);
    } else {
      rt.cast(pid, { crash: "bad" });
      const reason = await down;
      assert.ok(reason instanceof Error && reason.message === "bad");
      assert.deepEqual(log, ["start:w", "stop:w"]);
    }
  }
  rt.close();
});

Deno.test("cast and send deliver; send to a free name throws; cast to a dead pid is dropped", async () => {
  const { rt } = testRuntime();
  const pid = await rt.start(Collector, undefined, { name: "c" });
  rt.send(pid, "one");
  rt.send("c", "two");
  assert.deepEqual(await rt.call(pid, "get"), ["one", "two"]);
  assert.throws(() => rt.send("nobody", "x"), NoProcessError);
  await rt.stop(pid);
  rt.cast(pid, "x" as never); // dropped, as in OTP
  rt.send(pid, "x"); // to a dead pid: dropped, as in OTP
  rt.close();
});

Deno.test("sendAfter delivers at its time; cancelTimer returns the time left", async () => {
  const { rt, clock } = testRuntime();
  const pid = await rt.start(Collector, undefined);
  rt.sendAfter(pid, "late", 50);
  const t = rt.sendAfter(pid, "cancelled", 80);
  clock.advance(49);
  assert.deepEqual(await rt.call(pid, "get"), []);
  clock.advance(1);
  assert.deepEqual(await rt.call(pid, "get"), ["late"]);
  assert.equal(rt.cancelTimer(t), 30);
  assert.equal(rt.cancelTimer(t), false);
  clock.advance(100);
  assert.deepEqual(await rt.call(pid, "get"), ["late"]);
  rt.close();
});

Deno.test("timers of a process are cancelled when it exits", async () => {
  const { rt, clock } = testRuntime();
  const pid = await rt.start(Collector, undefined);
  rt.sendAfter(pid, "x", 1000);
  rt.sendAfter(pid, "y", 2000);
  assert.equal(rt.inspect(pid)?.timers, 2);
  assert.equal(rt.timerCount, 2);
  await rt.stop(pid);
  assert.equal(rt.timerCount, 0);
  assert.equal(clock.pending, 0);
  rt.close();
});

Deno.test("exit reasons normal, shutdown, {shutdown, detail} and errors reach monitors", async () => {
  const { rt } = testRuntime();
  const watcher = await rt.start(Collector, undefined);
  const reasons: ExitReason[] = ["normal", "shutdown", { shutdown: "detail" }, new Error("e")];
  for (const reason of reasons) {
    const pid = await rt.start(Worker, { id: "w" });
    rt.inspect(watcher); // alive
    // Monitor from inside the watcher process.
    const Monitoring: GenServer<Pid, null> = {
      init(target, ctx) {
        ctx.monitor(target);
        return { state: null };
      },
      handleInfo(msg, s, ctx) {
        ctx.send(watcher, msg);
        return { stop: "normal", state: s };
      },
    };
    await rt.start(Monitoring, pid);
    if (reason instanceof Error) rt.cast(pid, { crash: "e" });
    else rt.cast(pid, { stop: reason });
    await rt.idle();
  }
  const got = (await rt.call(watcher, "get")) as DownMessage[];
  assert.deepEqual(got.map((m) => m.type), ["DOWN", "DOWN", "DOWN", "DOWN"]);
  assert.deepEqual(got.slice(0, 3).map((m) => m.reason), reasons.slice(0, 3));
  assert.ok(got[3]!.reason instanceof Error);
  rt.close();
});

/** Links to a target in init; reports EXITs it traps to `sink`. */
function linker(sink: Pid): GenServer<{ target: Pid; trap: boolean }, null> {
  return {
    init({ target, trap }, ctx) {
      ctx.trapExit(trap);
      ctx.link(target);
      return { state: null };
    },
    handleInfo(msg, s, ctx) {
      ctx.send(sink, msg);
      return { state: s };
    },
  };
}

Deno.test("links: a crash kills linked non-trapping processes; a normal exit does not", async () => {
  const { rt } = testRuntime();
  const sink = await rt.start(Collector, undefined);
  const a = await rt.start(Worker, { id: "a" });
  const b = await rt.start(linker(sink), { target: a, trap: false });
  rt.cast(a, { crash: "x" });
  const reason = await rt.waitForExit(b);
  assert.ok(reason instanceof Error && reason.message === "x");

  const c = await rt.start(Worker, { id: "c" });
  const d = await rt.start(linker(sink), { target: c, trap: false });
  rt.cast(c, { stop: "normal" });
  await rt.idle();
  assert.ok(rt.isAlive(d));
  rt.close();
});

Deno.test("trapping exits turns exit signals into EXIT messages", async () => {
  const { rt } = testRuntime();
  const sink = await rt.start(Collector, undefined);
  const a = await rt.start(Worker, { id: "a" });
  const b = await rt.start(linker(sink), { target: a, trap: true });
  rt.cast(a, { crash: "x" });
  await rt.idle();
  assert.ok(rt.isAlive(b));
  const [msg] = (await rt.call(sink, "get")) as ExitMessage[];
  assert.equal(msg?.type, "EXIT");
  assert.equal(msg?.from, a);
  assert.ok(msg?.reason instanceof Error);
  rt.close();
});

Deno.test("monitors: DOWN on exit, noproc for a dead target, none after demonitor", async () => {
  const { rt } = testRuntime();
  const sink = await rt.start(Collector, undefined);
  const dead = await rt.start(Worker, { id: "dead" });
  await rt.stop(dead);
  const a = await rt.start(Worker, { id: "a" });
  const b = await rt.start(Worker, { id: "b" });
  const Watcher: GenServer<void, null> = {
    init(_, ctx) {
      ctx.monitor(dead);
      ctx.monitor(a);
      const ref = ctx.monitor(b);
      ctx.demonitor(ref);
      return { state: null };
    },
    handleInfo(msg, s, ctx) {
      ctx.send(sink, msg);
      return { state: s };
    },
  };
  await rt.start(Watcher, undefined);
  rt.cast(a, { stop: "shutdown" });
  rt.cast(b, { stop: "shutdown" });
  await rt.idle();
  const got = (await rt.call(sink, "get")) as DownMessage[];
  assert.deepEqual(got.map((m) => [m.pid, m.reason]), [[dead, "noproc"], [a, "shutdown"]]);
  rt.close();
});

Deno.test("exit(pid, reason) follows OTP's rules for normal, kill and other reasons", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  // normal: ignored by a non-trapping process
  const a = await rt.start(Worker, { id: "a", log });
  rt.exit(a, "normal");
  await rt.idle();
  assert.ok(rt.isAlive(a));
  // normal: a trapping process gets an EXIT message
  const t = await rt.start(Collector, { trap: true });
  rt.exit(t, "normal");
  const [m] = (await rt.call(t, "get")) as ExitMessage[];
  assert.equal(m?.type, "EXIT");
  assert.equal(m?.reason, "normal");
  assert.equal(m?.from.id, 0);
  // kill: kills even a trapping process, reason killed, no terminate
  rt.exit(t, "kill");
  assert.equal(await rt.waitForExit(t), "noproc"); // already dead: exit is synchronous
  const t2 = await rt.start(Worker, { id: "t2", log, trapExit: true });
  const down = rt.waitForExit(t2);
  rt.exit(t2, "kill");
  assert.equal(await down, "killed");
  // another reason: kills a non-trapping process without terminate
  const down2 = rt.waitForExit(a);
  rt.exit(a, "shutdown");
  assert.equal(await down2, "shutdown");
  assert.deepEqual(log, ["start:a", "start:t2"]);
  // exit(self, normal) kills the caller
  const Self: GenServer<void, null, never, never, "go"> = {
    init: () => ({ state: null }),
    handleCast(_m, s, ctx) {
      ctx.exit(ctx.self, "normal");
      return { state: s };
    },
  };
  const s = await rt.start(Self, undefined);
  const down3 = rt.waitForExit(s);
  rt.cast(s, "go");
  assert.equal(await down3, "normal");
  rt.close();
});

Deno.test("a process that exits with kill sends its links a trappable kill, not an untrappable one", async () => {
  const { rt } = testRuntime();
  const sink = await rt.start(Collector, undefined);
  const a = await rt.start(Worker, { id: "a" });
  const trapper = await rt.start(linker(sink), { target: a, trap: true });
  const plain = await rt.start(linker(sink), { target: a, trap: false });
  const plainDown = rt.waitForExit(plain);
  rt.cast(a, { stop: "kill" }); // a exits by itself with reason kill: not exit(pid, "kill")
  assert.equal(await plainDown, "kill"); // as OTP: the link carries kill, not killed
  await rt.idle();
  assert.ok(rt.isAlive(trapper)); // trapped it
  const got = (await rt.call(sink, "get")) as ExitMessage[];
  assert.deepEqual(got.map((m) => [m.type, m.from, m.reason]), [["EXIT", a, "kill"]]);
  rt.close();
});

Deno.test("a process cannot call itself: the call rejects at once instead of deadlocking", async () => {
  const { rt } = testRuntime();
  const Selfish: GenServer<void, null, "me" | "ok", string> = {
    init: () => ({ state: null }),
    async handleCall(m, _f, s, ctx) {
      if (m === "ok") return { reply: "ok", state: s };
      const error = await ctx.call(ctx.self as Pid<"me" | "ok", string>, "ok", {
        timeoutMs: Infinity,
      })
        .then(() => "answered", (e: Error) => e.message);
      return { reply: error, state: s };
    },
  };
  const pid = await rt.start(Selfish, undefined);
  assert.match(await rt.call(pid, "me", { timeoutMs: Infinity }), /cannot call itself/);
  rt.close();
});

Deno.test("fairness: a process handles at most turnMessagesMax messages before others run", async () => {
  const clock = new ManualClock();
  const rt = new Runtime({ clock, timers: clock, report: () => {}, turnMessagesMax: 4 });
  const trace: string[] = [];
  const Tracer: GenServer<string, string, never, never, number> = {
    init: (name) => ({ state: name }),
    handleCast: (_n, name) => {
      trace.push(name);
      return { state: name };
    },
  };
  const a = await rt.start(Tracer, "a");
  const b = await rt.start(Tracer, "b");
  for (let i = 0; i < 10; i++) rt.cast(a, i);
  for (let i = 0; i < 6; i++) rt.cast(b, i);
  await rt.idle();
  assert.equal(trace.join(""), "aaaabbbbaaaabbaa");
  rt.close();
});

Deno.test("fairness: sync handlers casting to each other endlessly still let timers and I/O run", async () => {
  const rt = new Runtime({ report: () => {} });
  let timerFiredAt = -1;
  let handled = 0;
  const Pong: GenServer<void, Pid | null, never, never, Pid> = {
    init: () => ({ state: null }),
    handleCast(peer, _s, ctx) {
      if (++handled < 200_000) ctx.cast(peer, ctx.self);
      return { state: peer };
    },
  };
  const a = await rt.start(Pong, undefined);
  const b = await rt.start(Pong, undefined);
  setTimeout(() => timerFiredAt = handled, 0);
  rt.cast(a, b);
  await rt.idle();
  assert.equal(handled, 200_000);
  assert.ok(timerFiredAt >= 0 && timerFiredAt < 200_000, `timer ran after ${timerFiredAt}`);
  rt.close();
});

Deno.test("handleCall may reply and stop at once; the reply arrives before the exit", async () => {
  const { rt } = testRuntime();
  const Once: GenServer<void, null, "last", string> = {
    init: () => ({ state: null }),
    handleCall: (_m, _f, s) => ({ reply: "bye", stop: "normal", state: s }),
  };
  const pid = await rt.start(Once, undefined);
  const down = rt.waitForExit(pid);
  assert.equal(await rt.call(pid, "last"), "bye");
  assert.equal(await down, "normal");
  rt.close();
});

Deno.test("a callback result without reply/noreply/stop or without state crashes with a TypeError", async () => {
  const { rt } = testRuntime();
  const Bad: GenServer<void, null, "c", string, "k"> = {
    init: () => ({ state: null }),
    handleCall: (_m, _f, s) => ({ state: s }) as never,
    handleCast: () => ({}) as never,
  };
  const a = await rt.start(Bad, undefined);
  const err = await rt.call(a, "c").catch((e) => e); // must fail, not hang
  assert.ok(err instanceof CallExitError && err.reason instanceof TypeError, String(err));
  const BadAsync: GenServer<void, null, "c", string> = {
    init: () => ({ state: null }),
    handleCall: (_m, _f, s) => Promise.resolve({ state: s } as never),
  };
  const c = await rt.start(BadAsync, undefined);
  const err2 = await rt.call(c, "c").catch((e) => e);
  assert.ok(err2 instanceof CallExitError && err2.reason instanceof TypeError, String(err2));
  const b = await rt.start(Bad, undefined);
  const down = rt.waitForExit(b);
  rt.cast(b, "k");
  assert.ok((await down) instanceof TypeError);
  rt.close();
});

Deno.test("link to a dead process: noproc as an EXIT message when trapping, as death otherwise", async () => {
  const { rt } = testRuntime();
  const dead = await rt.start(Worker, { id: "dead" });
  await rt.stop(dead);
  const sink = await rt.start(Collector, undefined);
  await rt.start(linker(sink), { target: dead, trap: true });
  await rt.idle();
  const got = (await rt.call(sink, "get")) as ExitMessage[];
  assert.deepEqual(got.map((m) => [m.type, m.from, m.reason]), [["EXIT", dead, "noproc"]]);
  const plain = rt.spawn(linker(sink), { target: dead, trap: false });
  assert.equal(await rt.waitForExit(plain), "noproc");
  rt.close();
});

Deno.test("demonitor with flush drops a DOWN already queued", async () => {
  const { rt } = testRuntime();
  const target = await rt.start(Worker, { id: "t" });
  const Watcher: GenServer<Pid, unknown[], "flush" | "keep" | "get", unknown, never, unknown> = {
    init: () => ({ state: [] }),
    handleCall(m, _f, s, ctx) {
      if (m === "get") return { reply: s, state: s };
      const ref = ctx.monitor(target);
      ctx.exit(target, "shutdown"); // its DOWN is queued at once, behind this call
      ctx.demonitor(ref, { flush: m === "flush" });
      return { reply: null, state: s };
    },
    handleInfo: (msg, s) => ({ state: [...s, msg] }),
  };
  const w = await rt.start(Watcher, target);
  await rt.call(w, "flush");
  await rt.idle();
  assert.deepEqual(await rt.call(w, "get"), []);
  const target2 = await rt.start(Worker, { id: "t2" });
  const w2 = await rt.start(Watcher, target2);
  await rt.call(w2, "keep");
  await rt.idle();
  assert.deepEqual(((await rt.call(w2, "get")) as DownMessage[]).map((m) => m.type), ["DOWN"]);
  rt.close();
});

Deno.test("limits and arguments: timersPerProcessMax, sendAfter delay, call timeout", async () => {
  const clock = new ManualClock();
  const rt = new Runtime({ clock, timers: clock, report: () => {}, timersPerProcessMax: 2 });
  const pid = await rt.start(Worker, { id: "a" });
  rt.sendAfter(pid, "x", 10);
  rt.sendAfter(pid, "y", 10);
  assert.throws(() => rt.sendAfter(pid, "z", 10), SystemLimitError);
  assert.equal(rt.timerCount, 2);
  assert.throws(() => rt.sendAfter(pid, "z", -1), RangeError);
  await assert.rejects(rt.call(pid, "ping", { timeoutMs: 0 }), RangeError);
  await assert.rejects(rt.call(pid, "ping", { timeoutMs: NaN }), RangeError);
  rt.close();
});

Deno.test("a full mailbox: call rejects, cast and send throw MailboxFullError, nothing is queued", async () => {
  const { rt } = testRuntime();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const Busy: GenServer<void, number, "n", number, "block" | "x"> = {
    init: () => ({ state: 0 }),
    handleCall: (_m, _f, n) => ({ reply: n, state: n }),
    async handleCast(m, n) {
      if (m === "block") await gate;
      return { state: n + 1 };
    },
  };
  const pid = await rt.start(Busy, undefined, { mailboxMax: 3 });
  rt.cast(pid, "block");
  await tick(); // now blocked in the handler, mailbox empty
  rt.cast(pid, "x");
  rt.cast(pid, "x");
  rt.cast(pid, "x");
  assert.equal(rt.inspect(pid)?.mailboxLength, 3);
  assert.throws(() => rt.cast(pid, "x"), MailboxFullError);
  assert.throws(() => rt.send(pid, "x"), MailboxFullError);
  await assert.rejects(rt.call(pid, "n"), MailboxFullError);
  assert.equal(rt.inspect(pid)?.mailboxLength, 3);
  release();
  await rt.idle();
  assert.equal(await rt.call(pid, "n"), 4); // block + 3 casts, nothing else
  rt.close();
});

Deno.test("registry: unique names, lookup, removal on exit, taken names refused", async () => {
  const { rt } = testRuntime();
  const a = await rt.start(Worker, { id: "a" }, { name: "svc" });
  assert.equal(rt.whereis("svc"), a);
  await assert.rejects(rt.start(Worker, { id: "b" }, { name: "svc" }), AlreadyRegisteredError);
  rt.registry.register("svc", a); // the holder itself: a no-op
  const other = await rt.start(Worker, { id: "o" });
  assert.throws(() => rt.registry.register("svc", other), AlreadyRegisteredError);
  rt.cast(a, { crash: "x" });
  await rt.idle();
  assert.equal(rt.whereis("svc"), undefined);
  const b = await rt.start(Worker, { id: "b" }, { name: "svc" });
  assert.equal(rt.whereis("svc"), b);
  assert.equal(rt.registry.unregister("svc"), true);
  assert.equal(rt.whereis("svc"), undefined);
  rt.close();
});

Deno.test("init: a throw or stop fails start with StartError; ignore sets `ignored`", async () => {
  const { rt } = testRuntime();
  const err = await rt.start(Worker, { id: "x", initError: new Error("no disk") }).catch((e) => e);
  assert.ok(err instanceof StartError);
  assert.ok(err.reason instanceof Error && err.reason.message === "no disk");
  const Stops: GenServer<"stop" | "ignore", null> = {
    init: (how) => how === "stop" ? { stop: { shutdown: "nope" } } : { ignore: true },
  };
  const e2 = await rt.start(Stops, "stop").catch((e) => e);
  assert.ok(e2 instanceof StartError && !e2.ignored);
  assert.deepEqual(e2.reason, { shutdown: "nope" });
  const e3 = await rt.start(Stops, "ignore").catch((e) => e);
  assert.ok(e3 instanceof StartError && e3.ignored);
  assert.equal(rt.processCount, 0);
  rt.close();
});

Deno.test("terminate runs for stop and for a parent's exit signal when trapping, not otherwise", async () => {
  const { rt } = testRuntime();
  const log: string[] = [];
  const a = await rt.start(Worker, { id: "a", log });
  await rt.stop(a, "shutdown");
  const Parent: GenServer<boolean, Pid, never, never, "kill-child"> = {
    async init(trap, ctx) {
      return {
        state: await ctx.startLink(Worker, { id: trap ? "trap" : "plain", log, trapExit: trap }),
      };
    },
    handleCast(_m, child, ctx) {
      ctx.unlink(child);
      ctx.exit(child, "shutdown");
      return { state: child };
    },
  };
  for (const trap of [true, false]) {
    const p = await rt.start(Parent, trap);
    rt.cast(p, "kill-child");
    await rt.idle();
  }
  assert.deepEqual(log, ["start:a", "stop:a", "start:trap", "stop:trap", "start:plain"]);
  rt.close();
});

Deno.test("a killed process's pending code still runs but can no longer act", async () => {
  const { rt } = testRuntime();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let after: unknown = null;
  const sink = await rt.start(Collector, undefined);
  const Slow: GenServer<void, null, never, never, "go"> = {
    init: () => ({ state: null }),
    async handleCast(_m, s, ctx) {
      await gate;
      try {
        ctx.send(sink, "zombie");
      } catch (e) {
        after = e;
      }
      return { state: s };
    },
  };
  const pid = await rt.start(Slow, undefined);
  rt.cast(pid, "go");
  await tick();
  rt.exit(pid, "kill");
  release();
  await tick();
  assert.ok(after instanceof Error && /has exited/.test(after.message));
  assert.deepEqual(await rt.call(sink, "get"), []);
  rt.close();
});

Deno.test("registry: keysMax bounds the names a registry holds", async () => {
  const { rt } = testRuntime();
  const small = new Registry(rt, { keysMax: 1 });
  const a = await rt.start(Worker, { id: "a" }, { name: { registry: small, key: 1 } });
  await assert.rejects(
    rt.start(Worker, { id: "b" }, { name: { registry: small, key: 2 } }),
    SystemLimitError,
  );
  assert.equal(small.size, 1);
  await rt.stop(a);
  assert.equal(small.size, 0); // released on exit: room again
  await rt.start(Worker, { id: "c" }, { name: { registry: small, key: 2 } });
  rt.close();
});

Deno.test("bookkeeping: monitors, cancelled timers and timers to dead pids hold nothing", async () => {
  const { rt } = testRuntime();
  const target = await rt.start(Worker, { id: "t" });
  const Watcher: GenServer<Pid, null> = {
    init(pid, ctx) {
      ctx.monitor(pid);
      return { state: null };
    },
  };
  const watcher = await rt.start(Watcher, target);
  assert.equal(rt.inspect(target)?.monitoredBy, 1);
  await rt.stop(watcher);
  assert.equal(rt.inspect(target)?.monitoredBy, 0); // the watcher's monitor went with it
  const ref = rt.sendAfter(target, "x", 1000);
  assert.equal(rt.inspect(target)?.timers, 1);
  assert.equal(rt.cancelTimer(ref), 1000);
  assert.equal(rt.inspect(target)?.timers, 0);
  const dead = await rt.start(Worker, { id: "d" });
  await rt.stop(dead);
  rt.sendAfter(dead, "x", 1000);
  assert.equal(rt.timerCount, 0); // a timer to a dead pid never fires, so none is armed
  rt.close();
});

Deno.test("a failed init under startLink does not take a non-trapping parent down", async () => {
  const { rt } = testRuntime();
  const Parent: GenServer<void, null, "spawn", string> = {
    init: () => ({ state: null }),
    async handleCall(_m, _f, s, ctx) {
      const result = await ctx.startLink(Worker, { id: "c", initError: new Error("no") })
        .then(() => "started", (e: Error) => e.name);
      return { reply: result, state: s };
    },
  };
  const parent = await rt.start(Parent, undefined);
  assert.equal(await rt.call(parent, "spawn"), "StartError");
  await rt.idle();
  assert.ok(rt.isAlive(parent));
  rt.close();
});

Deno.test("events: a listener that throws is removed; the others still get every event", async () => {
  const { rt, events } = testRuntime();
  let thrown = 0;
  const error = console.error;
  console.error = () => {};
  try {
    rt.subscribe(() => {
      thrown++;
      throw new Error("bad listener");
    });
    await rt.start(Worker, { id: "a" });
    await rt.start(Worker, { id: "b" });
  } finally {
    console.error = error;
  }
  assert.equal(thrown, 1);
  assert.deepEqual(events.map((e) => e.type), ["spawn", "spawn"]);
  rt.close();
});

Deno.test("events: spawn and exit are published the moment they happen", async () => {
  const { rt, events } = testRuntime();
  const pid = await rt.start(Worker, { id: "a" });
  rt.cast(pid, { crash: "x" });
  await rt.idle();
  const mine = events.filter((e) => "pid" in e && e.pid === pid).map((e) => e.type);
  assert.deepEqual(mine, ["spawn", "exit"]);
  rt.close();
});

Deno.test("crash reports: a process that crashes is reported, one killed by a signal is not", async () => {
  const reports: RuntimeEvent[] = [];
  const rt = new Runtime({ report: (e) => reports.push(e) });
  const a = await rt.start(Worker, { id: "a" });
  const b = await rt.start(Worker, { id: "b" });
  rt.cast(a, { crash: "boom" });
  rt.exit(b, "kill");
  await rt.idle();
  assert.deepEqual(reports.map((e) => e.type === "exit" && e.pid), [a]);
  rt.close();
});

Deno.test("runtimes are independent; limits are enforced", async () => {
  const rt1 = new Runtime({ report: () => {}, processesMax: 2 });
  const rt2 = new Runtime({ report: () => {} });
  const a = await rt1.start(Worker, { id: "a" }, { name: "x" });
  const b = await rt2.start(Worker, { id: "b" }, { name: "x" });
  assert.equal(a.id, b.id);
  assert.equal(await rt1.call("x", "ping"), "pong:a");
  assert.equal(await rt2.call("x", "ping"), "pong:b");
  // A pid of one runtime addresses nothing in another, though its number is taken there.
  await assert.rejects(rt2.call(a, "ping"), NoProcessError);
  assert.equal(rt2.isAlive(a), false);
  assert.equal(rt2.whereis(a), undefined);
  assert.equal(await rt2.waitForExit(a), "noproc");
  assert.equal(await rt1.call(a, "ping"), "pong:a");
  await rt1.start(Worker, { id: "c" });
  assert.throws(() => rt1.spawn(Worker, { id: "d" }), SystemLimitError);
  assert.throws(() => new Runtime({ mailboxMax: 0 }), RangeError);
  rt1.close();
  rt2.close();
});
