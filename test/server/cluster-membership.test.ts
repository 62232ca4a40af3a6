import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RaftqClient } from "../../src/client/index.js";
import { NodeError, NodeErrorCode } from "../../src/node/errors.js";
import { changeMembership, type MembershipChange } from "../../src/raft/membership.js";
import { Role, type Member, type Membership, type NodeId, type RaftStatus } from "../../src/raft/types.js";
import { clusterServiceHandlers, type ClusterNode } from "../../src/server/cluster-service.js";
import { CLUSTER_SERVICE, LeaderForwarder } from "../../src/server/leader-forwarder.js";

/** A Raft node as the Cluster service sees it: a membership that changes when a change is proposed. */
class FakeClusterNode implements ClusterNode {
  readonly proposals: MembershipChange[] = [];
  /** When set, the next proposals fail with it (as the core refuses a change), `refusals` times at most. */
  refusal: NodeError | null = null;
  refusals = Infinity;

  constructor(
    readonly id: NodeId,
    public leader: NodeId,
    public members: Member[],
  ) {}

  status(): RaftStatus {
    const status: Partial<RaftStatus> = {
      id: this.id,
      role: this.isLeader() ? Role.Leader : Role.Follower,
      term: 2,
      vote: "",
      leader: this.leader,
      commitIndex: 9,
      appliedIndex: 9,
      lastIndex: 9,
      matchIndex: new Map([["n1", 9]]),
    };
    return status as RaftStatus;
  }

  isLeader(): boolean {
    return this.leader === this.id;
  }

  leaderId(): NodeId {
    return this.leader;
  }

  membership(): Membership {
    return { members: this.members };
  }

  transferLeadership(): { ok: false; reason: string } {
    return { ok: false, reason: "not in this test" };
  }

  async proposeMembershipChange(change: MembershipChange): Promise<void> {
    this.proposals.push(change);
    if (this.refusal && this.refusals-- > 0) throw this.refusal;
    const next = changeMembership(this.membership(), change);
    if (typeof next === "string") throw new NodeError(NodeErrorCode.InvalidMembershipChange, next);
    this.members = [...next.members];
  }
}

const n1: Member = { id: "n1", address: "127.0.0.1:7001", voter: true };
const n2: Member = { id: "n2", address: "127.0.0.1:7002", voter: true };

describe("Cluster membership service", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** Serves the Cluster service of `node` on a port the OS picks; returns its address. */
  async function serve(node: FakeClusterNode): Promise<string> {
    const forwarder = new LeaderForwarder(node, new Map(), new Map());
    const shutdown = new AbortController();
    const server = new grpc.Server();
    server.addService(CLUSTER_SERVICE, clusterServiceHandlers(node, forwarder, shutdown.signal));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    cleanups.push(() => {
      shutdown.abort();
      forwarder.close();
      server.forceShutdown();
    });
    return `127.0.0.1:${port}`;
  }

  function client(address: string, timeoutMs = 2_000): RaftqClient {
    const made = connect({ addresses: [address], timeoutMs, initialBackoffMs: 2, maxBackoffMs: 20 });
    cleanups.push(() => made.close());
    return made;
  }

  it("adds a learner and answers with the members once applied", async () => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    const sdk = client(await serve(leader));

    const members = await sdk.addMember("n3", "127.0.0.1:7003");

    expect(leader.proposals).toEqual([{ kind: "add-learner", id: "n3", address: "127.0.0.1:7003" }]);
    expect(members.map(({ id, voter }) => ({ id, voter }))).toEqual([
      { id: "n1", voter: true },
      { id: "n2", voter: true },
      { id: "n3", voter: false },
    ]);
  });

  it("treats adding a member again at the same address as done, without a new change", async () => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    const sdk = client(await serve(leader));

    await sdk.addMember("n2", n2.address);

    expect(leader.proposals).toEqual([]);
  });

  it.each([
    ["an id in use at another address", "n2", "127.0.0.1:7999", "ALREADY_EXISTS"],
    ["an address in use by another id", "n9", n2.address, "ALREADY_EXISTS"],
    ["an invalid id", "n 3", "127.0.0.1:7003", "INVALID_ARGUMENT"],
    ["an invalid address", "n3", "127.0.0.1", "INVALID_ARGUMENT"],
  ])("refuses to add %s", async (_case, id, address, code) => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    const sdk = client(await serve(leader));

    await expect(sdk.addMember(id, address)).rejects.toMatchObject({ code });
    expect(leader.proposals).toEqual([]);
  });

  const pending = () => new NodeError(NodeErrorCode.MembershipChangePending, "a membership change is still in progress: retry once it is applied");

  it("waits for a change under way (a learner's promotion) to be applied, then makes its own", async () => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    leader.refusal = pending();
    leader.refusals = 3;
    const sdk = client(await serve(leader));

    const members = await sdk.removeMember("n2");

    expect(members.map((member) => member.id)).toEqual(["n1"]);
    expect(leader.proposals).toHaveLength(4);
  });

  it("answers FAILED_PRECONDITION when the change under way is not applied before the call's deadline", async () => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    leader.refusal = pending();
    const sdk = client(await serve(leader), 600);

    await expect(sdk.addMember("n3", "127.0.0.1:7003")).rejects.toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("in progress") });
    expect(leader.proposals.length).toBeGreaterThan(1);
  });

  it("removes a member, and refuses an unknown one or the last voter", async () => {
    const leader = new FakeClusterNode("n1", "n1", [n1, n2]);
    const sdk = client(await serve(leader));

    const members = await sdk.removeMember("n2");
    expect(members.map((member) => member.id)).toEqual(["n1"]);
    await expect(sdk.removeMember("n2")).rejects.toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("not a member") });
    await expect(sdk.removeMember("n1")).rejects.toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("without a voter") });
  });

  it("forwards a change sent to a follower to the leader the membership names", async () => {
    const leader = new FakeClusterNode("n1", "n1", []);
    const leaderAddress = await serve(leader);
    leader.members = [{ ...n1, address: leaderAddress }, n2];
    const follower = new FakeClusterNode("n2", "n1", leader.members);
    const sdk = client(await serve(follower));

    await sdk.addMember("n3", "127.0.0.1:7003");

    expect(follower.proposals).toEqual([]);
    expect(leader.proposals).toEqual([{ kind: "add-learner", id: "n3", address: "127.0.0.1:7003" }]);
  });

  it("reports the applied membership in Status, learners as non-voters", async () => {
    const node = new FakeClusterNode("n1", "n1", [n1, { id: "n3", address: "127.0.0.1:7003", voter: false }]);
    const sdk = client(await serve(node));

    const status = await sdk.status();

    expect(status.members).toEqual([
      { id: "n1", address: n1.address, voter: true, matchIndex: 9 },
      { id: "n3", address: "127.0.0.1:7003", voter: false, matchIndex: 0 },
    ]);
    expect(status.leaderAddress).toBe(n1.address);
  });
});
