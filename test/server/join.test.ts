import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { advertisedAddress, joinCluster } from "../../src/server/join.js";
import { grpcError, startFakeNode, type FakeHandlers, type FakeNode } from "../client/fake-node.js";

const logger = pino({ level: "silent" });
const self = { id: "n4", address: "127.0.0.1:7004" };

describe("joinCluster", () => {
  const nodes: FakeNode[] = [];
  afterEach(() => {
    for (const node of nodes.splice(0)) node.stop();
  });

  async function node(handlers: FakeHandlers): Promise<FakeNode> {
    const started = await startFakeNode(handlers);
    nodes.push(started);
    return started;
  }

  it("retries while another change is in progress, then resolves with the members", async () => {
    let calls = 0;
    const cluster = await node({
      AddMember: (call, callback) => {
        calls++;
        if (calls < 3) return callback(grpcError(grpc.status.FAILED_PRECONDITION, "a membership change is still in progress"));
        callback(null, { members: [{ id: call.request.id, address: call.request.address, voter: false, matchIndex: 0 }] });
      },
    });

    const members = await joinCluster(cluster.address, self, new AbortController().signal, { logger });

    expect(calls).toBe(3);
    expect(members).toEqual([{ ...self, voter: false, matchIndex: 0 }]);
  });

  it("gives up at once when the cluster refuses for good", async () => {
    const cluster = await node({
      AddMember: (_call, callback) => callback(grpcError(grpc.status.ALREADY_EXISTS, 'node id "n4" is already a member at 10.0.0.9:7004')),
    });

    await expect(joinCluster(cluster.address, self, new AbortController().signal, { logger })).rejects.toThrow(
      /refused to add node n4 at 127.0.0.1:7004: node id "n4" is already a member/,
    );
  });

  it("gives up after its timeout when the cluster never accepts", async () => {
    const cluster = await node({ AddMember: (_call, callback) => callback(grpcError(grpc.status.FAILED_PRECONDITION, "still busy")) });

    await expect(joinCluster(cluster.address, self, new AbortController().signal, { logger, timeoutMs: 300 })).rejects.toThrow(/within 300 ms/);
  });

  it("stops when its signal aborts", async () => {
    const cluster = await node({ AddMember: (_call, callback) => callback(grpcError(grpc.status.FAILED_PRECONDITION, "still busy")) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);

    await expect(joinCluster(cluster.address, self, controller.signal, { logger })).rejects.toThrow(/cancelled/);
  });
});

describe("advertisedAddress", () => {
  const host = (): string => "node4.example";

  it("uses --advertise when given, the listen address otherwise, and the host name for a wildcard", () => {
    expect(advertisedAddress("0.0.0.0:7004", "10.0.0.4:7004", host)).toBe("10.0.0.4:7004");
    expect(advertisedAddress("127.0.0.1:7004", undefined, host)).toBe("127.0.0.1:7004");
    expect(advertisedAddress("0.0.0.0:7004", undefined, host)).toBe("node4.example:7004");
    expect(advertisedAddress("[::]:7004", undefined, host)).toBe("node4.example:7004");
  });

  it("refuses an invalid --advertise", () => {
    expect(() => advertisedAddress("0.0.0.0:7004", "node4", host)).toThrow(/--advertise: address "node4" is invalid/);
  });
});
