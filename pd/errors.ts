/**
 * Errors of the placement driver that callers are expected to catch.
 *
 * @module
 */

import type { Region } from "./region.ts";

/**
 * A region heartbeat or split report carried an epoch older than PD's, or a
 * change that PD cannot reconcile with what it holds. `current` is PD's view,
 * so the caller can refresh its own.
 */
export class StaleEpochError extends Error {
  /** PD's current metadata for the region. */
  readonly current: Region;

  /**
   * Creates the instance.
   *
   * @param message What was rejected and why.
   * @param current PD's current metadata for the region.
   */
  constructor(message: string, current: Region) {
    super(message);
    this.name = "StaleEpochError";
    this.current = current;
  }
}

/** A store heartbeat or request named a store PD does not know: register it first. */
export class UnknownStoreError extends Error {
  /** The unknown store id. */
  readonly storeId: number;

  /**
   * Creates the instance.
   *
   * @param storeId The unknown store id.
   */
  constructor(storeId: number) {
    super(`Unknown store ${storeId}: register it with registerStore first`);
    this.name = "UnknownStoreError";
    this.storeId = storeId;
  }
}

/**
 * A PD metadata file failed its format or checksum check. PD refuses to start
 * on it rather than risk reusing ids or timestamps.
 */
export class PdCorruptError extends Error {
  /** The file that failed. */
  readonly path: string;

  /**
   * Creates the instance.
   *
   * @param path The file that failed.
   * @param detail What was wrong.
   */
  constructor(path: string, detail: string) {
    super(`Cannot load PD metadata ${path}: ${detail}; restore the file or the directory`);
    this.name = "PdCorruptError";
    this.path = path;
  }
}

/** Too many requests are waiting for one PD component; retry later. */
export class PdBusyError extends Error {
  /**
   * Creates the instance.
   *
   * @param what The component whose queue is full.
   * @param pendingMax Its limit.
   */
  constructor(what: string, pendingMax: number) {
    super(`PD ${what} is busy: ${pendingMax} requests already wait; retry later`);
    this.name = "PdBusyError";
  }
}

/** A request reached a PD instance after `close()`; talk to the running one. */
export class PdClosedError extends Error {
  /**
   * Creates the instance.
   *
   * @param what The component that was closed.
   */
  constructor(what: string) {
    super(`PD ${what} is closed: this instance was shut down; use the running PD`);
    this.name = "PdClosedError";
  }
}
