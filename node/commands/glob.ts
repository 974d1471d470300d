/**
 * Redis's glob-style pattern matching (stringmatchlen) over bytes: `*`, `?`,
 * `[abc]`, `[^a]`, `[a-z]` and `\` escapes.
 *
 * @module
 */

/**
 * Matches bytes against a Redis glob pattern.
 * @param pattern the pattern
 * @param text the bytes to test
 * @param nocase compare ASCII letters without case
 * @returns true when the whole text matches
 * @example
 * ```ts
 * import { globMatch } from "./glob.ts";
 * const e = new TextEncoder();
 * console.assert(globMatch(e.encode("user:*"), e.encode("user:42")));
 * console.assert(!globMatch(e.encode("h[^e]llo"), e.encode("hello")));
 * ```
 */
export function globMatch(pattern: Uint8Array, text: Uint8Array, nocase = false): boolean {
  return matchAt(pattern, 0, text, 0, nocase, { steps: 0 });
}

const STEPS_MAX = 1_000_000;

function lower(b: number, nocase: boolean): number {
  return nocase && b >= 65 && b <= 90 ? b + 32 : b;
}

function matchAt(
  p: Uint8Array,
  pi: number,
  s: Uint8Array,
  si: number,
  nocase: boolean,
  budget: { steps: number },
): boolean {
  while (pi < p.length) {
    // Pathological patterns (many stars) are cut off instead of taking forever.
    if (++budget.steps > STEPS_MAX) return false;
    const c = p[pi]!;
    if (c === 42 /* * */) {
      while (p[pi + 1] === 42) pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) {
        if (matchAt(p, pi + 1, s, k, nocase, budget)) return true;
        if (budget.steps > STEPS_MAX) return false;
      }
      return false;
    }
    if (si >= s.length) return false;
    if (c === 63 /* ? */) {
      pi++;
      si++;
      continue;
    }
    if (c === 91 /* [ */) {
      pi++;
      const not = p[pi] === 94; /* ^ */
      if (not) pi++;
      let matched = false;
      const ch = lower(s[si]!, nocase);
      for (;;) {
        if (pi >= p.length) {
          pi--; // Unterminated class: Redis treats the end as closing it.
          break;
        }
        const pc = p[pi]!;
        if (pc === 92 /* \ */ && pi + 2 < p.length) {
          pi++;
          if (lower(p[pi]!, nocase) === ch) matched = true;
        } else if (pc === 93 /* ] */) {
          break;
        } else if (pi + 2 < p.length && p[pi + 1] === 45 /* - */) {
          let a = lower(pc, nocase);
          let b = lower(p[pi + 2]!, nocase);
          if (a > b) [a, b] = [b, a];
          if (ch >= a && ch <= b) matched = true;
          pi += 2;
        } else if (lower(pc, nocase) === ch) {
          matched = true;
        }
        pi++;
      }
      if (not) matched = !matched;
      if (!matched) return false;
      pi++;
      si++;
      continue;
    }
    if (c === 92 /* \ */ && pi + 1 < p.length) pi++;
    if (lower(p[pi]!, nocase) !== lower(s[si]!, nocase)) return false;
    pi++;
    si++;
  }
  return si === s.length;
}
