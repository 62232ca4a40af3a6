/**
 * Linearizable reads (ReadIndex). The checker fails any read answered at an index below what was
 * committed when the read began; these scenarios also check the answers scripts can see.
 */
import { describe, expect, test } from "vitest";
import { Role } from "../../src/raft/types.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

describe("ReadIndex", () => {
  test("a read after an acknowledged write is answered at or after the write's index", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 51 });
    cluster.waitAgreedLeader();
    const written = cluster.proposeAndWait(3) + 2;
    const read = cluster.readIndex();
    expect(read.ok).toBe(true);
    cluster.runUntil(() => cluster.checker.readsServed === 1, 5 * ELECTION_TIMEOUT_TICKS, "the read to be answered");
    const answer = cluster.trace.tail().find((line) => / reads=#1@\d+/.test(line));
    expect(Number(answer!.match(/reads=#1@(\d+)/)![1])).toBeGreaterThanOrEqual(written);
  });

  test("followers refuse reads and name the leader", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 52 });
    const leader = cluster.waitAgreedLeader();
    const follower = cluster.ids.find((id) => id !== leader)!;
    expect(cluster.readIndex(follower)).toEqual({ ok: false, reason: "not-leader", leader });
  });

  test("a deposed leader that does not know it yet never answers a read", () => {
    // Without CheckQuorum the isolated leader keeps believing it leads; its reads must still wait for a
    // majority to confirm it, which never comes.
    const cluster = new SimCluster({ nodes: 3, seed: 53, config: { checkQuorum: false } });
    const stale = cluster.waitAgreedLeader();
    cluster.proposeAndWait(1);
    cluster.isolate(stale);
    const others = cluster.ids.filter((id) => id !== stale);
    cluster.runUntil(() => others.some((id) => cluster.status(id).role === Role.Leader), 20 * ELECTION_TIMEOUT_TICKS, "a new leader");
    cluster.proposeAndWait(5, others); // writes the stale leader cannot see

    expect(cluster.status(stale).role).toBe(Role.Leader);
    const servedBefore = cluster.checker.readsServed;
    expect(cluster.readIndex(stale).ok).toBe(true);
    cluster.run(5 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.checker.readsServed).toBe(servedBefore);

    // Healing deposes it; the read is dropped, never answered stale.
    cluster.heal();
    cluster.runUntil(() => cluster.status(stale).role === Role.Follower, 5 * ELECTION_TIMEOUT_TICKS, `${stale} to step down`);
    cluster.run(2 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.checker.readsServed).toBe(servedBefore);
  });

  test("reads under a new leader wait until it has committed an entry of its own term", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 54 });
    const first = cluster.waitAgreedLeader();
    cluster.proposeAndWait(4);
    cluster.crash(first);
    const second = cluster.waitLeader(10 * ELECTION_TIMEOUT_TICKS);
    // Ask at once, possibly before the new leader's no-op is committed: the checker verifies that the
    // answer still covers everything the old leader committed.
    expect(cluster.readIndex(second).ok).toBe(true);
    cluster.runUntil(() => cluster.checker.readsServed === 1, 5 * ELECTION_TIMEOUT_TICKS, "the read to be answered");
  });
});
