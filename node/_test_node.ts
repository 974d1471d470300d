/**
 * Helpers shared by tests that run a node in this process (private to the tests): a node on a
 * fresh temporary directory, and a hook on the calls its processes make through the runtime (a
 * region's proposals among them), to hold or count them.
 *
 * @module
 */

import { SpireNode } from "./app.ts";
import { type NodeConfig, resolveNodeConfig } from "./config.ts";
import type { NodePlant } from "./services.ts";
import { TEST_NODE_TUNING } from "./testing.ts";

/** What {@link withTestNode} starts: YAML sections and settings over the defaults. */
export interface TestNodeOptions {
  /** Prefix of the temporary data directory. */
  readonly prefix: string;
  /** YAML sections, as a config file would give them. */
  readonly sections?: Readonly<Record<string, unknown>>;
  /** Settings (the data directory and both ports are filled in). */
  readonly overrides?: Partial<NodeConfig>;
  /** Planted bugs the node runs with. */
  readonly plants?: readonly NodePlant[];
}

/**
 * Starts a node with {@link TEST_NODE_TUNING} on a fresh temporary directory (ports picked
 * free), runs `fn`, then stops the node and removes the directory, whatever `fn` did.
 */
export async function withTestNode(
  options: TestNodeOptions,
  fn: (node: SpireNode, config: NodeConfig) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: options.prefix });
  try {
    const { config } = resolveNodeConfig({
      ...(options.sections === undefined ? {} : { sections: options.sections }),
      overrides: { ...options.overrides, dataDir, port: 0, adminPort: 0 },
    });
    const node = await SpireNode.start({
      config,
      tuning: TEST_NODE_TUNING,
      report: () => {},
      ...(options.plants === undefined ? {} : { plants: options.plants }),
    });
    try {
      await fn(node, config);
    } finally {
      await node.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** A call a node's process makes through the runtime: the callee's name and the request. */
export interface RuntimeCall {
  readonly name: string;
  readonly req: { readonly op: string; readonly command?: Uint8Array };
}

/** Makes the call (the runtime's own `call`, with the caller's options). */
export type CallNext = () => Promise<unknown>;

/**
 * Routes every call the node's processes make through the runtime to `hook`, which decides when
 * (or whether) the call goes on by calling `next`.
 * @returns the runtime's own `call`, for calls the test makes past the hook
 */
export function hookCalls(
  node: SpireNode,
  hook: (call: RuntimeCall, next: CallNext) => Promise<unknown>,
): (name: string, req: RuntimeCall["req"], opts: unknown) => Promise<unknown> {
  const runtime = node.services.runtime as unknown as {
    call(name: string, req: RuntimeCall["req"], opts: unknown): Promise<unknown>;
  };
  const call = runtime.call.bind(runtime);
  runtime.call = (name, req, opts) => hook({ name, req }, () => call(name, req, opts));
  return call;
}

/**
 * A small seeded generator (xorshift32) of integers below `n`, so that a test's random choices
 * replay.
 * @param seed any integer (0 is taken as 1)
 * @returns the generator
 */
export function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
