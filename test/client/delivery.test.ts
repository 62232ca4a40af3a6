import { describe, expect, it } from "vitest";
import type { AckRequest__Output } from "../../src/generated/raftq/v1/AckRequest.js";
import type { Delivery } from "../../src/generated/raftq/v1/Delivery.js";
import type { ExtendLeaseRequest__Output } from "../../src/generated/raftq/v1/ExtendLeaseRequest.js";
import type { NackRequest__Output } from "../../src/generated/raftq/v1/NackRequest.js";
import { useFakeCluster } from "./fake-node.js";

const leased: Delivery = {
  id: 41,
  body: Buffer.from("hello"),
  headers: { "content-type": "text/plain" },
  deliveryCount: 2,
  enqueuedAtMs: 1_700_000_000_000,
  receipt: "r-41-2",
};

describe("deliveries", () => {
  const cluster = useFakeCluster();

  it("dequeues typed deliveries that settle themselves by receipt", async () => {
    const acks: AckRequest__Output[] = [];
    const nacks: NackRequest__Output[] = [];
    const extensions: ExtendLeaseRequest__Output[] = [];
    const node = await cluster.node({
      Dequeue: (call, callback) => {
        expect(call.request).toMatchObject({ queue: "jobs", maxMessages: 5, visibilityTimeoutMs: 1000, waitMs: 20 });
        callback(null, { messages: [leased] });
      },
      Ack: (call, callback) => {
        acks.push(call.request);
        callback(null, { acked: 1, refusedReceipts: [] });
      },
      Nack: (call, callback) => {
        nacks.push(call.request);
        callback(null, { nacked: 0, refusedReceipts: [...call.request.receipts] });
      },
      ExtendLease: (call, callback) => {
        extensions.push(call.request);
        callback(null, { extended: 1, refusedReceipts: [] });
      },
    });
    const client = cluster.client([node.address]);

    const [delivery, ...rest] = await client.dequeue("jobs", { maxMessages: 5, visibilityTimeoutMs: 1000, waitMs: 20 });

    expect(rest).toEqual([]);
    expect(delivery).toMatchObject({ queue: "jobs", id: 41, deliveryCount: 2, receipt: "r-41-2", headers: { "content-type": "text/plain" } });
    expect(delivery?.text()).toBe("hello");
    await expect(delivery?.extendLease(5000)).resolves.toBe(true);
    await expect(delivery?.nack(250)).resolves.toBe(false);
    await expect(delivery?.ack()).resolves.toBe(true);
    expect(acks).toEqual([{ queue: "jobs", ids: [], receipts: ["r-41-2"] }]);
    expect(nacks).toEqual([{ queue: "jobs", ids: [], receipts: ["r-41-2"], delayMs: 250 }]);
    expect(extensions).toEqual([{ queue: "jobs", ids: [], receipts: ["r-41-2"], visibilityTimeoutMs: 5000 }]);
  });

  it("sends string bodies as UTF-8, not base64", async () => {
    const bodies: Buffer[] = [];
    const node = await cluster.node({
      Enqueue: (call, callback) => {
        bodies.push(call.request.body);
        callback(null, { id: 1, duplicate: false });
      },
    });
    const client = cluster.client([node.address]);

    await client.enqueue("jobs", "héllo");
    await client.enqueue("jobs", new Uint8Array([0, 255]));

    expect(bodies[0]?.toString("utf8")).toBe("héllo");
    expect([...(bodies[1] ?? [])]).toEqual([0, 255]);
  });
});
