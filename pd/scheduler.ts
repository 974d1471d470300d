/**
 * Scheduling decisions, pure: given a region, its reported size and the state
 * of the stores, decide whether it needs a replica repaired, a split, or its
 * leader moved. No ids are allocated and nothing is stored here; the placement
 * driver turns a {@link Decision} into an operator.
 *
 * @module
 */

import type { Peer, Region } from "./region.ts";
import type { StoreState } from "./store.ts";

const MIB = 1024 * 1024;

/** Thresholds that drive the decisions. */
export interface ScheduleConfig {
  /** Voters each region should have (TiKV PD max-replicas: 3). */
  readonly replicas: number;
  /** Approximate size at which a region is split (TiKV region-max-size: 144 MiB). */
  readonly regionMaxSizeBytes: number;
  /** Size of the part split off (TiKV region-split-size: 96 MiB). */
  readonly regionSplitSizeBytes: number;
  /** Approximate key count at which a region is split (TiKV region-max-keys: 1,440,000). */
  readonly regionMaxKeys: number;
  /** Key count of the part split off (TiKV region-split-keys: 960,000). */
  readonly regionSplitKeys: number;
  /**
   * Minimum difference between the leader counts of the leader's store and the
   * least-loaded store holding a voter of the region before a leader moves.
   * At least 2, so that a move never just swaps the imbalance.
   */
  readonly leaderBalanceGapMin: number;
}

/** TiKV's defaults. */
export const DEFAULT_SCHEDULE_CONFIG: ScheduleConfig = {
  replicas: 3,
  regionMaxSizeBytes: 144 * MIB,
  regionSplitSizeBytes: 96 * MIB,
  regionMaxKeys: 1_440_000,
  regionSplitKeys: 960_000,
  leaderBalanceGapMin: 2,
};

/**
 * Checks the relationships between thresholds.
 *
 * @param c The configuration.
 * @throws {RangeError} When a value is out of range or a split size exceeds its maximum.
 */
export function validateScheduleConfig(c: ScheduleConfig): void {
  const positive = [
    "replicas",
    "regionMaxSizeBytes",
    "regionSplitSizeBytes",
    "regionMaxKeys",
    "regionSplitKeys",
  ] as const;
  for (const k of positive) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1) {
      throw new RangeError(`Invalid PD schedule config: ${k} ${c[k]} is not a positive integer`);
    }
  }
  if (c.regionSplitSizeBytes > c.regionMaxSizeBytes) {
    throw new RangeError(
      `Invalid PD schedule config: regionSplitSizeBytes ${c.regionSplitSizeBytes} exceeds ` +
        `regionMaxSizeBytes ${c.regionMaxSizeBytes}; it must be at most the maximum`,
    );
  }
  if (c.regionSplitKeys > c.regionMaxKeys) {
    throw new RangeError(
      `Invalid PD schedule config: regionSplitKeys ${c.regionSplitKeys} exceeds regionMaxKeys ` +
        `${c.regionMaxKeys}; it must be at most the maximum`,
    );
  }
  if (!Number.isSafeInteger(c.leaderBalanceGapMin) || c.leaderBalanceGapMin < 2) {
    throw new RangeError(
      `Invalid PD schedule config: leaderBalanceGapMin ${c.leaderBalanceGapMin} is below 2; ` +
        `a smaller gap would move leaders back and forth`,
    );
  }
}

/** Approximate size of a region as its leader last reported it. */
export interface RegionStats {
  /** Approximate bytes of keys and values in the range. */
  readonly approximateSizeBytes: number;
  /** Approximate number of keys in the range. */
  readonly approximateKeys: number;
}

/** What the scheduler needs to know about the cluster. */
export interface ClusterView {
  /** Liveness of a store; unknown stores are down. */
  storeState(storeId: number): StoreState;
  /** Ids of every registered store. */
  storeIds(): readonly number[];
  /** Replicas currently placed on the store. */
  regionCount(storeId: number): number;
  /** Leaders currently on the store (including leader moves under way). */
  leaderCount(storeId: number): number;
}

/** A decision about one region, before PD attaches ids and the epoch. */
export type Decision =
  | { readonly kind: "add-peer"; readonly storeId: number; readonly reason: string }
  | { readonly kind: "remove-peer"; readonly peer: Peer; readonly reason: string }
  | {
    readonly kind: "transfer-leader";
    readonly from: Peer;
    readonly to: Peer;
    readonly reason: string;
  }
  | {
    readonly kind: "split";
    readonly reason: "size" | "keys";
    readonly splitSizeBytes: number;
    readonly splitKeys: number;
  };

