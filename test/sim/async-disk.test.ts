/**
 * A driver whose disk writes take time (like the real node's awaited LevelDB save): the core keeps
 * taking ticks and messages while a Ready is being written, and the next Ready waits for advance().
 * The checker's "Durable Promise" check verifies that every message sent still promises only what the
 * sender's disk holds when it leaves.
 */
import { describe, expect, test } from "vitest";
import { Role, type NodeId } from "../../src/raft/types.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

describe("slow disks", () => {
  test("every node's writes take up to 3 ticks: replication, failover and recovery stay safe", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 71 });
    cluster.maxPersistDelayTicks = 3;
    const leader = cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
    for (let round = 0; round < 200; round++) {
      cluster.propose(1 + (round % 4));
      cluster.step();
    }
    cluster.crash(leader);
    cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(10, cluster.liveIds(), 500);
    cluster.restart(leader);
    cluster.proposeAndWait(1, cluster.ids, 500);
    cluster.checkAcknowledgedWrites();
  });

  // Regression scenario for the stale-acknowledgement bug the simulator found (test/sim/README.md).
  test("a follower that changes term while its disk is busy does not acknowledge entries it has replaced", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 61, config: { preVote: false, checkQuorum: false, maxEntriesPerAppend: 1 } });
    const oldLeader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(2);
    const [follower, newLeader, a, b] = cluster.ids.filter((id) => id !== oldLeader) as [NodeId, NodeId, NodeId, NodeId];

    // {oldLeader, follower} and {newLeader, a, b} are cut apart, except that what newLeader sends the
    // follower is held back, to be delivered at the worst moment.
    cluster.network.setHoldFilter((m) => m.from === newLeader && m.to === follower);
    for (const x of [oldLeader, follower]) {
      for (const y of [newLeader, a, b]) {
        cluster.blockLink(x, y);
        if (!(x === follower && y === newLeader)) cluster.blockLink(y, x);
      }
    }
    cluster.campaign(newLeader);
    cluster.runUntil(() => cluster.status(newLeader).role === Role.Leader, 10 * ELECTION_TIMEOUT_TICKS, "the new leader");
    const contested = cluster.status(newLeader).lastIndex; // its no-op, at the index the old leader writes next

    // The follower's disk becomes slow. The old leader (term T) sends it entry `contested` and then more:
    // the first write is under way while the rest arrive, so their acknowledgements wait in the core.
    cluster.setPersistDelay(follower, 6);
    cluster.propose(1, oldLeader);
    cluster.run(2);
    cluster.propose(1, oldLeader);
    cluster.run(2);
    expect(cluster.node(follower).raft().entry(contested)?.term).toBe(cluster.status(oldLeader).term);

    // Now the new leader's Append (term T+1) arrives: the follower moves on and replaces `contested`
    // with the new leader's no-op, while its first write is still running. Every acknowledgement it
    // sends afterwards must be true of its disk (the checker's Durable Promise).
    cluster.network.setHoldFilter(null);
    cluster.run(3 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.node(follower).raft().entry(contested)?.term).toBe(cluster.status(newLeader).term);
  });

  // Regression scenarios for the spurious elections `make bench` counted (test/sim/README.md): a write
  // that stalls for longer than an election timeout held back the heartbeats queued meanwhile.
  test("a leader whose disk stalls for 3 election timeouts keeps its leadership: no election", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 91, config: { preVote: true, checkQuorum: true } });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(2);
    const term = cluster.status(leader).term;
    cluster.setPersistDelay(leader, 3 * ELECTION_TIMEOUT_TICKS);
    cluster.propose(1, leader);
    cluster.run(4 * ELECTION_TIMEOUT_TICKS);
    for (const id of cluster.ids) expect(cluster.status(id).term).toBe(term);
    expect(cluster.status(leader).role).toBe(Role.Leader);
    cluster.setPersistDelay(leader, null);
    cluster.proposeAndWait(1);
  });

  test("followers whose disks stall for 3 election timeouts keep answering heartbeats: the leader stays", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 92, config: { preVote: true, checkQuorum: true } });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(2);
    const term = cluster.status(leader).term;
    const followers = cluster.ids.filter((id) => id !== leader);
    for (const id of followers) cluster.setPersistDelay(id, 3 * ELECTION_TIMEOUT_TICKS);
    cluster.propose(1, leader);
    cluster.run(4 * ELECTION_TIMEOUT_TICKS);
    for (const id of cluster.ids) expect(cluster.status(id).term).toBe(term);
    expect(cluster.status(leader).role).toBe(Role.Leader);
    for (const id of followers) cluster.setPersistDelay(id, null);
    cluster.proposeAndWait(1);
  });
});
