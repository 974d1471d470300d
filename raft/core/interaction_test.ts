import { assertEqual } from "./_assert.ts";
import { InteractionEnv, parseTranscript, renderTranscript } from "./_interaction.ts";

const dir = new URL("../testdata/", import.meta.url);
const rewrite = Deno.env.get("SPIRE_REWRITE") === "1";

const files: string[] = [];
for (const e of Deno.readDirSync(dir)) if (e.isFile && e.name.endsWith(".txt")) files.push(e.name);
files.sort();

for (const name of files) {
  Deno.test(`raft transcript ${name}`, () => {
    const path = new URL(name, dir);
    const cases = parseTranscript(Deno.readTextFileSync(path));
    const env = new InteractionEnv();
    const outputs: string[] = [];
    for (const c of cases) {
      let out: string;
      try {
        out = env.run(c.command);
      } catch (e) {
        out = `panic: ${(e as Error).message}`;
      }
      outputs.push(out === "" ? "ok" : out);
      if (!rewrite) {
        assertEqual(out === "" ? "ok" : out, c.expected, `${name}:${c.line}: ${c.command}`);
      }
    }
    if (rewrite) Deno.writeTextFileSync(path, renderTranscript(cases, outputs));
  });
}