/**
 * Replica repair: adds a voter when the region has fewer healthy voters than
 * `replicas` (on the up store without a replica and with the fewest regions),
 * then removes voters on down stores, then removes surplus voters.
 * Adding comes before removing so the data never has fewer healthy copies.
 *
 * @param region The region.
 * @param config Thresholds (uses `replicas`).
 * @param view The cluster.
 * @returns A decision, or undefined when the replicas are fine.
 * @example
 * ```ts
 * import { checkReplicas, DEFAULT_SCHEDULE_CONFIG } from "./scheduler.ts";
 * const view = {
 *   storeState: () => "up" as const, storeIds: () => [1, 2, 3],
 *   regionCount: () => 0, leaderCount: () => 0,
 * };
 * const region = {
 *   id: 9, startKey: new Uint8Array(), endKey: new Uint8Array(),
 *   epoch: { confVer: 1, version: 1 }, peers: [{ id: 10, storeId: 1, role: "voter" as const }],
 * };
 * console.assert(checkReplicas(region, DEFAULT_SCHEDULE_CONFIG, view)?.kind === "add-peer");
 * ```
 */
export function checkReplicas(
  region: Region,
  config: ScheduleConfig,
  view: ClusterView,
): Decision | undefined {
  const voters = region.peers.filter((p) => p.role === "voter");
  const down = region.peers.filter((p) => view.storeState(p.storeId) === "down");
  const healthyVoters = voters.filter((p) => view.storeState(p.storeId) !== "down");
  if (healthyVoters.length < config.replicas) {
    const used = new Set(region.peers.map((p) => p.storeId));
    const target = view.storeIds()
      .filter((id) => !used.has(id) && view.storeState(id) === "up")
      .sort((a, b) => view.regionCount(a) - view.regionCount(b) || a - b)[0];
    if (target !== undefined) {
      return {
        kind: "add-peer",
        storeId: target,
        reason: `${healthyVoters.length} healthy voters, want ${config.replicas}`,
      };
    }
  }
  const deadPeer = down[0];
  if (deadPeer !== undefined) {
    return { kind: "remove-peer", peer: deadPeer, reason: `store ${deadPeer.storeId} is down` };
  }
  if (voters.length > config.replicas) {
    const surplus = voters
      .filter((p) => p.id !== region.leader?.id)
      .sort((a, b) => view.regionCount(b.storeId) - view.regionCount(a.storeId) || b.id - a.id)[0];
    if (surplus !== undefined) {
      return {
        kind: "remove-peer",
        peer: surplus,
        reason: `${voters.length} voters, want ${config.replicas}`,
      };
    }
  }
  return undefined;
}

/**
 * Split decision: a region whose approximate size or key count reached its
 * maximum is split. PD decides when; the store picks the split key, about
 * `splitSizeBytes` / `splitKeys` into the range.
 *
 * @param stats The region's reported size.
 * @param config Thresholds.
 * @returns A split decision, or undefined.
 * @example
 * ```ts
 * import { checkSplit, DEFAULT_SCHEDULE_CONFIG } from "./scheduler.ts";
 * const d = checkSplit({ approximateSizeBytes: 150 * 2 ** 20, approximateKeys: 10 }, DEFAULT_SCHEDULE_CONFIG);
 * console.assert(d?.kind === "split" && d.reason === "size");
 * ```
 */
export function checkSplit(stats: RegionStats, config: ScheduleConfig): Decision | undefined {
  const base = { splitSizeBytes: config.regionSplitSizeBytes, splitKeys: config.regionSplitKeys };
  if (stats.approximateSizeBytes >= config.regionMaxSizeBytes) {
    return { kind: "split", reason: "size", ...base };
  }
  if (stats.approximateKeys >= config.regionMaxKeys) {
    return { kind: "split", reason: "keys", ...base };
  }
  return undefined;
}

/**
 * Leader balancing: moves the region's leader to the voter on an up store with
 * the fewest leaders, when the leader's store has at least
 * `leaderBalanceGapMin` more.
 *
 * @param region The region (its `leader` must be known for a move).
 * @param config Thresholds (uses `leaderBalanceGapMin`).
 * @param view The cluster.
 * @returns A transfer decision, or undefined.
 */
export function checkLeaderBalance(
  region: Region,
  config: ScheduleConfig,
  view: ClusterView,
): Decision | undefined {
  const leader = region.leader;
  if (leader === undefined) return undefined;
  const from = view.leaderCount(leader.storeId);
  const target = region.peers
    .filter((p) => p.role === "voter" && p.id !== leader.id && view.storeState(p.storeId) === "up")
    .sort((a, b) => view.leaderCount(a.storeId) - view.leaderCount(b.storeId) || a.id - b.id)[0];
  if (target === undefined) return undefined;
  const to = view.leaderCount(target.storeId);
  if (from - to < config.leaderBalanceGapMin) return undefined;
  return {
    kind: "transfer-leader",
    from: leader,
    to: target,
    reason: `store ${leader.storeId} leads ${from}, store ${target.storeId} leads ${to}`,
  };
}

/**
 * Every check in priority order (replica repair, split, leader balance); the
 * first that fires wins, so one region has one change in flight at a time.
 *
 * @param region The region.
 * @param stats Its reported size.
 * @param config Thresholds.
 * @param view The cluster.
 * @returns The decision, or undefined.
 */
export function decide(
  region: Region,
  stats: RegionStats,
  config: ScheduleConfig,
  view: ClusterView,
): Decision | undefined {
  return checkReplicas(region, config, view) ?? checkSplit(stats, config) ??
    checkLeaderBalance(region, config, view);
}
