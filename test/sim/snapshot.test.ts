/**
 * Log compaction and InstallSnapshot: a follower that needs entries its leader compacted away receives
 * the leader's state machine instead, and goes on from the log after it. The safety checker runs after
 * every step, so "the follower caught up" also means it installed exactly the committed state.
 */
import { describe, expect, test } from "vitest";
import { MessageType, type NodeId } from "../../src/raft/types.js";
import { isProposal } from "./payload.js";
import { SimCluster } from "./cluster.js";
import { agreedState } from "./scenario-helpers.js";

const ELECTION_TIMEOUT_TICKS = 10;

/** Compacts every live node's log, keeping `keepEntries` applied entries. */
function compactAll(cluster: SimCluster, keepEntries: number): void {
  for (const id of cluster.liveIds()) cluster.compact(id, keepEntries);
}

/** Crashes one follower and commits `count` proposals without it; returns the follower. */
function leaveFollowerBehind(cluster: SimCluster, leader: NodeId, count: number): NodeId {
  const follower = cluster.ids.find((id) => id !== leader)!;
  cluster.crash(follower);
  cluster.proposeAndWait(count, cluster.liveIds());
  return follower;
}

describe("snapshots", () => {
  test("a follower that was down while the others compacted catches up through a snapshot, then from the log", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 101 });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(5);
    const follower = leaveFollowerBehind(cluster, leader, 30);
    compactAll(cluster, 0);
    const leaderFirst = cluster.status(leader).firstIndex;
    expect(leaderFirst).toBeGreaterThan(30);

    cluster.restart(follower);
    expect(cluster.status(follower).lastIndex).toBeLessThan(leaderFirst - 1); // what it needs is gone
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids);
    expect(cluster.node(leader).stats.snapshotsSent).toBeGreaterThanOrEqual(1);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    expect(cluster.status(follower).firstIndex).toBeGreaterThan(1);
    expect(cluster.status(follower).firstIndex).toBeGreaterThanOrEqual(leaderFirst);
    agreedState(cluster, cluster.ids);

    // From here on, plain Appends: no second snapshot, and the follower's log grows past the snapshot.
    const lastBefore = cluster.status(follower).lastIndex;
    const sentBefore = cluster.node(leader).stats.snapshotsSent;
    cluster.proposeAndWait(10, cluster.ids);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    expect(cluster.node(leader).stats.snapshotsSent).toBe(sentBefore);
    expect(cluster.status(follower).lastIndex).toBe(lastBefore + 10);
    expect(agreedState(cluster, cluster.ids).filter(isProposal)).toHaveLength(45);
  });

  test("compaction keeps a retained tail: a follower slightly behind catches up from the log alone", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 102 });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(30);
    const follower = leaveFollowerBehind(cluster, leader, 5);
    compactAll(cluster, 10);
    // The leader dropped most of its log, but not the entries the follower misses.
    const leaderFirst = cluster.status(leader).firstIndex;
    expect(leaderFirst).toBeGreaterThan(20);

    cluster.restart(follower);
    expect(cluster.status(follower).lastIndex + 1).toBeGreaterThanOrEqual(leaderFirst);
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids);
    for (const id of cluster.ids) expect(cluster.node(id).stats.snapshotsSent).toBe(0);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(0);
    expect(cluster.status(follower).firstIndex).toBe(1); // it never compacted, and nothing replaced its log
    agreedState(cluster, cluster.ids);
  });

  test("a snapshot lost in transit is sent again, and the follower catches up", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 103 });
    const leader = cluster.waitAgreedLeader();
    const follower = leaveFollowerBehind(cluster, leader, 30);
    compactAll(cluster, 0);

    // The network loses the first two snapshots sent to the follower.
    let lost = 0;
    cluster.network.setDropFilter((message) => {
      const drop = message.type === MessageType.Snapshot && message.to === follower && lost < 2;
      if (drop) lost++;
      return drop;
    });
    cluster.restart(follower);
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids, 20 * ELECTION_TIMEOUT_TICKS);
    expect(lost).toBe(2);
    expect(cluster.node(leader).stats.snapshotsSent).toBeGreaterThanOrEqual(3);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    agreedState(cluster, cluster.ids);
    // A copy that was still in flight when the follower installed one is recognised as old news.
    cluster.proposeAndWait(5, cluster.ids);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
  });

  test("a partition while the snapshot is on its way: the leader sends it again once the network heals", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 104 });
    const leader = cluster.waitAgreedLeader();
    const follower = leaveFollowerBehind(cluster, leader, 30);
    compactAll(cluster, 0);

    cluster.restart(follower);
    cluster.runUntil(() => cluster.node(leader).stats.snapshotsSent === 1, 5 * ELECTION_TIMEOUT_TICKS, "the leader to send a snapshot");
    cluster.isolate(follower); // the snapshot is still in flight: it arrives at a blocked link
    cluster.run(5 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(0);
    cluster.proposeAndWait(5, cluster.ids.filter((id) => id !== follower)); // the majority carries on

    cluster.heal();
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids, 20 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.leader()).toBe(leader); // Pre-Vote: the isolated follower deposed nobody
    expect(cluster.node(leader).stats.snapshotsSent).toBeGreaterThanOrEqual(2);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    agreedState(cluster, cluster.ids);
  });

  test("a follower that crashes right after installing a snapshot restarts from it and carries on", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 105 });
    const leader = cluster.waitAgreedLeader();
    const follower = leaveFollowerBehind(cluster, leader, 30);
    compactAll(cluster, 0);

    cluster.restart(follower);
    cluster.runUntil(() => cluster.node(follower).stats.snapshotsInstalled === 1, 5 * ELECTION_TIMEOUT_TICKS, "the snapshot to be installed");
    const snapshotIndex = cluster.status(follower).firstIndex - 1;
    expect(snapshotIndex).toBeGreaterThan(30);
    const installed = [...cluster.node(follower).applied()];
    expect(installed).toHaveLength(snapshotIndex);
    cluster.crash(follower);

    cluster.restart(follower);
    // The disk holds the snapshot's state and a log that starts right after it.
    expect(cluster.node(follower).storage.loadSync().logStart.index).toBe(snapshotIndex);
    expect(cluster.status(follower).firstIndex).toBe(snapshotIndex + 1);
    expect(cluster.status(follower).appliedIndex).toBe(snapshotIndex);
    expect(cluster.node(follower).applied()).toEqual(installed);

    cluster.proposeAndWait(10, cluster.ids);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1); // the rest came by Append
    expect(agreedState(cluster, cluster.ids).filter(isProposal)).toHaveLength(40);
  });

  test("a follower that crashes while its disk is still writing a snapshot comes back without it and gets another", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 107 });
    const leader = cluster.waitAgreedLeader();
    const follower = leaveFollowerBehind(cluster, leader, 30);
    compactAll(cluster, 0);

    cluster.restart(follower);
    const lastBefore = cluster.status(follower).lastIndex;
    cluster.setPersistDelay(follower, 5);
    cluster.runUntil(() => cluster.node(follower).raft().installingSnapshot(), 5 * ELECTION_TIMEOUT_TICKS, "the follower to accept a snapshot");
    cluster.crash(follower); // before the write finished: nothing of the snapshot is on disk
    cluster.setPersistDelay(follower, null);
    cluster.restart(follower);
    expect(cluster.status(follower).firstIndex).toBe(1);
    expect(cluster.status(follower).lastIndex).toBe(lastBefore);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(0);

    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids);
    expect(cluster.node(leader).stats.snapshotsSent).toBeGreaterThanOrEqual(2);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    agreedState(cluster, cluster.ids);
  });

  test("the leader crashes while a follower needs a snapshot: the new leader sends its own", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 106 });
    const oldLeader = cluster.waitAgreedLeader();
    const follower = leaveFollowerBehind(cluster, oldLeader, 30);
    const successor = cluster.ids.find((id) => id !== oldLeader && id !== follower)!;
    compactAll(cluster, 0);

    // Every snapshot of the old leader is lost, so the follower still needs one when the leader dies.
    cluster.network.setDropFilter((message) => message.type === MessageType.Snapshot && message.from === oldLeader);
    cluster.restart(follower);
    cluster.runUntil(() => cluster.node(oldLeader).stats.snapshotsSent >= 1, 5 * ELECTION_TIMEOUT_TICKS, "the old leader to send a snapshot");
    cluster.crash(oldLeader);

    // The follower's log is behind, so only the successor can win; its log is compacted too.
    const leader = cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
    expect(leader).toBe(successor);
    cluster.proposeAndWait(3, cluster.liveIds());
    expect(cluster.node(successor).stats.snapshotsSent).toBeGreaterThanOrEqual(1);
    expect(cluster.node(follower).stats.snapshotsInstalled).toBe(1);
    expect(cluster.status(follower).firstIndex).toBeGreaterThan(30);

    cluster.network.setDropFilter(null);
    cluster.restart(oldLeader);
    cluster.proposeAndWait(1, cluster.ids, 20 * ELECTION_TIMEOUT_TICKS);
    cluster.checkAcknowledgedWrites();
    expect(agreedState(cluster, cluster.ids).filter(isProposal)).toHaveLength(34);
  });
});
