/**
 * The plain Deno forms the README offers (`deno task start`, `test`, `check`, ...) work in a
 * checkout where `npm install` ran: there, a task's bare `deno` would be found in
 * node_modules/.bin (the npm package's native binary) and run by `deno task` as a script, which
 * fails at its first byte; the tasks name the binary by its path instead.
 */

import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

Deno.test("deno.json's tasks start Deno by its path, and `deno task sim` runs", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`)) as {
    tasks: Record<string, string>;
  };
  for (const [name, command] of Object.entries(config.tasks)) {
    for (const step of command.split("&&")) {
      assert.doesNotMatch(step.trim(), /^deno\b/, `task ${name} starts a bare "deno": ${step}`);
    }
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "sim", "--seeds", "2"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /2 seeds.*0 violations/s);
});
