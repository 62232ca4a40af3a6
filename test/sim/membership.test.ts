/**
 * Single-server membership changes (Raft thesis §4.1): a node joins as a learner, is promoted once it has
 * caught up, and members leave one at a time. Membership is log-time: a node uses the newest membership
 * in its log, committed or not. The safety checker runs after every step.
 */
import { describe, expect, test } from "vitest";
import { MessageType, Role, type Membership, type NodeId } from "../../src/raft/types.js";
import { isMemberOf, isVoterIn, type MembershipChange } from "../../src/raft/membership.js";
import { isProposal } from "./payload.js";
import { SimCluster } from "./cluster.js";
import { agreedState, learnersSeenBy, membershipApplied, votersSeenBy, waitLeaderAmong } from "./scenario-helpers.js";

const ELECTION_TIMEOUT_TICKS = 10;

function addLearner(id: NodeId): MembershipChange {
  return { kind: "add-learner", id, address: `sim:${id}` };
}

/** Runs until the leader has applied a membership in which `id` is a voter (the promotion is committed). */
function waitPromoted(cluster: SimCluster, id: NodeId, maxTicks = 20 * ELECTION_TIMEOUT_TICKS): void {
  cluster.runUntil(() => {
    const leader = cluster.leader();
    return leader !== null && votersSeenBy(cluster, leader).includes(id) && membershipApplied(cluster, leader);
  }, maxTicks, `${id} to be promoted to voter`);
}

