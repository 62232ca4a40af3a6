import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isInvalidArgument, isOutcomeUnknown, isQueueFull, isRetryable, RaftqError } from "../../src/client/index.js";
import type { EnqueueRequest__Output } from "../../src/generated/raftq/v1/EnqueueRequest.js";
import { grpcError, useFakeCluster } from "./fake-node.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("retries", () => {
  const cluster = useFakeCluster();

  it("gives every enqueue a random idempotency key unless the caller names one or opts out", async () => {
    const seen: EnqueueRequest__Output[] = [];
    const node = await cluster.node({
      Enqueue: (call, callback) => {
        seen.push(call.request);
        callback(null, { id: seen.length, duplicate: false });
      },
    });
    const client = cluster.client([node.address]);

    await client.enqueue("jobs", "a");
    await client.enqueue("jobs", "b");
    await client.enqueue("jobs", "c", { idempotencyKey: "order-17" });
    await client.enqueue("jobs", "d", { idempotencyKey: false });

    expect(seen[0]?.idempotencyKey).toMatch(UUID);
    expect(seen[1]?.idempotencyKey).toMatch(UUID);
    expect(seen[1]?.idempotencyKey).not.toBe(seen[0]?.idempotencyKey);
    expect(seen[2]?.idempotencyKey).toBe("order-17");
    expect(seen[3]?.idempotencyKey).toBeUndefined();
    expect(seen.map((request) => request.body.toString())).toEqual(["a", "b", "c", "d"]);
  });

  it("retries UNAVAILABLE with the same idempotency key until the cluster answers", async () => {
    const keys: (string | undefined)[] = [];
    const node = await cluster.node({
      Enqueue: (call, callback) => {
        keys.push(call.request.idempotencyKey);
        if (keys.length < 3) callback(grpcError(grpc.status.UNAVAILABLE, "no leader: an election is in progress"));
        else callback(null, { id: 7, duplicate: false });
      },
    });
    const client = cluster.client([node.address]);

    await expect(client.enqueue("jobs", "payload")).resolves.toEqual({ id: 7, duplicate: false });
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(UUID);
  });

  it("gives every message of a batch its own key and keeps them across a retry", async () => {
    const batches: (string | undefined)[][] = [];
    const node = await cluster.node({
      EnqueueBatch: (call, callback) => {
        batches.push(call.request.messages.map((message) => message.idempotencyKey));
        if (batches.length === 1) callback(grpcError(grpc.status.UNAVAILABLE, "leadership lost"));
        else callback(null, { ids: [1, 2], duplicates: [true, false] });
      },
    });
    const client = cluster.client([node.address]);

    const result = await client.enqueueBatch("jobs", [{ body: "a" }, { body: "b", idempotencyKey: "mine" }]);

    expect(result).toEqual({ ids: [1, 2], duplicates: [true, false] });
    expect(batches).toHaveLength(2);
    expect(batches[1]).toEqual(batches[0]);
    expect(batches[0]?.[0]).toMatch(UUID);
    expect(batches[0]?.[1]).toBe("mine");
  });

  it("never retries INVALID_ARGUMENT and reports it as a typed error", async () => {
    let calls = 0;
    const node = await cluster.node({
      Enqueue: (_call, callback) => {
        calls++;
        callback(grpcError(grpc.status.INVALID_ARGUMENT, 'queue name "a b" is invalid'));
      },
    });
    const client = cluster.client([node.address]);

    const error: unknown = await client.enqueue("a b", "x").catch((caught: unknown) => caught);

    expect(calls).toBe(1);
    expect(error).toBeInstanceOf(RaftqError);
    expect(isInvalidArgument(error)).toBe(true);
    expect(isRetryable(error)).toBe(false);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", grpcCode: grpc.status.INVALID_ARGUMENT, message: 'queue name "a b" is invalid' });
  });

  it("never retries RESOURCE_EXHAUSTED (queue full)", async () => {
    let calls = 0;
    const node = await cluster.node({
      Enqueue: (_call, callback) => {
        calls++;
        callback(grpcError(grpc.status.RESOURCE_EXHAUSTED, 'queue "jobs" is full'));
      },
    });
    const client = cluster.client([node.address]);

    await expect(client.enqueue("jobs", "x")).rejects.toSatisfy(isQueueFull);
    expect(calls).toBe(1);
  });

  it("retries DEADLINE_EXCEEDED only for operations safe to repeat", async () => {
    let enqueues = 0;
    let acks = 0;
    const node = await cluster.node({
      Enqueue: (_call, callback) => {
        enqueues++;
        callback(grpcError(grpc.status.DEADLINE_EXCEEDED, "commit timed out; outcome unknown"));
      },
      Ack: (_call, callback) => {
        acks++;
        if (acks === 1) callback(grpcError(grpc.status.DEADLINE_EXCEEDED, "commit timed out; outcome unknown"));
        else callback(null, { acked: 1, refusedReceipts: [] });
      },
    });
    const client = cluster.client([node.address]);

    await expect(client.enqueue("jobs", "x", { idempotencyKey: false })).rejects.toSatisfy(isOutcomeUnknown);
    expect(enqueues).toBe(1);
    await expect(client.ack("jobs", { ids: [1] })).resolves.toEqual({ acked: 1, refusedReceipts: [] });
    expect(acks).toBe(2);
  });

  it("gives up after the overall timeout and says how hard it tried", async () => {
    let calls = 0;
    const node = await cluster.node({
      ListQueues: (_call, callback) => {
        calls++;
        callback(grpcError(grpc.status.UNAVAILABLE, "no quorum"));
      },
    });
    const client = cluster.client([node.address], { timeoutMs: 300 });
    const startedAt = Date.now();

    const error: unknown = await client.listQueues().catch((caught: unknown) => caught);

    expect(isRetryable(error)).toBe(true);
    expect((error as Error).message).toMatch(/^listQueues: no quorum \(gave up after \d+ attempts in \d+ ms\)$/);
    expect(calls).toBeGreaterThan(1);
    expect(Date.now() - startedAt).toBeLessThan(2_000);
  });
});
