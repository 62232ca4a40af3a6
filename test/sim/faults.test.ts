/**
 * Fault scenarios: an unreliable network, churn, one-way links and crashes inside the driver's Ready
 * handling. Besides the checker's step-by-step safety checks, each ends by healing everything and
 * demanding that every acknowledged write is applied on every node.
 */
import { describe, expect, test } from "vitest";
import { Role, type NodeId } from "../../src/raft/types.js";
import { isProposal } from "./payload.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

/** Heals the network, restarts every node and waits until a fresh proposal is applied everywhere. */
function settle(cluster: SimCluster): void {
  cluster.midReadyCrashRate = 0;
  cluster.heal();
  cluster.setNetwork({ lossRate: 0, dupRate: 0, minLatencyTicks: 1, maxExtraDelayTicks: 0 });
  for (const id of cluster.ids) cluster.restart(id);
  cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
  cluster.proposeAndWait(1, cluster.ids, 1000);
  cluster.checkAcknowledgedWrites();
  cluster.audit();
}

describe("faults", () => {
  test("an unreliable network with churn: loss, duplication, reordering, crashes and restarts", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 31 });
    cluster.setNetwork({ lossRate: 0.1, dupRate: 0.1, minLatencyTicks: 1, maxExtraDelayTicks: 4 });
    const prng = cluster.prng;
    const downSince = new Map<NodeId, number>();
    for (let tick = 0; tick < 2000; tick++) {
      if (tick % 100 === 50 && downSince.size < 2) {
        const victim = prng.pick(cluster.liveIds());
        cluster.crash(victim);
        downSince.set(victim, tick);
      }
      for (const [id, since] of downSince) {
        if (tick - since >= 40) {
          cluster.restart(id);
          downSince.delete(id);
        }
      }
      if (prng.chance(0.5)) cluster.propose(prng.int(1, 3));
      cluster.step();
    }
    settle(cluster);
    expect(cluster.ledger.acknowledged().length).toBeGreaterThan(500);
    expect(cluster.network.stats.lost).toBeGreaterThan(0);
    expect(cluster.network.stats.duplicated).toBeGreaterThan(0);
  });

  test("heavy duplication and reordering alone: every write applied exactly once", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 32 });
    cluster.waitAgreedLeader();
    cluster.setNetwork({ dupRate: 0.5, maxExtraDelayTicks: 10 });
    for (let tick = 0; tick < 500; tick++) {
      cluster.propose(1);
      cluster.step();
    }
    settle(cluster);
    const applied = cluster.node("n1").applied().filter(isProposal);
    expect(new Set(applied).size).toBe(applied.length);
    // 500 proposals and the one settle() makes; a single leader throughout, so each was acknowledged.
    expect(applied.length).toBe(501);
    expect(cluster.ledger.acknowledged().length).toBe(501);
  });

  test("crashes between persisting a Ready and sending its messages", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 33 });
    cluster.waitAgreedLeader();
    cluster.midReadyCrashRate = 0.02;
    for (let tick = 0; tick < 1500; tick++) {
      for (const node of cluster.allNodes()) if (!node.alive && cluster.prng.chance(0.1)) cluster.restart(node.id);
      cluster.propose(1);
      cluster.step();
    }
    const midReady = cluster.allNodes().reduce((sum, node) => sum + node.stats.midReadyCrashes, 0);
    expect(midReady).toBeGreaterThan(10);
    settle(cluster);
    expect(cluster.ledger.acknowledged().length).toBeGreaterThan(100);
  });

  test("a one-way link: the leader can send but hears nothing, so it steps down and the others carry on", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 34 });
    const deaf = cluster.waitAgreedLeader();
    const others = cluster.ids.filter((id) => id !== deaf);
    for (const id of others) cluster.blockLink(id, deaf);
    // CheckQuorum: no answers for an election timeout, so it steps down; then its heartbeats stop.
    cluster.runUntil(() => cluster.status(deaf).role !== Role.Leader, 2 * ELECTION_TIMEOUT_TICKS, `${deaf} to step down`);
    cluster.runUntil(() => others.some((id) => cluster.status(id).role === Role.Leader), 20 * ELECTION_TIMEOUT_TICKS, "a new leader among the others");
    cluster.proposeAndWait(5, others);
    cluster.heal();
    settle(cluster);
  });

  test("a follower that keeps crashing while it catches up", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 35, config: { maxEntriesPerAppend: 2, maxInflightAppends: 2 } });
    const leader = cluster.waitAgreedLeader();
    const victim = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(victim);
    cluster.proposeAndWait(300, cluster.liveIds(), 500);
    for (let round = 0; round < 20; round++) {
      cluster.restart(victim);
      cluster.run(3);
      cluster.crash(victim);
    }
    settle(cluster);
  });
});