describe("membership", () => {
  test("a learner receives the log but neither votes nor counts toward a commit, until it is promoted", () => {
    const cluster = new SimCluster({ nodes: 3, spares: 1, seed: 201 });
    const leader = waitLeaderAmong(cluster, cluster.founders);
    cluster.proposeAndWait(3, cluster.founders);
    const [f1, f2] = cluster.founders.filter((id) => id !== leader) as [NodeId, NodeId];
    const learnerCampaigns = countCampaigns(cluster, "n4");

    // Both other voters down: the leader alone is a minority of the three voters.
    cluster.crash(f1);
    cluster.crash(f2);
    expect(cluster.changeMembership(addLearner("n4"))).toBe(true);
    const { result } = cluster.propose(1);
    expect(result.ok).toBe(true);
    const index = result.ok ? result.firstIndex : 0;
    cluster.runUntil(() => cluster.status("n4").lastIndex >= index, ELECTION_TIMEOUT_TICKS / 2, "the learner to receive the entry");
    expect(learnersSeenBy(cluster, "n4")).toEqual(["n4"]);
    // Leader and learner both hold the entry, two of four members, but only one of three voters.
    for (const id of [leader, "n4"]) expect(cluster.status(id).commitIndex).toBeLessThan(index);

    // Without a majority of voters the leader steps down (CheckQuorum) and nobody can be elected: the
    // learner never campaigns and its vote would not count.
    cluster.runUntil(() => cluster.leader() === null, 3 * ELECTION_TIMEOUT_TICKS, "the leader to step down");
    for (let tick = 0; tick < 5 * ELECTION_TIMEOUT_TICKS; tick++) {
      cluster.step();
      expect(cluster.leader()).toBeNull();
      expect(cluster.status("n4").role).toBe(Role.Follower);
    }
    for (const id of [leader, "n4"]) expect(cluster.status(id).commitIndex).toBeLessThan(index);
    expect(learnerCampaigns.count).toBe(0);

    // One voter back: a majority of the voters, so the learner's addition and the entry commit, and the
    // caught-up learner is promoted (with no further write: see learner-promotion.test.ts).
    const up = [leader, f1, "n4"];
    cluster.restart(f1);
    waitLeaderAmong(cluster, up, 20 * ELECTION_TIMEOUT_TICKS);
    cluster.waitApplied(index, up);
    waitPromoted(cluster, "n4");
    expect(votersSeenBy(cluster, "n4")).toContain("n4");

    // Now a voter: four voters with f2 down, so a commit needs n4's copy.
    const current = waitLeaderAmong(cluster, up);
    expect(votersSeenBy(cluster, current).sort()).toEqual([...cluster.founders, "n4"].sort());
    cluster.proposeAndWait(1, up);
    cluster.isolate("n4");
    const blocked = cluster.propose(1);
    expect(blocked.result.ok).toBe(true);
    cluster.run(ELECTION_TIMEOUT_TICKS / 2);
    const blockedIndex = blocked.result.ok ? blocked.result.firstIndex : 0;
    for (const id of [leader, f1]) expect(cluster.status(id).commitIndex).toBeLessThan(blockedIndex);
    cluster.heal();
    cluster.waitApplied(blockedIndex, up);
    agreedState(cluster, up);
  });

  test("a node added after the log was compacted catches up through a snapshot, then is promoted", () => {
    const cluster = new SimCluster({ nodes: 3, spares: 1, seed: 202 });
    const leader = waitLeaderAmong(cluster, cluster.founders);
    cluster.proposeAndWait(30, cluster.founders);
    for (const id of cluster.founders) cluster.compact(id, 0);
    expect(cluster.status(leader).firstIndex).toBeGreaterThan(30);

    expect(cluster.changeMembership(addLearner("n4"))).toBe(true);
    waitPromoted(cluster, "n4");
    expect(cluster.node(leader).stats.snapshotsSent).toBeGreaterThanOrEqual(1);
    expect(cluster.node("n4").stats.snapshotsInstalled).toBe(1);
    expect(cluster.status("n4").firstIndex).toBeGreaterThan(30);
    cluster.proposeAndWait(5, cluster.ids);
    expect(votersSeenBy(cluster, "n4").sort()).toEqual(["n1", "n2", "n3", "n4"]);
    expect(agreedState(cluster, cluster.ids).filter(isProposal)).toHaveLength(35);
  });

  // Seeds chosen so that the crashed leader is n1 (removed later), n3 (kept) and n2 (removed later).
  test.each([203, 1, 5])("grow 3 → 5 and shrink 5 → 3, one change at a time, with writes flowing and a leader crash (seed %i)", (seed) => {
    const cluster = new SimCluster({ nodes: 3, spares: 2, seed });
    waitLeaderAmong(cluster, cluster.founders);
    const traffic = new ClientTraffic(cluster);
    const acknowledged = () => cluster.ledger.acknowledged().length;
    let before = acknowledged();
    /** Writes were acknowledged during the last step of the script. */
    const writesFlowed = () => {
      expect(acknowledged()).toBeGreaterThan(before);
      before = acknowledged();
    };

    traffic.change(addLearner("n4"), (m) => isVoterIn(m, "n4"));
    writesFlowed();
    traffic.change(addLearner("n5"), (m) => isVoterIn(m, "n5"));
    writesFlowed();
    expect(cluster.members().sort()).toEqual(["n1", "n2", "n3", "n4", "n5"]);

    // The leader crashes right after proposing the first removal; the change is retried (if the next
    // leader does not have it) until a leader has applied it.
    const crashed = cluster.leader()!;
    const [first, second] = crashed === "n1" ? ["n2", "n1"] : ["n1", "n2"];
    expect(cluster.changeMembership({ kind: "remove", id: first })).toBe(true);
    cluster.crash(crashed);
    traffic.run(5 * ELECTION_TIMEOUT_TICKS);
    writesFlowed(); // four of five voters up: a majority
    cluster.restart(crashed);
    traffic.change({ kind: "remove", id: first }, (m) => !isMemberOf(m, first));
    traffic.change({ kind: "remove", id: second }, (m) => !isMemberOf(m, second));
    writesFlowed();

    const members = cluster.members().sort();
    expect(members).toEqual(["n3", "n4", "n5"]);
    const leader = waitLeaderAmong(cluster, members);
    expect(votersSeenBy(cluster, leader).sort()).toEqual(members);
    cluster.proposeAndWait(1, members);
    cluster.checkAcknowledgedWrites(members);
    expect(agreedState(cluster, members).filter(isProposal).length).toBeGreaterThanOrEqual(acknowledged());
  });

  test("removing the leader: it leads until the removal commits, then a remaining voter leads", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 204 });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(3);
    const term = cluster.status(leader).term;
    const result = cluster.node(leader).proposeMembershipChange({ kind: "remove", id: leader });
    expect(result.ok).toBe(true);
    const removalIndex = result.ok ? result.index : 0;
    // Log-time membership: the leader no longer counts itself, yet it manages the change and takes writes.
    expect(votersSeenBy(cluster, leader)).not.toContain(leader);
    for (let ticks = 0; cluster.status(leader).commitIndex < removalIndex; ticks++) {
      expect(ticks).toBeLessThan(ELECTION_TIMEOUT_TICKS);
      expect(cluster.status(leader).role).toBe(Role.Leader);
      expect(cluster.propose(1, leader).result.ok).toBe(true);
      cluster.step();
    }
    const remaining = cluster.ids.filter((id) => id !== leader);
    const successor = waitLeaderAmong(cluster, remaining, 5 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(leader).role).toBe(Role.Follower);
    expect(cluster.status(successor).term).toBe(term + 1); // handed over by TimeoutNow: one election
    cluster.proposeAndWait(1, remaining);
    cluster.checkAcknowledgedWrites(remaining);

    // The removed node hears from nobody and never campaigns again.
    const removedTerm = cluster.status(leader).term;
    const campaigns = countCampaigns(cluster, leader);
    for (let tick = 0; tick < 30 * ELECTION_TIMEOUT_TICKS; tick++) {
      cluster.step();
      expect(cluster.status(leader).role).toBe(Role.Follower);
    }
    expect(campaigns.count).toBe(0);
    expect(cluster.status(leader).term).toBe(removedTerm);
    expect(cluster.leader()).toBe(successor);
    expect(cluster.status(successor).term).toBe(term + 1);
  });

  test("one change at a time: a change is refused before the leader applied its no-op and while another is pending", () => {
    const cluster = new SimCluster({ nodes: 3, spares: 2, seed: 205 });
    const leader = cluster.waitLeader();
    const node = cluster.node(leader);
    // Just elected: its no-op is not applied yet.
    expect(cluster.status(leader).appliedIndex).toBeLessThan(cluster.status(leader).lastIndex);
    expect(node.proposeMembershipChange(addLearner("n4"))).toMatchObject({ ok: false, reason: "pending" });

    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.founders);
    const first = node.proposeMembershipChange(addLearner("n4"));
    expect(first.ok).toBe(true);
    expect(node.proposeMembershipChange(addLearner("n5"))).toMatchObject({ ok: false, reason: "pending" });
    expect(node.proposeMembershipChange({ kind: "remove", id: "n3" })).toMatchObject({ ok: false, reason: "pending" });
    expect(cluster.status(leader).membership.members.map((member) => member.id)).toEqual(["n1", "n2", "n3", "n4"]);

    // Once n4's addition and its promotion are applied, the next change goes through.
    waitPromoted(cluster, "n4");
    expect(node.proposeMembershipChange(addLearner("n5")).ok).toBe(true);
    waitPromoted(cluster, "n5");
    expect(votersSeenBy(cluster, leader).sort()).toEqual(["n1", "n2", "n3", "n4", "n5"]);
  });

  test("removing the last voter is refused, even with a learner left", () => {
    const cluster = new SimCluster({ nodes: 1, spares: 1, seed: 206 });
    const leader = waitLeaderAmong(cluster, ["n1"]);
    cluster.proposeAndWait(1, ["n1"]);
    expect(cluster.node(leader).proposeMembershipChange({ kind: "remove", id: "n1" })).toMatchObject({ ok: false, reason: "invalid" });

    // n2 joins but cannot catch up (cut off), so it stays a learner: still only one voter.
    cluster.isolate("n2");
    expect(cluster.changeMembership(addLearner("n2"))).toBe(true);
    cluster.proposeAndWait(1, ["n1"]);
    expect(learnersSeenBy(cluster, "n1")).toEqual(["n2"]);
    const refused = cluster.node(leader).proposeMembershipChange({ kind: "remove", id: "n1" });
    expect(refused).toMatchObject({ ok: false, reason: "invalid", detail: expect.stringContaining("without a voter") });
    expect(cluster.leader()).toBe("n1");

    // Once n2 caught up and was promoted, n1 may leave: the cluster moves over to n2.
    cluster.heal();
    cluster.proposeAndWait(1, ["n1", "n2"]);
    waitPromoted(cluster, "n2");
    expect(cluster.changeMembership({ kind: "remove", id: "n1" })).toBe(true);
    cluster.runUntil(() => cluster.leader() === "n2", 5 * ELECTION_TIMEOUT_TICKS, "n2 to lead alone");
    cluster.proposeAndWait(1, ["n2"]);
    expect(cluster.members()).toEqual(["n2"]);
    cluster.checkAcknowledgedWrites(["n2"]);
  });

  // The removed node never receives its removal (the leader stops replicating to it as soon as the entry
  // is in its own log), so it stays a voter in its own eyes, times out and campaigns. Pre-Vote keeps its
  // term still (nobody grants: the others are in a leader lease, or have a longer log); CheckQuorum alone
  // keeps the cluster undisturbed but lets the removed node's term climb.
  test.each([
    { checkQuorum: true, preVote: true, removedTermStill: true },
    { checkQuorum: false, preVote: true, removedTermStill: true },
    { checkQuorum: true, preVote: false, removedTermStill: false },
  ])("a removed follower that never heard of its removal does not disturb the cluster (%o)", ({ removedTermStill, ...config }) => {
    const { cluster, leader, removed, remaining } = removeIsolatedFollower(config);
    const term = cluster.status(leader).term;
    const removedTerm = cluster.status(removed).term;
    expect(votersSeenBy(cluster, removed)).toContain(removed); // its log ends before its removal
    const campaigns = countCampaigns(cluster, removed);

    const traffic = new ClientTraffic(cluster);
    traffic.run(30 * ELECTION_TIMEOUT_TICKS);
    expect(campaigns.count).toBeGreaterThan(0);
    expect(cluster.leader()).toBe(leader);
    expect(cluster.checker.leaders().size).toBe(1);
    for (const id of remaining) expect(cluster.status(id).term).toBe(term);
    if (removedTermStill) expect(cluster.status(removed).term).toBe(removedTerm);
    else expect(cluster.status(removed).term).toBeGreaterThan(removedTerm + 5);
    expect(traffic.accepted).toBe(30 * ELECTION_TIMEOUT_TICKS); // not one write refused
    cluster.proposeAndWait(1, remaining);
    cluster.checkAcknowledgedWrites(remaining);
  });

  test("without Pre-Vote and CheckQuorum a removed follower does disrupt the cluster (thesis §4.2.3)", () => {
    const { cluster, leader, removed, remaining } = removeIsolatedFollower({ checkQuorum: false, preVote: false });
    const term = cluster.status(leader).term;
    const traffic = new ClientTraffic(cluster);
    traffic.run(30 * ELECTION_TIMEOUT_TICKS);
    // Its higher-term Vote requests depose every leader the remaining voters elect.
    expect(cluster.checker.leaders().size).toBeGreaterThan(2);
    expect(cluster.status(cluster.leader() ?? leader).term).toBeGreaterThan(term + 5);
    expect(traffic.accepted).toBeLessThan(30 * ELECTION_TIMEOUT_TICKS);
    // Safety holds all the same, and shutting the removed node down ends the disruption.
    cluster.crash(removed);
    waitLeaderAmong(cluster, remaining, 20 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(1, remaining);
    cluster.checkAcknowledgedWrites(remaining);
  });
});

