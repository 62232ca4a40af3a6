/**
 * Membership with real processes: nodes join with --join (as learners, promoted once caught up, through a
 * snapshot since the founders compact their logs early), the cluster grows 3 → 5 and shrinks back to 3
 * under load without losing an acknowledged enqueue, and removing the leader hands leadership over.
 */
import { describe, expect, onTestFinished, test } from "vitest";
import type { StatusResponse__Output } from "../../src/generated/raftq/v1/StatusResponse.js";
import { startCluster, type TestCluster } from "./harness.js";
import { drain, expectNoLossNoDuplicates, Producer } from "./workload.js";

/** Small snapshot thresholds, so a joining node needs a snapshot and not only the log. */
const SNAPSHOT_FLAGS = ["--snapshot-entries", "200", "--retain-entries", "50"];

/** The members the leader reports, as "id:voter|learner", sorted. */
async function membersSeenByLeader(cluster: TestCluster): Promise<string[]> {
  const status = await leaderStatus(cluster);
  return status.members.map((member) => `${member.id}:${member.voter ? "voter" : "learner"}`).sort();
}

/** The Status of whichever live node currently leads. */
async function leaderStatus(cluster: TestCluster): Promise<StatusResponse__Output> {
  return cluster.waitFor(
    async () => {
      for (const node of cluster.liveNodes()) {
        const status = await cluster.statusOf(node);
        if (status?.role === "leader") return status;
      }
      return undefined;
    },
    { timeoutMs: 15_000, what: "a leader" },
  );
}

async function waitForMembers(cluster: TestCluster, expected: readonly string[]): Promise<void> {
  let seen: string[] = [];
  await cluster.waitFor(
    async () => {
      seen = await membersSeenByLeader(cluster);
      return seen.join(",") === [...expected].sort().join(",");
    },
    { timeoutMs: 60_000, what: () => `members ${expected.join(",")} (last seen ${seen.join(",")})` },
  );
}

describe("membership", () => {
  test("3 → 5 → 3 under load: nodes join with --join, catch up through a snapshot, are promoted, then are removed; nothing acknowledged is lost", async () => {
    const cluster = await startCluster({ nodes: 5, founders: 3, extraArgs: SNAPSHOT_FLAGS });
    await cluster.startAll();
    const client = cluster.client({ addresses: cluster.addresses.slice(0, 3) });
    const producer = new Producer((body) => client.enqueue("resize", body), { prefix: "r", concurrency: 8 });
    onTestFinished(() => producer.stop());
    await cluster.waitFor(() => producer.acknowledged.length >= 1_000, { timeoutMs: 60_000, what: "1,000 acknowledged enqueues before the resize" });
    // The leader joins concurrent enqueues into shared log entries, so count compactions, not enqueues:
    // the new nodes must start behind the founders' compacted logs.
    await cluster.waitFor(
      () => ["n1", "n2", "n3"].every((id) => cluster.logLines(id).some((line) => line.includes("compacted the log"))),
      { timeoutMs: 60_000, what: "every founder to compact its log before the resize" },
    );

    await cluster.restart("n4");
    await waitForMembers(cluster, ["n1:voter", "n2:voter", "n3:voter", "n4:voter"]);
    await cluster.restart("n5");
    await waitForMembers(cluster, ["n1:voter", "n2:voter", "n3:voter", "n4:voter", "n5:voter"]);
    // The new nodes were behind the founders' compacted logs: they caught up from snapshots.
    for (const id of ["n4", "n5"]) {
      expect(cluster.logLines(id).some((line) => line.includes("installed a snapshot from the leader")), `${id} installed a snapshot`).toBe(true);
    }
    const grownAt = producer.acknowledged.length;

    // Shrink back: remove the two founders n1 and n2 (whichever leads hands over when it is removed).
    await client.removeMember("n1");
    await waitForMembers(cluster, ["n2:voter", "n3:voter", "n4:voter", "n5:voter"]);
    await client.removeMember("n2");
    await waitForMembers(cluster, ["n3:voter", "n4:voter", "n5:voter"]);
    await cluster.waitFor(() => producer.acknowledged.length >= grownAt + 500, { timeoutMs: 60_000, what: "500 more enqueues after the shrink" });
    await producer.stop();
    await cluster.stop("n1");
    await cluster.stop("n2");

    const survivors = cluster.client({ addresses: [cluster.node("n3").address, cluster.node("n4").address, cluster.node("n5").address] });
    const report = expectNoLossNoDuplicates(producer.sent(), await drain(survivors, "resize"));
    console.log(`resize 3 → 5 → 3: ${report.acknowledged} acknowledged enqueues, all drained once from the final members`);
  }, 240_000);

  test("removing the leader: it keeps leading until the change commits, then hands over and the others carry on", async () => {
    const cluster = await startCluster({ nodes: 3 });
    const leader = await cluster.startAll();
    const client = cluster.client();
    await client.enqueue("handover", "before");
    const members = await client.removeMember(leader.id);
    expect(members.map((member) => member.id).sort()).toEqual(cluster.nodes.map((node) => node.id).filter((id) => id !== leader.id).sort());
    const next = await leaderStatus(cluster);
    expect(next.nodeId).not.toBe(leader.id);
    await client.enqueue("handover", "after");
    expect((await drain(client, "handover")).sort()).toEqual(["after", "before"]);
    // The removed node no longer campaigns: the leader's term stays put for a while.
    const term = next.term;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await leaderStatus(cluster)).term).toBe(term);
  }, 120_000);
});
