/**
 * The Spire node: the supervision tree that wires PD, the engine, Raft
 * regions, the RESP client server and admin HTTP together (standalone mode),
 * and its parts: the region state machine over the shared engine, the
 * Raft-backed storage backend, the node configuration, and the crash-test
 * durability checker.
 *
 * ```ts ignore
 * import { resolveNodeConfig, SpireNode } from "./mod.ts";
 * import { DEFAULT_TUNING } from "../tuning/mod.ts";
 * const { config } = resolveNodeConfig({ overrides: { dataDir: "./data", port: 0, adminPort: 0 } });
 * const node = await SpireNode.start({ config, tuning: DEFAULT_TUNING });
 * console.log(`RESP on ${node.clientPort}`);
 * await node.stop();
 * ```
 *
 * @module
 */

export { regionsView, SpireNode, type SpireNodeOptions } from "./app.ts";
export {
  DEFAULT_NODE_CONFIG,
  NODE_FLAGS,
  NODE_YAML_SECTIONS,
  type NodeConfig,
  NodeConfigError,
  type NodeConfigProvenance,
  resolveNodeConfig,
  type ResolveNodeConfigOptions,
} from "./config.ts";
export {
  ConnectionServer,
  type ConnectionServerOptions,
  type ConnectionServerStats,
} from "./connection_server.ts";
export { type EngineCall, EngineServer } from "./engine_process.ts";
export {
  type NodeMetricsHooks,
  type NodeMetricsSources,
  registerNodeMetrics,
} from "./node_metrics.ts";
export {
  NATIVE_KEY_BYTES_MAX,
  NativeGets,
  type NativeGetsCall,
  type NativeGetsResult,
  NativeStop,
} from "./native_gets.ts";
export { RaftBackend, type RaftBackendOptions, RegionUnavailableError } from "./raft_backend.ts";
export {
  appliedIndexKey,
  decodeRegion,
  encodeRegion,
  engineRangeOf,
  inRegion,
  META_PREFIX,
  NODE_IDENTITY_KEY,
  REGION_META_RANGE,
  regionStateKey,
} from "./region_meta.ts";
export {
  type RegionPeerArgs,
  RegionPeerServer,
  regionPeerSpec,
  type RegionReply,
  type RegionRequest,
} from "./region_peer_process.ts";
export {
  decodeRegionCommand,
  encodeReadRequest,
  encodeRegionCommand,
  type RegionApplyStats,
  type RegionCommand,
  type RegionPlant,
  type RegionResult,
  RegionStateMachine,
  type RegionStateMachineOptions,
} from "./region_state_machine.ts";
export {
  EngineUnavailableError,
  NAMES,
  type NodeObservers,
  type NodePlant,
  NodeServices,
  type RegionRaftInfo,
} from "./services.ts";
export { initialSplitKeys, type StoreCall, StoreServer } from "./store.ts";
export {
  checkDurability,
  type DurabilityViolation,
  WriteHistory,
  type WriteIntent,
  type WriteRecord,
} from "./write_history.ts";
export { AdminServer, type AdminServerOptions, DEFAULT_ADMIN_PORT } from "./admin_http.ts";
export {
  ClientConnection,
  ClientPort,
  type ClientPortOptions,
  ClientServer,
  type ClientServerOptions,
  type ClientServerStats,
  MAX_CLIENTS_REPLY,
  refuseConnection,
} from "./client_server.ts";
export { registerEngineMetrics } from "./metrics.ts";