/** A client writing one entry per tick through whoever leads, while the scenario changes the membership. */
class ClientTraffic {
  /** Proposals some leader accepted. */
  accepted = 0;

  constructor(private readonly cluster: SimCluster) {}

  /** One tick: a proposal through the current leader (if any), then a step. */
  step(): void {
    if (this.cluster.propose(1).result.ok) this.accepted++;
    this.cluster.step();
  }

  run(ticks: number): void {
    for (let tick = 0; tick < ticks; tick++) this.step();
  }

  /**
   * Asks for `change` (again after a leader change lost it) until the leader has applied a membership
   * for which `done` holds; promotions happen on their own.
   */
  change(change: MembershipChange, done: (membership: Membership) => boolean, maxTicks = 50 * ELECTION_TIMEOUT_TICKS): void {
    for (let tick = 0; ; tick++) {
      const leader = this.cluster.leader();
      if (leader !== null) {
        const membership = this.cluster.status(leader).membership;
        if (done(membership) && membershipApplied(this.cluster, leader)) return;
        if (!requested(membership, change)) this.cluster.changeMembership(change, leader);
      }
      if (tick >= maxTicks) throw new Error(`${change.kind} ${change.id} not done after ${maxTicks} ticks\n${this.cluster.describe()}`);
      this.step();
    }
  }
}

