/**
 * `CLIENT HELP`, `CONFIG HELP` and `COMMAND HELP`: the unknown-subcommand error sends the user
 * there ("Try CLIENT HELP."), so each must answer, listing exactly the subcommands this server
 * has.
 */
import assert from "node:assert/strict";
import { RespClient } from "../resp/client.ts";
import type { Reply } from "../resp/reply.ts";
import { commandTable } from "./command_table.ts";
import { startTestServer } from "./testing.ts";

function lines(r: Reply): string[] {
  assert.equal(r.kind, "array", `HELP replied ${JSON.stringify(r)}`);
  return r.items!.map((item) => {
    assert.equal(item.kind, "simple", "each HELP line is a status reply, as in Redis");
    return item.kind === "simple" ? item.value : "";
  });
}

Deno.test("each container command's HELP, which the unknown-subcommand error points to, lists its subcommands", async () => {
  const server = startTestServer();
  const client = await RespClient.connect({ port: server.port });
  try {
    for (const spec of commandTable().values()) {
      if (spec.subcommands === undefined) continue;
      const name = spec.name.toUpperCase();
      const refused = await client.call([name, "NO-SUCH-SUBCOMMAND"]);
      assert.ok(refused.kind === "error", `${name} NO-SUCH-SUBCOMMAND replied ${refused.kind}`);
      assert.match(refused.message, new RegExp(`Try ${name} HELP\\.$`));

      const help = lines(await client.call([name, "help"]));
      assert.equal(help[0], `${name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`);
      const listed = help.slice(1).filter((l) => !l.startsWith(" ")).map((l) => l.split(" ")[0]);
      const expected = spec.subcommands.map((s) =>
        s.name.slice(spec.name.length + 1).toUpperCase()
      );
      assert.deepEqual([...listed].sort(), [...expected].sort());
      assert.deepEqual(help.slice(-2), ["HELP", "    Print this help."]);
      assert.equal(help.length, 1 + 2 * expected.length, "one summary line under each name");

      const extra = await client.call([name, "HELP", "x"]);
      assert.deepEqual(extra, {
        kind: "error",
        message: `ERR wrong number of arguments for '${spec.name}|help' command`,
      });
    }
  } finally {
    client.close();
    await server.stop();
  }
});
