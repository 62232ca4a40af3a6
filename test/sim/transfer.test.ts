/** Leadership transfer: the leader hands over to a chosen follower, catching it up first if it lags. */
import { describe, expect, test } from "vitest";
import { Role } from "../../src/raft/types.js";
import { isProposal } from "./payload.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

describe("leadership transfer", () => {
  test("to a caught-up follower: it leads in the next term, nothing is lost", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 41 });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(10);
    const term = cluster.status(leader).term;
    const target = cluster.ids.find((id) => id !== leader)!;

    expect(cluster.transferLeadership(target)).toEqual({ ok: true });
    // TimeoutNow makes the target campaign at once: well before any election timeout.
    const ticks = cluster.runUntil(() => cluster.agreedLeader() === target, 5 * ELECTION_TIMEOUT_TICKS, `${target} to lead`);
    expect(ticks).toBeLessThan(ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(target).term).toBe(term + 1);
    expect(cluster.status(leader).role).toBe(Role.Follower);
    cluster.proposeAndWait(1);
    expect(cluster.node(target).applied().filter(isProposal)).toHaveLength(11);
  });

  test("to a lagging follower: the leader catches it up first, then hands over", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 42 });
    const leader = cluster.waitAgreedLeader();
    const target = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(target);
    cluster.proposeAndWait(20, cluster.liveIds());
    cluster.restart(target);
    const behind = cluster.status(leader).lastIndex - cluster.status(target).lastIndex;
    expect(behind).toBeGreaterThanOrEqual(20);

    // The leader streams the missing entries (a transfer gives up after one election timeout, so the
    // lag has to be one it can close in that time) and sends TimeoutNow only once the target has them all.
    expect(cluster.transferLeadership(target).ok).toBe(true);
    cluster.runUntil(() => cluster.agreedLeader() === target, 5 * ELECTION_TIMEOUT_TICKS, `${target} to lead`);
    expect(cluster.trace.tail().some((line) => line.includes(`sends TimeoutNow to ${target}`))).toBe(true);
    // It could only win holding every committed entry, and it serves new writes at once.
    cluster.proposeAndWait(1, cluster.ids);
  });

  test("proposals are refused while a transfer is under way, then accepted by the new leader", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 43 });
    const leader = cluster.waitAgreedLeader();
    const target = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(target); // the transfer cannot complete quickly
    cluster.restart(target);
    cluster.transferLeadership(target);
    const during = cluster.propose(1, leader).result;
    if (cluster.status(leader).role === Role.Leader) expect(during).toMatchObject({ ok: false, reason: "transferring" });
    cluster.runUntil(() => cluster.agreedLeader() === target, 20 * ELECTION_TIMEOUT_TICKS, `${target} to lead`);
    cluster.proposeAndWait(1);
  });

  test("to a node that is down: the transfer times out and the leader carries on", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 44 });
    const leader = cluster.waitAgreedLeader();
    const target = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(target);
    expect(cluster.transferLeadership(target).ok).toBe(true);
    expect(cluster.propose(1, leader).result).toMatchObject({ ok: false, reason: "transferring" });
    // After an election timeout the leader gives up on the transfer and takes writes again.
    cluster.runUntil(() => cluster.propose(1, leader).result.ok, 3 * ELECTION_TIMEOUT_TICKS, "proposals to be accepted again");
    expect(cluster.leader()).toBe(leader);
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.liveIds());
  });

  test("to a node whose connection breaks: the leader gives up at once, not after an election timeout", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 45 });
    const leader = cluster.waitAgreedLeader();
    const target = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(target);
    expect(cluster.transferLeadership(target).ok).toBe(true);
    expect(cluster.status(leader).transferTarget).toBe(target);

    cluster.peerUnreachable(leader, target);

    expect(cluster.status(leader).transferTarget).toBe("");
    expect(cluster.propose(1, leader).result.ok).toBe(true);
    // A broken link to any other peer changes nothing for a leader.
    cluster.peerUnreachable(leader, cluster.ids.find((id) => id !== leader && id !== target)!);
    expect(cluster.leader()).toBe(leader);
  });
});
