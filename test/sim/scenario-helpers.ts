/**
 * Small helpers shared by the snapshot and membership scenarios: who votes as a node sees it, the one
 * state machine a group of nodes must agree on, and a leader agreed by the members only (spares that were
 * never added hear from no leader, so SimCluster.agreedLeader never holds while they run).
 */
import { expect } from "vitest";
import { votersOf } from "../../src/raft/membership.js";
import { EntryType, Role, type NodeId } from "../../src/raft/types.js";
import type { SimCluster } from "./cluster.js";

/** The voters of the membership in force on `id` (log-time: its newest Membership entry). */
export function votersSeenBy(cluster: SimCluster, id: NodeId): NodeId[] {
  return votersOf(cluster.status(id).membership);
}

/** The learners of the membership in force on `id`. */
export function learnersSeenBy(cluster: SimCluster, id: NodeId): NodeId[] {
  return cluster.status(id).membership.members.filter((member) => !member.voter).map((member) => member.id);
}

/** Whether `id` has applied the membership it uses: no change in its log is still pending. */
export function membershipApplied(cluster: SimCluster, id: NodeId): boolean {
  const core = cluster.node(id).raft();
  const { firstIndex, lastIndex, appliedIndex } = core.status();
  for (let index = lastIndex; index >= firstIndex; index--) {
    if (core.entry(index)?.type === EntryType.Membership) return appliedIndex >= index;
  }
  return true; // the membership in force came with the log start, which is applied
}

/** The payloads every node in `ids` applied, which must be one and the same list; returns it. */
export function agreedState(cluster: SimCluster, ids: readonly NodeId[]): readonly string[] {
  const states = ids.map((id) => cluster.node(id).applied());
  for (const state of states) expect(state).toEqual(states[0]);
  return states[0]!;
}

/** Runs until every live node of `ids` follows one leader (one of them) in one term; returns it. */
export function waitLeaderAmong(cluster: SimCluster, ids: readonly NodeId[], maxTicks = 200): NodeId {
  const agreed = (): NodeId | null => {
    const live = ids.filter((id) => cluster.node(id).alive);
    const leader = live.find((id) => cluster.status(id).role === Role.Leader);
    if (leader === undefined) return null;
    const term = cluster.status(leader).term;
    return live.every((id) => cluster.status(id).leader === leader && cluster.status(id).term === term) ? leader : null;
  };
  cluster.runUntil(() => agreed() !== null, maxTicks, `one leader followed by every live node of ${ids.join(",")}`);
  return agreed()!;
}
