/**
 * Linearizability checking for register histories (put, get, compare-and-set):
 * record client events with {@link HistoryRecorder}, check them with
 * {@link checkLinearizable}, which explains a violation by a minimal set of
 * operations.
 *
 * @module
 */

export {
  formatOperation,
  type HistoryEvent,
  HistoryRecorder,
  type Operation,
  pairOperations,
  type RegisterOp,
  type RegisterResult,
  type RegisterValue,
} from "./history.ts";
export { checkLinearizable, type CheckOptions, type CheckResult } from "./checker.ts";
