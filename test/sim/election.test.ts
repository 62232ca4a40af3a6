/**
 * Leader election scenarios. The safety checker runs after every step of every scenario, so "the test
 * passes" also means: at most one leader per term, and every leader held every committed entry.
 */
import { describe, expect, test } from "vitest";
import { Role } from "../../src/raft/types.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

describe("leader election", () => {
  test("initial election: one leader, followed by every node", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 1 });
    const leader = cluster.waitAgreedLeader(5 * ELECTION_TIMEOUT_TICKS);
    for (const id of cluster.ids) {
      expect(cluster.status(id).leader).toBe(leader);
      expect(cluster.status(id).term).toBe(cluster.status(leader).term);
    }
    // Heartbeats keep it in place: no further elections while nothing fails.
    const term = cluster.status(leader).term;
    cluster.run(20 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.leader()).toBe(leader);
    expect(cluster.status(leader).term).toBe(term);
    expect(cluster.checker.leaders().size).toBe(1);
  });

  test("re-election after the leader fails", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 2 });
    const first = cluster.waitAgreedLeader();
    const firstTerm = cluster.status(first).term;

    cluster.crash(first);
    const second = cluster.waitAgreedLeader(5 * ELECTION_TIMEOUT_TICKS);
    expect(second).not.toBe(first);
    expect(cluster.status(second).term).toBeGreaterThan(firstTerm);

    // The old leader comes back as a follower of the new one, without disturbing it.
    cluster.restart(first);
    cluster.runUntil(() => cluster.status(first).leader === second, 5 * ELECTION_TIMEOUT_TICKS, `${first} to follow ${second}`);
    expect(cluster.leader()).toBe(second);
  });

  test("many elections under churn: the leader crashes 30 times in a row", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 3 });
    const terms = new Set<number>();
    for (let round = 0; round < 30; round++) {
      const leader = cluster.waitAgreedLeader(10 * ELECTION_TIMEOUT_TICKS);
      terms.add(cluster.status(leader).term);
      cluster.proposeAndWait(1);
      cluster.crash(leader);
      // Bring back the node crashed last round, so a majority stays up.
      for (const id of cluster.ids) if (id !== leader) cluster.restart(id);
    }
    expect(terms.size).toBe(30);
    expect(cluster.checker.leaders().size).toBeGreaterThanOrEqual(30);
  });

  test("Pre-Vote: an isolated node rejoins without raising the term or deposing the leader", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 4 }); // preVote and checkQuorum on
    const leader = cluster.waitAgreedLeader();
    const term = cluster.status(leader).term;
    const loner = cluster.ids.find((id) => id !== leader)!;

    cluster.isolate(loner);
    cluster.run(10 * ELECTION_TIMEOUT_TICKS); // the loner's election timer fires again and again
    cluster.proposeAndWait(3, [leader]); // the majority moves on meanwhile
    expect(cluster.status(loner).term).toBe(term); // pre-votes failed: no term was burnt

    cluster.heal();
    cluster.run(5 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.leader()).toBe(leader);
    expect(cluster.status(leader).term).toBe(term);
    expect(cluster.status(loner).leader).toBe(leader);
  });

  test("without Pre-Vote the same rejoin raises the term and costs the leader its term", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 4, config: { preVote: false } });
    const leader = cluster.waitAgreedLeader();
    const term = cluster.status(leader).term;
    const loner = cluster.ids.find((id) => id !== leader)!;

    cluster.isolate(loner);
    cluster.run(10 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(3, [leader]);
    expect(cluster.status(loner).term).toBeGreaterThan(term); // real elections, each in a new term

    cluster.heal();
    const next = cluster.waitAgreedLeader(10 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(next).term).toBeGreaterThan(term);
    // The loner missed committed entries, so it cannot be the one to win.
    expect(next).not.toBe(loner);
  });

  test("CheckQuorum: an isolated leader steps down within two election timeouts", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 5 }); // checkQuorum on
    const leader = cluster.waitAgreedLeader();
    cluster.isolate(leader);
    const ticks = cluster.runUntil(() => cluster.status(leader).role !== Role.Leader, 2 * ELECTION_TIMEOUT_TICKS, `${leader} to step down`);
    expect(ticks).toBeLessThanOrEqual(2 * ELECTION_TIMEOUT_TICKS);
    // The majority side elects a new leader in a higher term.
    const others = cluster.ids.filter((id) => id !== leader);
    cluster.runUntil(() => others.some((id) => cluster.status(id).role === Role.Leader), 5 * ELECTION_TIMEOUT_TICKS, "a leader among the majority");
  });

  test("without CheckQuorum an isolated leader keeps believing it leads", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 5, config: { checkQuorum: false } });
    const leader = cluster.waitAgreedLeader();
    const term = cluster.status(leader).term;
    cluster.isolate(leader);
    cluster.run(10 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(leader).role).toBe(Role.Leader);
    expect(cluster.status(leader).term).toBe(term);
    // It cannot commit anything alone, and it learns the truth as soon as it hears from the others.
    const before = cluster.status(leader).commitIndex;
    cluster.propose(1, leader);
    cluster.run(3 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(leader).commitIndex).toBe(before);
    cluster.heal();
    cluster.runUntil(() => cluster.status(leader).role === Role.Follower, 5 * ELECTION_TIMEOUT_TICKS, `${leader} to step down after healing`);
  });
});

describe("a driver that sees the leader's connection break", () => {
  test("fails over well within an election timeout when the leader dies", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 6 });
    const leader = cluster.waitAgreedLeader();
    cluster.run(5);
    cluster.crash(leader);
    cluster.run(2); // its last heartbeats, already on the wire, still arrive
    for (const id of cluster.liveIds()) cluster.peerUnreachable(id, leader);
    const ticks = cluster.runUntil(() => cluster.agreedLeader() !== null, 5 * ELECTION_TIMEOUT_TICKS, "a new leader");
    expect(ticks).toBeLessThan(ELECTION_TIMEOUT_TICKS);
  });

  test("followers that lose the leader at the same moment do not split the vote (30 seeds)", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const cluster = new SimCluster({ nodes: 3, seed });
      const leader = cluster.waitAgreedLeader();
      const termBefore = cluster.status(leader).term;
      cluster.crash(leader);
      for (const id of cluster.liveIds()) cluster.peerUnreachable(id, leader);
      const next = cluster.waitAgreedLeader();
      // One election: a crossed pre-vote makes one of the two step back instead of both campaigning.
      expect(cluster.status(next).term, `seed ${seed}`).toBe(termBefore + 1);
    }
  });

  test("a false alarm from one follower does not disturb a live leader", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 7 });
    const leader = cluster.waitAgreedLeader();
    const term = cluster.status(leader).term;
    const follower = cluster.ids.find((id) => id !== leader)!;
    cluster.peerUnreachable(follower, leader);
    cluster.run(5 * ELECTION_TIMEOUT_TICKS);
    // Its pre-vote is refused by the other follower, which still hears the leader.
    expect(cluster.leader()).toBe(leader);
    expect(cluster.status(leader).term).toBe(term);
  });
});
