/**
 * Minimal test assertions (type-checks without `@types/node`, which `node:assert` needs).
 *
 * @module
 */

/** Thrown by the assertions below. */
export class TestAssertionError extends Error {
  /** @param message what differed. */
  constructor(message: string) {
    super(message);
    this.name = "TestAssertionError";
  }
}

/** Fails unless `actual === expected` (or, for strings, shows a line diff). */
export function assertEqual<T>(actual: T, expected: T, msg = ""): void {
  if (Object.is(actual, expected)) return;
  if (typeof actual === "string" && typeof expected === "string") {
    const a = actual.split("\n");
    const e = expected.split("\n");
    const lines: string[] = [];
    for (let i = 0; i < Math.max(a.length, e.length); i++) {
      if (a[i] === e[i]) continue;
      lines.push(
        `line ${i + 1}:\n  - expected: ${e[i] ?? "<none>"}\n  + actual:   ${a[i] ?? "<none>"}`,
      );
      if (lines.length >= 5) break;
    }
    throw new TestAssertionError(`${msg}\n${lines.join("\n")}\n--- actual ---\n${actual}`);
  }
  throw new TestAssertionError(
    `${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

/** Fails unless the JSON forms of both values are equal. */
export function assertJsonEqual(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new TestAssertionError(`${msg}: expected ${e}, got ${a}`);
}

/** Fails unless `cond`. */
export function assertTrue(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new TestAssertionError(msg);
}

/** Fails unless `f` throws an instance of `cls` whose message includes `includes`. */
export function assertThrows(
  f: () => unknown,
  cls: abstract new (...args: never[]) => Error,
  includes = "",
): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof cls)) throw new TestAssertionError(`wrong error: ${String(e)}`);
    if (!e.message.includes(includes)) {
      throw new TestAssertionError(`message "${e.message}" lacks "${includes}"`);
    }
    return;
  }
  throw new TestAssertionError(`expected ${cls.name} to be thrown`);
}
