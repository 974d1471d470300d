/**
 * Redis command semantics over Spire's engine: the key/value layout
 * (`kv_model`), write commands evaluated deterministically at apply time
 * (`write_ops`), the storage interface and its local implementation
 * (`backend`), the command table and the executor.
 *
 * @module
 */

export {
  decodeValue,
  encodeValue,
  engineKeyOf,
  EXPIRE_AT_MS_MAX,
  isExpired,
  KEY_BYTES_MAX,
  liveValue,
  type StoredValue,
  USER_KEY_PREFIX,
  USER_KEY_RANGE,
  userKeyOf,
  VALUE_BYTES_MAX,
} from "./kv_model.ts";
export {
  type ApplyResult,
  applyWrite,
  BATCHABLE_WRITE_OPS,
  decodeWriteCommand,
  encodeWriteCommand,
  type EngineOp,
  type Expiry,
  type StateReader,
  WRITE_COMMAND_BYTES_MAX,
  type WriteCommand,
  WriteCommandDecodeError,
  writeCommandKeys,
} from "./write_ops.ts";
export {
  BackendClosedError,
  type KeyPage,
  type KvBackend,
  LocalBackend,
  type LocalBackendOptions,
  type RangeScanResult,
  type StoredEntry,
} from "./backend.ts";
export {
  type EngineLike,
  type KeyValue,
  MemoryEngine,
  type ScanBatch,
  type ScanOptions,
} from "./memory_engine.ts";
export { arityOk, type CommandSpec, commandTable } from "./command_table.ts";
export {
  CommandExecutor,
  type ExecutorOptions,
  type PlainSource,
  type Session,
} from "./executor.ts";
export { globMatch } from "./glob.ts";
export {
  type RedisProcess,
  startRedisServer,
  startTestServer,
  type TestServer,
} from "./testing.ts";
