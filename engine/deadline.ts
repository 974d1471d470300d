/**
 * Deadlines kept in values: where a value says when it expires, and the rule
 * that `Engine.scanExpired` applies (natively, and here in TypeScript for
 * engines without the helpers).
 *
 * @module
 */

/**
 * Where a value keeps its deadline, for `Engine.scanExpired`: a flags
 * byte, and a big-endian signed 64-bit deadline present when a flag is set.
 */
export interface DeadlineLayout {
  /** Offset of the flags byte in the value. */
  readonly flagOffset: number;
  /** The bit(s) of the flags byte that say the deadline is present (1-255). */
  readonly flagMask: number;
  /** Offset of the deadline in the value. */
  readonly deadlineOffset: number;
}

/** Offsets past this are refused: a deadline sits in a value's header. */
const DEADLINE_OFFSET_MAX = 1024;

/**
 * Checks a deadline layout.
 * @param layout the layout
 * @throws {RangeError} for offsets or a mask out of range
 */
export function checkLayout(layout: DeadlineLayout): void {
  const { flagOffset, flagMask, deadlineOffset } = layout ?? {};
  for (
    const [name, v, max] of [
      ["flagOffset", flagOffset, DEADLINE_OFFSET_MAX],
      ["flagMask", flagMask, 255],
      ["deadlineOffset", deadlineOffset, DEADLINE_OFFSET_MAX],
    ] as const
  ) {
    if (!Number.isSafeInteger(v) || v < (name === "flagMask" ? 1 : 0) || v > max) {
      throw new RangeError(
        `Invalid layout.${name}: ${v}; an integer from ${
          name === "flagMask" ? 1 : 0
        } to ${max} is allowed`,
      );
    }
  }
}

/**
 * Checks a deadline layout and the time deadlines are compared with.
 * @param layout the layout
 * @param now the time
 * @param what how the caller names `now`, for the message
 * @throws {RangeError} for a bad layout; {@link TypeError} for a `now` that is not a number
 */
export function checkDeadlines(layout: DeadlineLayout, now: number, what: string): void {
  checkLayout(layout);
  if (typeof now !== "number" || Number.isNaN(now)) {
    throw new TypeError(`Invalid ${what}: ${now}; a number is required`);
  }
}

/**
 * Whether a value holds a deadline below `now`: `Engine.scanExpired`'s
 * rule (spire_iter_expired's, in TypeScript), for engines without it.
 * @param head the value, or at least its first `layout.deadlineOffset + 8` bytes
 * @param layout where the deadline is
 * @param now the time to compare with
 * @param length the whole value's length (default: `head.length`)
 * @returns true when the flag is set and the deadline is below `now`
 * @example
 * ```ts
 * import { deadlinePassed } from "./deadline.ts";
 * const v = new Uint8Array(10);
 * v[1] = 1;
 * new DataView(v.buffer).setBigInt64(2, 5n);
 * const layout = { flagOffset: 1, flagMask: 1, deadlineOffset: 2 };
 * console.assert(deadlinePassed(v, layout, 6) && !deadlinePassed(v, layout, 5));
 * ```
 */
export function deadlinePassed(
  head: Uint8Array,
  layout: DeadlineLayout,
  now: number,
  length: number = head.length,
): boolean {
  const deadline = readDeadline(head, layout, length);
  return deadline !== undefined && deadline < now;
}

/**
 * A value's deadline, if it holds one (the flag is set and the value is long enough).
 * @param head the value, or at least its first `layout.deadlineOffset + 8` bytes
 * @param layout where the deadline is
 * @param length the whole value's length (default: `head.length`)
 * @returns the deadline, or undefined
 */
export function readDeadline(
  head: Uint8Array,
  layout: DeadlineLayout,
  length: number = head.length,
): number | undefined {
  const { flagOffset, flagMask, deadlineOffset } = layout;
  if (length <= flagOffset || (head[flagOffset]! & flagMask) === 0) return undefined;
  if (length < deadlineOffset + 8) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return Number(view.getBigInt64(deadlineOffset));
}

/** What `Engine.measureRange` counted. */
export interface RangeMeasure {
  /** Keys in the range. */
  keys: number;
  /** Their key and value bytes. */
  bytes: number;
  /** Keys whose value holds a deadline (0 when no layout was given). */
  deadlines: number;
  /** Of those, the keys whose deadline is not below `now`. */
  pending: number;
  /** The sum of `deadline - now` over the pending ones. */
  pendingSum: number;
}

/**
 * Adds one row to a measure (the rule of spire_iter_measure, in TypeScript).
 * @param m the measure
 * @param head the row's value, or at least its first `layout.deadlineOffset + 8` bytes
 * @param rowBytes the row's key and value bytes
 * @param valueLength the value's whole length
 * @param deadlines the layout and the time, or undefined to count no deadlines
 */
export function measureRow(
  m: RangeMeasure,
  head: Uint8Array,
  rowBytes: number,
  valueLength: number,
  deadlines: { readonly layout: DeadlineLayout; readonly now: number } | undefined,
): void {
  m.keys++;
  m.bytes += rowBytes;
  if (deadlines === undefined) return;
  const deadline = readDeadline(head, deadlines.layout, valueLength);
  if (deadline === undefined) return;
  m.deadlines++;
  if (deadline < deadlines.now) return;
  m.pending++;
  m.pendingSum += deadline - deadlines.now;
}