/** Whether `membership` already reflects the first step of `change` (asking again would be a no-op change). */
function requested(membership: Membership, change: MembershipChange): boolean {
  return change.kind === "remove" ? !isMemberOf(membership, change.id) : isMemberOf(membership, change.id);
}

/** A 3-node cluster that removed one follower while it was cut off, then healed the network. */
function removeIsolatedFollower(config: { checkQuorum: boolean; preVote: boolean }) {
  const cluster = new SimCluster({ nodes: 3, seed: 207, config });
  const leader = cluster.waitAgreedLeader();
  cluster.proposeAndWait(3);
  const removed = cluster.ids.find((id) => id !== leader)!;
  const remaining = cluster.ids.filter((id) => id !== removed);
  cluster.isolate(removed);
  expect(cluster.changeMembership({ kind: "remove", id: removed })).toBe(true);
  cluster.proposeAndWait(3, remaining);
  cluster.heal();
  return { cluster, leader, removed, remaining };
}

/** Counts the (Pre-)Vote requests `id` gets delivered from now on. */
function countCampaigns(cluster: SimCluster, id: NodeId): { readonly count: number } {
  const counter = { count: 0 };
  cluster.network.setDeliveryObserver((message) => {
    if (message.from === id && (message.type === MessageType.PreVote || message.type === MessageType.Vote)) counter.count++;
  });
  return counter;
}
