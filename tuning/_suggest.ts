/** Edit distance (insertions, deletions, substitutions), for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost,
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidate closest to `name`. A candidate that starts with `name` or that
 * `name` starts with wins over edit distance, so that a shortened variable
 * (SPIRE_ROCKSDB_BLOOM_BITS) points at the full one (..._BLOOM_BITS_PER_KEY).
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  const upper = name.toUpperCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toUpperCase();
    const prefixRelated = c.startsWith(upper) || upper.startsWith(c);
    const score = editDistance(upper, c) - (prefixRelated ? 1000 : 0);
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}
