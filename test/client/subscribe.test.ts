import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isNotFound, type Delivery } from "../../src/client/index.js";
import type { Delivery as WireDelivery } from "../../src/generated/raftq/v1/Delivery.js";
import type { SubscribeRequest__Output } from "../../src/generated/raftq/v1/SubscribeRequest.js";
import { grpcError, useFakeCluster, waitFor } from "./fake-node.js";

function wire(id: number): WireDelivery {
  return { id, body: Buffer.from(`m${id}`), headers: {}, deliveryCount: 1, enqueuedAtMs: 1, receipt: `r${id}` };
}

describe("subscribe", () => {
  const cluster = useFakeCluster();

  it("iterates deliveries and cancels the stream on break", async () => {
    const requests: SubscribeRequest__Output[] = [];
    let cancelled = false;
    const node = await cluster.node({
      Subscribe: (call) => {
        requests.push(call.request);
        call.on("cancelled", () => (cancelled = true));
        for (const id of [1, 2, 3]) call.write(wire(id));
      },
    });
    const client = cluster.client([node.address]);

    const seen: number[] = [];
    for await (const delivery of client.subscribe("jobs", { prefetch: 5, visibilityTimeoutMs: 2000 })) {
      seen.push(delivery.id);
      if (seen.length === 2) break;
    }

    expect(seen).toEqual([1, 2]);
    expect(requests).toEqual([{ queue: "jobs", prefetch: 5, visibilityTimeoutMs: 2000, packDeliveries: true }]);
    await waitFor(() => cancelled, "the server to see the stream cancelled");
  });

  it("yields every delivery of a packed frame, in order", async () => {
    const node = await cluster.node({
      Subscribe: (call) => {
        call.write({ ...wire(1), more: [wire(2), wire(3)] });
        call.write(wire(4));
      },
    });
    const client = cluster.client([node.address]);

    const seen: string[] = [];
    for await (const delivery of client.subscribe("jobs")) {
      seen.push(`${delivery.id}:${delivery.receipt}:${delivery.text()}`);
      if (seen.length === 4) break;
    }

    expect(seen).toEqual(["1:r1:m1", "2:r2:m2", "3:r3:m3", "4:r4:m4"]);
  });

  it("asks which node leads before it subscribes, so its stream is not relayed through a follower", async () => {
    const log: string[] = [];
    const leader = await cluster.node({
      Subscribe: (call) => {
        log.push("leader");
        call.write(wire(1));
      },
    });
    const follower = await cluster.node({
      Status: (_call, callback) => callback(null, { nodeId: "n2", role: "follower", leaderId: "n1", leaderAddress: leader.address }),
      Subscribe: (call) => {
        log.push("follower");
        call.write(wire(1));
      },
    });
    const client = cluster.client([follower.address]);

    for await (const delivery of client.subscribe("jobs")) {
      expect(delivery.id).toBe(1);
      break;
    }

    expect(log).toEqual(["leader"]);
  });

  it("resubscribes to the leader named when the stream breaks", async () => {
    const log: string[] = [];
    const leader = await cluster.node({
      Subscribe: (call) => {
        log.push("leader");
        call.write(wire(2));
      },
    });
    const follower = await cluster.node({
      Subscribe: (call) => {
        log.push("follower");
        call.write(wire(1));
        call.emit("error", grpcError(grpc.status.UNAVAILABLE, "leadership changed", leader.address));
      },
    });
    const client = cluster.client([follower.address]);
    const subscription = client.subscribe("jobs");

    const first = await subscription.next();
    const second = await subscription.next();
    await subscription.return();

    expect([first.value?.id, second.value?.id]).toEqual([1, 2]);
    expect(log).toEqual(["follower", "leader"]);
    await expect(subscription.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("ends a pending next() when its AbortSignal aborts", async () => {
    let subscribed = false;
    const node = await cluster.node({
      Subscribe: () => {
        subscribed = true;
      },
    });
    const client = cluster.client([node.address]);
    const abort = new AbortController();
    const subscription = client.subscribe("jobs", { signal: abort.signal });

    const pending = subscription.next();
    await waitFor(() => subscribed, "the subscription to reach the server");
    abort.abort();

    await expect(pending).resolves.toEqual({ done: true, value: undefined });
  });

  it("throws what cannot be fixed by resubscribing", async () => {
    const node = await cluster.node({
      Subscribe: (call) => call.emit("error", grpcError(grpc.status.NOT_FOUND, 'no queue "ghost"')),
    });
    const client = cluster.client([node.address]);

    const consume = async (): Promise<Delivery[]> => {
      const all: Delivery[] = [];
      for await (const delivery of client.subscribe("ghost")) all.push(delivery);
      return all;
    };

    await expect(consume()).rejects.toSatisfy(isNotFound);
  });

  it("ends when the client closes", async () => {
    let subscribed = false;
    const node = await cluster.node({
      Subscribe: () => {
        subscribed = true;
      },
    });
    const client = cluster.client([node.address]);
    const pending = client.subscribe("jobs").next();
    await waitFor(() => subscribed, "the subscription to reach the server");

    client.close();

    await expect(pending).resolves.toEqual({ done: true, value: undefined });
  });
});
