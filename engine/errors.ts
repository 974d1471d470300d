/**
 * Errors that callers of the engine catch.
 *
 * @module
 */

/**
 * RocksDB reported a failure. `status` is RocksDB's own status text (for
 * example `IO error: While lock file: /data/LOCK: Resource temporarily
 * unavailable`) and `code` its leading kind (`IO error`, `Corruption`,
 * `Invalid argument`, ...).
 */
export class EngineError extends Error {
  /** RocksDB's status text, verbatim. */
  readonly status: string;
  /** The kind of status: the text before the first colon. */
  readonly code: string;

  /**
   * @param operation what failed, e.g. `Cannot open engine at "/x"`
   * @param status RocksDB's status text
   */
  constructor(operation: string, status: string) {
    super(`${operation}: ${status}`);
    this.name = "EngineError";
    this.status = status;
    const colon = status.indexOf(":");
    this.code = colon === -1 ? status : status.slice(0, colon);
  }
}

/** A method was called on an engine (or a snapshot or scan of it) that is closed. */
export class EngineClosedError extends Error {
  /**
   * @param operation the method that was called, e.g. `get`
   */
  constructor(operation: string) {
    super(`Cannot ${operation}: the engine is closed; open it again with Engine.open`);
    this.name = "EngineClosedError";
  }
}

/** Too many writes are queued behind the one being synced; retry later. */
export class EngineOverloadedError extends Error {
  /**
   * @param detail what limit was reached
   */
  constructor(detail: string) {
    super(`Cannot queue write: ${detail}`);
    this.name = "EngineOverloadedError";
  }
}
