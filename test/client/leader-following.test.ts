import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isNotFound } from "../../src/client/index.js";
import type { ListQueuesResponse } from "../../src/generated/raftq/v1/ListQueuesResponse.js";
import type { FakeHandlers } from "./fake-node.js";
import { deadAddress, grpcError, leaderMetadata, useFakeCluster } from "./fake-node.js";

/** A Queue.ListQueues that records each call under `name` and answers via `answer`. */
function listQueues(log: string[], name: string, answer: (callback: grpc.sendUnaryData<ListQueuesResponse>) => void): FakeHandlers {
  return {
    ListQueues: (_call, callback) => {
      log.push(name);
      answer(callback);
    },
  };
}

describe("leader following", () => {
  const cluster = useFakeCluster();

  it("goes straight to the leader named in the raftq-leader metadata of an answer", async () => {
    const log: string[] = [];
    const leader = await cluster.node(listQueues(log, "leader", (callback) => callback(null, { queues: ["a"] })));
    const follower = await cluster.node(
      listQueues(log, "follower", (callback) => callback(null, { queues: ["a"] }, leaderMetadata(leader.address))),
    );
    const client = cluster.client([follower.address, leader.address]);

    await client.listQueues();
    expect(client.leaderAddress).toBe(leader.address);
    await client.listQueues();
    await client.listQueues();

    expect(log).toEqual(["follower", "leader", "leader"]);
  });

  it("retries on the leader named by an UNAVAILABLE error", async () => {
    const log: string[] = [];
    const leader = await cluster.node(listQueues(log, "leader", (callback) => callback(null, { queues: ["jobs"] })));
    const follower = await cluster.node(
      listQueues(log, "follower", (callback) => callback(grpcError(grpc.status.UNAVAILABLE, "forwarding failed", leader.address))),
    );
    const client = cluster.client([follower.address]);

    await expect(client.listQueues()).resolves.toEqual(["jobs"]);
    expect(log).toEqual(["follower", "leader"]);
  });

  it("learns the leader from a non-retryable error too, without retrying it", async () => {
    const log: string[] = [];
    const leader = await cluster.node(listQueues(log, "leader", (callback) => callback(null, { queues: [] })));
    const follower = await cluster.node({
      GetQueueStats: (_call, callback) => {
        log.push("follower");
        callback(grpcError(grpc.status.NOT_FOUND, 'no queue "ghost"', leader.address));
      },
    });
    const client = cluster.client([follower.address, leader.address]);

    await expect(client.queueStats("ghost")).rejects.toSatisfy(isNotFound);
    await client.listQueues();
    expect(log).toEqual(["follower", "leader"]);
  });

  it("falls back to the other addresses in turn when a node cannot be reached", async () => {
    const log: string[] = [];
    const dead = await deadAddress();
    const alive = await cluster.node(listQueues(log, "alive", (callback) => callback(null, { queues: ["q"] })));
    const client = cluster.client([dead, alive.address]);

    await expect(client.listQueues()).resolves.toEqual(["q"]);
    expect(log).toEqual(["alive"]);
  });

  it("drops a leader that stopped answering and finds the new one", async () => {
    const log: string[] = [];
    const newLeader = await cluster.node(listQueues(log, "new leader", (callback) => callback(null, { queues: [] })));
    const oldLeader = await cluster.node(
      listQueues(log, "old leader", (callback) => callback(null, { queues: [] }, leaderMetadata(oldLeader.address))),
    );
    const client = cluster.client([oldLeader.address, newLeader.address]);
    await client.listQueues();
    expect(client.leaderAddress).toBe(oldLeader.address);

    oldLeader.stop();
    await client.listQueues();

    expect(log).toEqual(["old leader", "new leader"]);
  });

  it("learns the leader from Cluster.Status and reports unreachable nodes in clusterStatus", async () => {
    const dead = await deadAddress();
    const status = { nodeId: "n1", role: "leader", term: 3, leaderId: "n1", leaderAddress: "", commitIndex: 10, appliedIndex: 9, members: [] };
    const node = await cluster.node({
      Status: (_call, callback) => callback(null, { ...status, leaderAddress: node.address }),
    });
    const client = cluster.client([dead, node.address]);

    const reports = await client.clusterStatus();

    expect(reports).toHaveLength(2);
    expect(reports[0]).toMatchObject({ address: dead, reachable: false, error: { code: "UNAVAILABLE" } });
    expect(reports[1]).toMatchObject({ address: node.address, reachable: true, status: { nodeId: "n1", role: "leader", commitIndex: 10 } });
    expect(client.leaderAddress).toBe(node.address);
  });
});
