/**
 * Log replication scenarios, among them the two classic hard cases: an old leader's uncommitted entries
 * being discarded, and Figure 8 of the Raft paper. The safety checker runs after every step.
 */
import { describe, expect, test } from "vitest";
import { MessageType, Role, type NodeId } from "../../src/raft/types.js";
import { isProposal } from "./payload.js";
import { SimCluster } from "./cluster.js";

const ELECTION_TIMEOUT_TICKS = 10;

/** The payloads every node in `ids` applied, which must be one and the same list. */
function agreedAppliedLog(cluster: SimCluster, ids: readonly NodeId[] = cluster.ids): readonly string[] {
  const logs = ids.map((id) => cluster.node(id).applied());
  for (const log of logs) expect(log).toEqual(logs[0]);
  return logs[0]!;
}

describe("replication", () => {
  test("basic agreement: every proposal is applied by every node, in one order", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 11 });
    cluster.waitAgreedLeader();
    for (let round = 0; round < 10; round++) cluster.proposeAndWait(1);
    const log = agreedAppliedLog(cluster);
    expect(log.filter(isProposal)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i + 1}`));
  });

  test("agreement with one follower down, which catches up after restarting", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 12 });
    const leader = cluster.waitAgreedLeader();
    const follower = cluster.ids.find((id) => id !== leader)!;
    cluster.crash(follower);
    cluster.proposeAndWait(20); // a majority (leader + the other follower) suffices
    cluster.restart(follower);
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids);
    agreedAppliedLog(cluster);
  });

  test("no commitment without a majority", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 13 });
    const leader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(1);
    const followers = cluster.ids.filter((id) => id !== leader);
    for (const id of followers.slice(0, 3)) cluster.crash(id);
    const commitBefore = cluster.status(leader).commitIndex;

    const { result } = cluster.propose(1);
    expect(result.ok).toBe(true);
    cluster.run(ELECTION_TIMEOUT_TICKS / 2);
    // Two of five hold the entry: nobody may call it committed.
    for (const id of cluster.liveIds()) expect(cluster.status(id).commitIndex).toBe(commitBefore);

    // One more voter back makes three: the entry commits.
    cluster.restart(followers[0]!);
    const leaderNow = cluster.waitAgreedLeader(10 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(1);
    expect(cluster.status(leaderNow).commitIndex).toBeGreaterThan(commitBefore);
  });

  test("concurrent proposals: many clients in one tick, one order everywhere", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 14 });
    const leader = cluster.waitAgreedLeader();
    const accepted: string[] = [];
    for (let round = 0; round < 20; round++) {
      for (let client = 0; client < 5; client++) {
        const { result, payloads } = cluster.propose(1 + ((round + client) % 7));
        expect(result.ok).toBe(true);
        accepted.push(...payloads);
      }
      // A follower turns proposals away and names the leader.
      const follower = cluster.ids.find((id) => id !== leader)!;
      const refused = cluster.propose(1, follower).result;
      expect(refused).toMatchObject({ ok: false, reason: "not-leader", leader });
      cluster.step();
    }
    cluster.waitApplied(cluster.status(leader).lastIndex, cluster.ids, 500);
    const applied = agreedAppliedLog(cluster).filter(isProposal);
    expect(applied).toEqual(accepted); // each exactly once, in proposal order
  });

  test("a partitioned old leader rejoins: its uncommitted entries are discarded", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 15 });
    const oldLeader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(2);
    cluster.isolate(oldLeader);
    const lost = cluster.propose(5, oldLeader);
    expect(lost.result.ok).toBe(true); // accepted, but it can never reach a majority

    const majority = cluster.ids.filter((id) => id !== oldLeader);
    cluster.runUntil(() => majority.some((id) => cluster.status(id).role === Role.Leader), 10 * ELECTION_TIMEOUT_TICKS, "a new leader");
    cluster.proposeAndWait(5, majority);

    cluster.heal();
    const last = cluster.status(cluster.leader()!).lastIndex;
    cluster.waitApplied(last, cluster.ids, 300);
    const log = agreedAppliedLog(cluster);
    for (const payload of lost.payloads) expect(log).not.toContain(payload);
    expect(cluster.status(oldLeader).role).toBe(Role.Follower);
  });

  test("fast backup: repairing long divergent logs takes a handful of round trips", () => {
    const cluster = new SimCluster({ nodes: 5, seed: 16, config: { maxEntriesPerAppend: 64, maxInflightAppends: 8 } });
    const oldLeader = cluster.waitAgreedLeader();
    cluster.proposeAndWait(10);
    const [partner, ...majority] = cluster.ids.filter((id) => id !== oldLeader) as [NodeId, ...NodeId[]];

    // The old leader and its partner take 1500 entries that can never commit, while the majority elects
    // a leader and commits 1500 entries of its own at the same indexes.
    cluster.partition([oldLeader, partner], majority);
    expect(cluster.propose(1500, oldLeader).result.ok).toBe(true);
    cluster.runUntil(() => majority.some((id) => cluster.status(id).role === Role.Leader), 20 * ELECTION_TIMEOUT_TICKS, "a majority leader");
    cluster.proposeAndWait(1500, majority, 1000);
    for (const id of [oldLeader, partner]) expect(cluster.status(id).lastIndex).toBeGreaterThan(1000);
    // A fresh leader (by transfer, inside the majority) starts probing the others at its own log end,
    // far past where the divergent logs part from it.
    const majorityLeader = cluster.leader()!;
    const successor = majority.find((id) => id !== majorityLeader)!;
    expect(cluster.transferLeadership(successor).ok).toBe(true);
    cluster.runUntil(() => cluster.status(successor).role === Role.Leader, 5 * ELECTION_TIMEOUT_TICKS, `${successor} to take over`);

    // Heal: both divergent logs are repaired; count the rejected Appends on the way.
    const rejections = cluster.countRejectedAppends();
    cluster.heal();
    const leader = cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(1, cluster.ids, 1000);
    expect(majority).toContain(leader);
    // Backing up one entry per rejection would take over a thousand round trips per divergent follower;
    // skipping a whole term per round trip takes a few.
    expect(rejections.count).toBeGreaterThan(0);
    expect(rejections.count).toBeLessThan(20);
    for (const id of [oldLeader, partner]) expect(cluster.status(id).lastIndex).toBe(cluster.status(leader).lastIndex);
    expect(agreedAppliedLog(cluster).length).toBeGreaterThan(1500);
  });

  test("every node restarts from its persisted state and the cluster carries on", () => {
    const cluster = new SimCluster({ nodes: 3, seed: 17 });
    cluster.waitAgreedLeader();
    cluster.proposeAndWait(25);
    const before = new Map(cluster.ids.map((id) => [id, cluster.status(id)]));
    for (const id of cluster.ids) cluster.crash(id);
    cluster.run(5);
    for (const id of cluster.ids) cluster.restart(id);
    for (const id of cluster.ids) {
      // Term, vote and the log come back exactly (the checker compares the whole disk as well).
      expect(cluster.status(id).term).toBe(before.get(id)!.term);
      expect(cluster.status(id).vote).toBe(before.get(id)!.vote);
      expect(cluster.status(id).lastIndex).toBe(before.get(id)!.lastIndex);
    }
    cluster.waitAgreedLeader(10 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(5);
    // The state machines came back from their own disks and replayed the rest: nothing lost, nothing doubled.
    const log = agreedAppliedLog(cluster).filter(isProposal);
    expect(log).toEqual(Array.from({ length: 30 }, (_, i) => `p${i + 1}`));
  });
});

/**
 * Figure 8 of the Raft paper, built step by step on five nodes (S1..S5 are roles, bound to whichever node
 * plays them). An entry of an old term that sits on a majority must not be committed by counting replicas:
 * a later leader may still overwrite it.
 */
describe("Figure 8 of the Raft paper", () => {
  /** Steps (a)–(c): returns the roles and the contested index, with the old entry on a majority and uncommitted. */
  function buildFigure8(seed: number) {
    const cluster = new SimCluster({ nodes: 5, seed, config: { maxEntriesPerAppend: 1 } });
    const s1 = cluster.waitAgreedLeader();
    cluster.proposeAndWait(1);
    const [s2, ...rest] = cluster.ids.filter((id) => id !== s1) as [NodeId, NodeId, NodeId, NodeId];

    // (a) S1 leads in term T1 and replicates entry i only to S2.
    cluster.partition([s1, s2], rest);
    const { result, payloads } = cluster.propose(1, s1);
    if (!result.ok) throw new Error("S1 must accept the proposal");
    const i = result.firstIndex;
    const t1 = result.term;
    cluster.runUntil(() => cluster.node(s2).raft().entry(i)?.term === t1, 10, "S2 to receive (i, T1)");

    // (b) S1 crashes; S5 (whoever wins among the other three) is elected in term T2 and appends its
    // no-op at index i, which reaches nobody.
    cluster.crash(s1);
    cluster.network.setDropFilter((m) => rest.includes(m.from) && m.type === MessageType.Append && m.entries.length > 0);
    cluster.runUntil(() => rest.some((id) => cluster.status(id).role === Role.Leader), 20 * ELECTION_TIMEOUT_TICKS, "S5 to be elected");
    const s5 = rest.find((id) => cluster.status(id).role === Role.Leader)!;
    const t2 = cluster.status(s5).term;
    expect(cluster.node(s5).raft().entry(i)).toMatchObject({ index: i, term: t2 });
    const [s3, s4] = rest.filter((id) => id !== s5) as [NodeId, NodeId];
    expect(cluster.node(s3).raft().lastIndex()).toBe(i - 1);

    // (c) S5 is cut off; S1 restarts and, with S2 and S3, leads term T3. It brings S3 the old entry
    // (i, T1), but S3 never gets the T3 entry behind it. (S3 cannot win: S1's and S2's logs are newer.)
    cluster.heal();
    cluster.partition([s1, s2, s3], [s5], [s4]);
    cluster.network.setDropFilter(
      (m) => [s1, s2].includes(m.from) && m.to === s3 && m.type === MessageType.Append && m.entries.some((e) => e.index > i) && cluster.node(s3).raft().entry(i)?.term === t1,
    );
    cluster.restart(s1);
    cluster.runUntil(() => [s1, s2].some((id) => cluster.status(id).role === Role.Leader), 20 * ELECTION_TIMEOUT_TICKS, "S1 (or S2) to lead");
    const leaderC = [s1, s2].find((id) => cluster.status(id).role === Role.Leader)!;
    const t3 = cluster.status(leaderC).term;
    expect(t3).toBeGreaterThan(t2);
    cluster.runUntil(() => cluster.node(s3).raft().entry(i)?.term === t1, 10 * ELECTION_TIMEOUT_TICKS, "S3 to receive (i, T1)");
    return { cluster, s1, s2, s3, s4, s5, i, t1, t2, t3, leaderC, oldPayload: payloads[0]! };
  }

  test("an old-term entry on a majority is not committed, and a newer leader overwrites it", () => {
    const { cluster, s1, s2, s3, s4, s5, i, t1, t2, leaderC, oldPayload } = buildFigure8(21);
    // (i, T1) is on S1, S2 and S3: a majority of five. Counting replicas would commit it; Raft must not.
    cluster.run(3 * ELECTION_TIMEOUT_TICKS);
    for (const id of [s1, s2, s3]) expect(cluster.node(id).raft().entry(i)?.term).toBe(t1);
    for (const id of cluster.liveIds()) expect(cluster.status(id).commitIndex).toBeLessThan(i);

    // (d) The T3 leader crashes (its partner is cut off); S5 returns and wins with S3 and S4, whose logs
    // are older than its (i, T2). S3 and S4 cannot elect each other: the link between them is down.
    // (The filter stays: Appends the crashed leader already sent are still in flight.)
    const partner = leaderC === s1 ? s2 : s1;
    cluster.crash(leaderC);
    cluster.heal();
    cluster.partition([s5, s3, s4], [partner]);
    cluster.partition([s3], [s4]);
    cluster.runUntil(() => cluster.status(s5).role === Role.Leader, 30 * ELECTION_TIMEOUT_TICKS, "S5 to lead again");
    cluster.waitApplied(i, [s5, s3, s4], 100);
    // S5's entry at i won: (i, T1) was overwritten on S3 and is committed nowhere.
    expect(cluster.node(s3).raft().entry(i)?.term).toBe(t2);
    expect(cluster.checker.appliedAt(i)).toBe(`${t2}:noop`);

    // Everyone back: S1 and S2 drop their (i, T1) too, and the old proposal was never applied anywhere.
    cluster.heal();
    cluster.restart(leaderC);
    cluster.waitAgreedLeader(20 * ELECTION_TIMEOUT_TICKS);
    cluster.proposeAndWait(1, cluster.ids, 300);
    for (const id of cluster.ids) {
      expect(cluster.node(id).raft().entry(i)?.term).toBe(t2);
      expect(cluster.node(id).applied()).not.toContain(oldPayload);
    }
  });

  test("once an entry of the current term reaches a majority, the old entry commits with it", () => {
    const { cluster, s3, i, t1, t3, leaderC } = buildFigure8(21);
    // (e) Let S3 receive the T3 entry as well; the first commit that covers i must also cover i + 1.
    cluster.network.setDropFilter(null);
    let firstCommitCoveringI = 0;
    cluster.runUntil(
      () => {
        const highest = Math.max(...cluster.liveIds().map((id) => cluster.status(id).commitIndex));
        if (firstCommitCoveringI === 0 && highest >= i) firstCommitCoveringI = highest;
        return firstCommitCoveringI > 0;
      },
      10 * ELECTION_TIMEOUT_TICKS,
      "the contested entry to commit",
    );
    expect(firstCommitCoveringI).toBeGreaterThanOrEqual(i + 1);
    expect(cluster.node(leaderC).raft().entry(i + 1)?.term).toBe(t3);
    expect(cluster.node(s3).raft().entry(i)?.term).toBe(t1);
    expect(cluster.checker.appliedAt(i) ?? `${t1}:pending`).toMatch(new RegExp(`^${t1}:`));
  });
});
