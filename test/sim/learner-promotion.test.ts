/**
 * Regression (found by the membership scenarios, seed 201): a learner that catches up while a membership
 * change is still pending (here its own add-learner entry, waiting for a majority of voters, then the new
 * leader's no-op) must be promoted once the leader may change the membership again, with no client write
 * to trigger it. The core re-checks its learners after applying entries and on heartbeat answers.
 */
import { describe, expect, test } from "vitest";
import type { NodeId } from "../../src/raft/types.js";
import { SimCluster } from "./cluster.js";
import { learnersSeenBy, votersSeenBy, waitLeaderAmong } from "./scenario-helpers.js";

const ELECTION_TIMEOUT_TICKS = 10;

describe("learner promotion", () => {
  test("a learner that caught up while its addition was pending is promoted without further writes", () => {
    const cluster = new SimCluster({ nodes: 3, spares: 1, seed: 201 });
    const leader = waitLeaderAmong(cluster, cluster.founders);
    cluster.proposeAndWait(3, cluster.founders);
    const [f1, f2] = cluster.founders.filter((id) => id !== leader) as [NodeId, NodeId];
    cluster.crash(f1);
    cluster.crash(f2);
    expect(cluster.changeMembership({ kind: "add-learner", id: "n4", address: "sim:n4" })).toBe(true);
    // The learner receives the whole log, its own addition included, while that cannot commit.
    cluster.runUntil(() => cluster.status("n4").lastIndex === cluster.status(leader).lastIndex, ELECTION_TIMEOUT_TICKS, "n4 to catch up");
    expect(learnersSeenBy(cluster, "n4")).toEqual(["n4"]);

    // A voter returns: the addition commits and every node applies it. No client writes from here on.
    cluster.restart(f1);
    const current = waitLeaderAmong(cluster, [leader, f1, "n4"], 20 * ELECTION_TIMEOUT_TICKS);
    cluster.waitApplied(cluster.status(current).lastIndex, [leader, f1, "n4"]);
    cluster.run(20 * ELECTION_TIMEOUT_TICKS);
    expect(cluster.status(current).matchIndex.get("n4")).toBe(cluster.status(current).lastIndex); // caught up
    expect(votersSeenBy(cluster, current)).toContain("n4"); // FAILS: n4 is still a learner
  });
});
