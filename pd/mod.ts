/**
 * The placement driver (PD): store registry and liveness, region metadata and
 * routing, split decisions and split reports, replica repair and leader
 * balancing operators, a timestamp oracle and an id allocator, persisted
 * crash-safely under `<data-dir>/pd/`.
 *
 * The decision logic ({@link RegionMap}, the `check*` functions, {@link Tso},
 * {@link IdAllocator}) is pure and separately usable; {@link PlacementDriver}
 * combines it with persistence.
 *
 * ```ts
 * import { MemoryFileSystem, PlacementDriver } from "./mod.ts";
 * const pd = await PlacementDriver.open({ dir: "/data/pd", fs: new MemoryFileSystem() });
 * const store = await pd.allocId();
 * await pd.registerStore({ id: store, address: "127.0.0.1:20160" });
 * await pd.bootstrap({ storeIds: [store] });
 * const ts = await pd.getTs();
 * console.assert(ts.count === 1);
 * ```
 *
 * @module
 */

export {
  epochEqual,
  isStaleEpoch,
  type Peer,
  type PeerRole,
  type Region,
  regionContains,
  type RegionEpoch,
  RegionMap,
  splitRegionMeta,
  validateRegion,
} from "./region.ts";
export {
  DEFAULT_STORE_LIVENESS,
  type StoreInfo,
  type StoreLivenessConfig,
  type StoreMeta,
  StoreRegistry,
  type StoreState,
  storeState,
  type StoreStats,
} from "./store.ts";
export {
  checkLeaderBalance,
  checkReplicas,
  checkSplit,
  type ClusterView,
  decide,
  type Decision,
  DEFAULT_SCHEDULE_CONFIG,
  type RegionStats,
  type ScheduleConfig,
  validateScheduleConfig,
} from "./scheduler.ts";
export {
  composeTs,
  parseTs,
  type TimestampRange,
  Tso,
  TSO_LOGICAL_BITS,
  TSO_LOGICAL_MAX,
  TSO_PHYSICAL_BITS,
  TSO_PHYSICAL_MAX,
  type TsoOptions,
} from "./tso.ts";
export { IdAllocator, type IdAllocatorOptions } from "./id_allocator.ts";
export {
  DenoFileSystem,
  MemoryFileSystem,
  type MemoryFileSystemOptions,
  type PdFileSystem,
  SimulatedCrashError,
} from "./fs.ts";
export {
  decodeMeta,
  encodeMeta,
  META_BODY_BYTES_MAX,
  META_FORMAT_VERSION,
  writeFileAtomic,
} from "./meta_file.ts";
export { type PdPersistedState, PdStorage } from "./storage.ts";
export {
  PdBusyError,
  PdClosedError,
  PdCorruptError,
  StaleEpochError,
  UnknownStoreError,
} from "./errors.ts";
export {
  type BootstrapOptions,
  type Operator,
  type PdStats,
  PlacementDriver,
  type PlacementDriverOptions,
  type RegionHeartbeat,
  type RegionHeartbeatResponse,
  type SplitIds,
} from "./placement_driver.ts";
export {
  pdChildSpec,
  PdClient,
  type PdFailure,
  type PdReply,
  type PdRequest,
  PdServer,
  type PdServerArgs,
  pdServerArgs,
  type PdServerState,
} from "./pd_server.ts";
