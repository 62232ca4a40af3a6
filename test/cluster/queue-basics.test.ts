/**
 * The queue semantics of queue.proto, end to end on a real three-node cluster: forwarding between nodes,
 * FIFO order, leases and redelivery, nack, dead-lettering, idempotency, delays, long polling, Subscribe's
 * prefetch window, lease extension, stats, batches and the streaming publisher. The tests share one
 * cluster and each works on queues of its own.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isInvalidArgument, isQueueFull, RaftqError, type Delivery } from "../../src/client/index.js";
import type { Delivery__Output } from "../../src/generated/raftq/v1/Delivery.js";
import { useSharedCluster } from "./harness.js";
import { callUnary, expectOk } from "./raw-grpc.js";
import { drain } from "./workload.js";

const TEST_TIMEOUT_MS = 30_000;

/** Bodies of deliveries as text. */
function texts(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((delivery) => delivery.text());
}

/** The RaftqError a call failed with (fails the test if it succeeded or threw something else). */
async function rejection(promise: Promise<unknown>): Promise<RaftqError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RaftqError) return error;
    throw error;
  }
  return expect.fail("expected the call to fail, but it succeeded");
}

describe("queue basics", () => {
  const cluster = useSharedCluster();

  it("serves a message enqueued through one follower and dequeued through the other, naming the leader", async () => {
    const leader = await cluster().leader();
    const [first, second] = await cluster().followers();
    if (!first || !second) return expect.fail("a three-node cluster has two followers");
    const viaFirst = cluster().stubs(first.id).queue;
    const viaSecond = cluster().stubs(second.id).queue;

    const enqueued = await callUnary(viaFirst, viaFirst.Enqueue, {
      queue: "relay",
      body: Buffer.from("hello"),
      headers: { "content-type": "text/plain" },
    });
    const dequeued = await callUnary(viaSecond, viaSecond.Dequeue, { queue: "relay", maxMessages: 10 });

    const { id } = expectOk(enqueued);
    const [message, ...more] = expectOk(dequeued).messages;
    expect(more).toEqual([]);
    expect(message).toMatchObject({ id, deliveryCount: 1, headers: { "content-type": "text/plain" } });
    expect(message?.body.toString()).toBe("hello");
    expect(enqueued.leader).toBe(leader.address);
    expect(dequeued.leader).toBe(leader.address);
  }, TEST_TIMEOUT_MS);

  it("delivers messages in the order they were enqueued, ids increasing", async () => {
    const client = cluster().client();
    const sent = Array.from({ length: 20 }, (_, n) => `m${n}`);
    const ids: number[] = [];
    for (const body of sent) ids.push((await client.enqueue("fifo", body)).id);

    const received: Delivery[] = [];
    for (let round = 0; round < 10 && received.length < sent.length; round++) {
      received.push(...(await client.dequeue("fifo", { maxMessages: 7 })));
    }

    expect(texts(received)).toEqual(sent);
    expect(received.map((delivery) => delivery.id)).toEqual(ids);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  }, TEST_TIMEOUT_MS);

  it("redelivers a message whose lease ran out, with delivery_count 2, and refuses the old receipt", async () => {
    const client = cluster().client();
    await client.enqueue("redelivery", "work");

    const leasedAt = Date.now();
    const [first] = await client.dequeue("redelivery", { visibilityTimeoutMs: 500 });
    const [second] = await client.dequeue("redelivery", { waitMs: 10_000 });
    const redeliveredAfterMs = Date.now() - leasedAt;

    if (!first || !second) return expect.fail("expected a delivery and a redelivery");
    expect(first.deliveryCount).toBe(1);
    expect(second).toMatchObject({ id: first.id, deliveryCount: 2 });
    expect(second.receipt).not.toBe(first.receipt);
    expect(redeliveredAfterMs).toBeGreaterThanOrEqual(500);

    // The first delivery's receipt names an attempt that is over: every settlement by it is refused.
    expect(await first.ack()).toBe(false);
    expect(await first.nack()).toBe(false);
    expect(await first.extendLease(10_000)).toBe(false);
    expect(await client.ack("redelivery", { receipts: [first.receipt] })).toEqual({ acked: 0, refusedReceipts: [first.receipt] });

    expect(await second.ack()).toBe(true);
    expect(await client.queueStats("redelivery")).toMatchObject({ ready: 0, inFlight: 0, ackedTotal: 1 });
  }, TEST_TIMEOUT_MS);

  it("makes a nacked message ready again at once, or after the nack's delay", async () => {
    const client = cluster().client();
    await client.enqueue("nack", "retry me");

    const [first] = await client.dequeue("nack");
    expect(await first?.nack()).toBe(true);
    const [second] = await client.dequeue("nack");
    expect(second).toMatchObject({ id: first?.id, deliveryCount: 2 });

    const nackedAt = Date.now();
    expect(await second?.nack(2_000)).toBe(true);
    expect(await client.dequeue("nack")).toEqual([]);
    expect(await client.queueStats("nack")).toMatchObject({ ready: 0, delayed: 1, inFlight: 0 });
    const [third] = await client.dequeue("nack", { waitMs: 10_000 });

    expect(third).toMatchObject({ id: first?.id, deliveryCount: 3 });
    expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(2_000);
  }, TEST_TIMEOUT_MS);

  it("dead-letters a message after max_deliveries into the dead-letter queue and counts it", async () => {
    const client = cluster().client();
    await client.createQueue("dl-work", { maxDeliveries: 2, deadLetterQueue: "dl-dead" });
    const { id } = await client.enqueue("dl-work", "poison", { headers: { attempt: "original" } });

    for (let attempt = 1; attempt <= 2; attempt++) {
      const [delivery] = await client.dequeue("dl-work");
      expect(delivery).toMatchObject({ id, deliveryCount: attempt });
      expect(await delivery?.nack()).toBe(true);
    }

    expect(await client.dequeue("dl-work")).toEqual([]);
    expect(await client.queueStats("dl-work")).toMatchObject({ ready: 0, inFlight: 0, enqueuedTotal: 1, deadLetteredTotal: 1 });
    const [dead] = await client.dequeue("dl-dead");
    expect(dead?.text()).toBe("poison");
    expect(dead?.headers).toMatchObject({ attempt: "original" });
    expect(await client.listQueues()).toEqual(expect.arrayContaining(["dl-dead", "dl-work"]));
  }, TEST_TIMEOUT_MS);

  it("dead-letters a message whose last lease expired, without anyone touching the source queue again", async () => {
    const client = cluster().client();
    await client.createQueue("dl-expiry-dead");
    await client.createQueue("dl-expiry", { maxDeliveries: 1, deadLetterQueue: "dl-expiry-dead" });
    await client.enqueue("dl-expiry", "abandoned");
    // One raw attempt: an SDK retry would write a second lease command to the source queue.
    const stub = cluster().stubs((await cluster().leader()).id).queue;
    expectOk(await callUnary(stub, stub.Dequeue, { queue: "dl-expiry", visibilityTimeoutMs: 300 }));
    await cluster().waitFor(async () => (await client.queueStats("dl-expiry")).deadLetteredTotal === 1, {
      what: "the source queue to count the expired message as dead-lettered",
    });

    // So a consumer long-polling the dead-letter queue must get it.
    const [dead] = await client.dequeue("dl-expiry-dead", { waitMs: 2_000 });
    expect(dead?.text()).toBe("abandoned");
  }, TEST_TIMEOUT_MS);

  it("never answers a Dequeue with more bytes than a default gRPC client accepts", async () => {
    const client = cluster().client({ timeoutMs: 30_000 });
    const oneMiB = Buffer.alloc(1024 * 1024, "m");
    for (let n = 0; n < 5; n++) await client.enqueue("large-bodies", oneMiB);
    const stub = cluster().stubs((await cluster().leader()).id).queue;

    // 5 MiB of bodies do not fit the 4 MiB a default client receives: the answer must hold fewer.
    const { messages } = expectOk(await callUnary(stub, stub.Dequeue, { queue: "large-bodies", maxMessages: 5 }));

    expect(messages.length).toBeGreaterThan(0);
    expect((await client.queueStats("large-bodies")).inFlight).toBe(messages.length);
  }, TEST_TIMEOUT_MS);

  it("enqueues a message once per idempotency key, whichever node the repeat goes to", async () => {
    const client = cluster().client();
    const first = await client.enqueue("idem", "order 17", { idempotencyKey: "order-17" });
    const repeat = await client.enqueue("idem", "order 17", { idempotencyKey: "order-17" });
    const [follower] = await cluster().followers();
    const stub = cluster().stubs(follower?.id ?? "n1").queue;
    const viaFollower = expectOk(
      await callUnary(stub, stub.Enqueue, { queue: "idem", body: Buffer.from("order 17"), idempotencyKey: "order-17" }),
    );
    const other = await client.enqueue("idem", "order 18", { idempotencyKey: "order-18" });

    expect(first.duplicate).toBe(false);
    expect(repeat).toEqual({ id: first.id, duplicate: true });
    expect(viaFollower).toEqual({ id: first.id, duplicate: true });
    expect(other.duplicate).toBe(false);
    expect(other.id).toBeGreaterThan(first.id);
    expect(await client.queueStats("idem")).toMatchObject({ ready: 2, enqueuedTotal: 2 });
  }, TEST_TIMEOUT_MS);

  it("enqueues a repeated key again once the queue's dedup window has passed", async () => {
    const client = cluster().client();
    await client.createQueue("dedup-window", { dedupWindowMs: 500 });
    const first = await client.enqueue("dedup-window", "v1", { idempotencyKey: "short-lived" });
    expect(await client.enqueue("dedup-window", "v1", { idempotencyKey: "short-lived" })).toEqual({ id: first.id, duplicate: true });

    const again = await cluster().waitFor(
      async () => {
        const result = await client.enqueue("dedup-window", "v1", { idempotencyKey: "short-lived" });
        return !result.duplicate && result;
      },
      { what: "the key to be forgotten after its 500 ms window" },
    );

    expect(again.id).toBeGreaterThan(first.id);
    expect(await client.queueStats("dedup-window")).toMatchObject({ ready: 2, enqueuedTotal: 2 });
  }, TEST_TIMEOUT_MS);

  it("keeps a delayed message invisible until it is due, without holding back the messages behind it", async () => {
    const client = cluster().client();
    const enqueuedAt = Date.now();
    await client.enqueue("delayed", "later", { delayMs: 2_000 });
    await client.enqueue("delayed", "now");

    expect(texts(await client.dequeue("delayed", { maxMessages: 10 }))).toEqual(["now"]);
    expect(await client.queueStats("delayed")).toMatchObject({ ready: 0, delayed: 1 });
    const due = await client.dequeue("delayed", { maxMessages: 10, waitMs: 10_000 });

    expect(texts(due)).toEqual(["later"]);
    expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(2_000);
  }, TEST_TIMEOUT_MS);

  it("answers a long poll as soon as a message is enqueued, well before wait_ms", async () => {
    const client = cluster().client();
    await client.createQueue("long-poll");
    const leader = await cluster().leader();
    const stub = cluster().stubs(leader.id).queue;

    const parked = callUnary(stub, stub.Dequeue, { queue: "long-poll", waitMs: 15_000 }, 20_000);
    // A second long poll sent after it on the same channel comes back empty: so the first one is waiting.
    const probe = expectOk(await callUnary(stub, stub.Dequeue, { queue: "long-poll", waitMs: 300 }));
    expect(probe.messages).toEqual([]);
    const enqueuedAt = Date.now();
    await client.enqueue("long-poll", "wake up");
    const answer = expectOk(await parked);

    expect(answer.messages.map((message) => message.body.toString())).toEqual(["wake up"]);
    expect(Date.now() - enqueuedAt).toBeLessThan(5_000);
  }, TEST_TIMEOUT_MS);

  it("answers a long poll with no messages once wait_ms has passed", async () => {
    const client = cluster().client();
    await client.createQueue("long-poll-empty");

    const startedAt = Date.now();
    const deliveries = await client.dequeue("long-poll-empty", { waitMs: 1_000 });
    const elapsedMs = Date.now() - startedAt;

    expect(deliveries).toEqual([]);
    expect(elapsedMs).toBeGreaterThanOrEqual(950);
    expect(elapsedMs).toBeLessThan(5_000);
  }, TEST_TIMEOUT_MS);

  it("waits the full wait_ms of a long poll longer than 10 s", async () => {
    const client = cluster().client();
    const enqueuedAt = Date.now();
    await client.enqueue("long-poll-12s", "due after 11 s", { delayMs: 11_000 });

    // The message becomes ready during the poll, past the 10 s mark.
    const deliveries = await client.dequeue("long-poll-12s", { waitMs: 12_000 });

    expect(texts(deliveries)).toEqual(["due after 11 s"]);
    expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(11_000);
  }, TEST_TIMEOUT_MS);

  it("keeps at most `prefetch` unacked deliveries on a subscription; each ack frees one slot as it is sent", async () => {
    const c = cluster();
    const client = c.client();
    const sent = Array.from({ length: 10 }, (_, n) => ({ body: `s${n}` }));
    await client.enqueueBatch("prefetch", sent);
    const leader = await c.leader();
    const stub = c.stubs(leader.id).queue;

    const received: Delivery__Output[] = [];
    let acked = 0;
    // The next delivery may arrive before the ack's answer (it is leased in the ack's Raft batch), so
    // outstanding counts the acks sent, as RabbitMQ's prefetch does.
    let acksSent = 0;
    let mostOutstanding = 0;
    const stream = stub.Subscribe({ queue: "prefetch", prefetch: 3, visibilityTimeoutMs: 60_000 });
    stream.on("data", (delivery: Delivery__Output) => {
      received.push(delivery);
      mostOutstanding = Math.max(mostOutstanding, received.length - acksSent);
    });
    stream.on("error", () => {}); // cancelled at the end
    try {
      while (acked < sent.length) {
        const expected = Math.min(acked + 3, sent.length);
        await c.waitFor(() => received.length >= expected, { what: `${expected} deliveries (${acked} acked)` });
        // The leader's own count agrees: nothing more is leased than what this stream holds.
        const stats = await client.queueStats("prefetch");
        expect(stats.inFlight).toBe(received.length - acked);
        expect(stats.inFlight).toBeLessThanOrEqual(3);
        const oldest = received[acked];
        if (!oldest) return expect.fail("a delivery to ack");
        acksSent++;
        expect(await client.ack("prefetch", { receipts: [oldest.receipt] })).toEqual({ acked: 1, refusedReceipts: [] });
        acked++;
      }
    } finally {
      stream.cancel();
    }

    expect(mostOutstanding).toBe(3);
    expect(received.map((delivery) => delivery.body.toString())).toEqual(sent.map((message) => message.body));
    expect(received.every((delivery) => delivery.deliveryCount === 1)).toBe(true);
  }, TEST_TIMEOUT_MS);

  it("relays a subscription through a follower", async () => {
    const c = cluster();
    const client = c.client();
    await client.createQueue("relayed-subscription");
    const [follower] = await c.followers();
    const stub = c.stubs(follower?.id ?? "n1").queue;
    const received: Delivery__Output[] = [];
    const stream = stub.Subscribe({ queue: "relayed-subscription", prefetch: 5 });
    stream.on("data", (delivery: Delivery__Output) => received.push(delivery));
    stream.on("error", () => {}); // cancelled at the end
    try {
      await client.enqueueBatch("relayed-subscription", [{ body: "x" }, { body: "y" }]);
      await c.waitFor(() => received.length >= 2, { what: "two deliveries relayed by the follower" });
      const receipts = received.map((delivery) => delivery.receipt);
      expect(await client.ack("relayed-subscription", { receipts })).toEqual({ acked: 2, refusedReceipts: [] });
    } finally {
      stream.cancel();
    }

    expect(received.map((delivery) => delivery.body.toString())).toEqual(["x", "y"]);
  }, TEST_TIMEOUT_MS);

  it("packs the deliveries of one lease into one frame for a subscriber that asks, on the leader and through a follower", async () => {
    const c = cluster();
    const client = c.client();
    const [follower] = await c.followers();
    for (const node of [await c.leader(), follower]) {
      const queue = `packed-subscription-${node?.id}`;
      await client.createQueue(queue);
      const bodies = ["a", "b", "c", "d", "e"];
      await client.enqueueBatch(queue, bodies.map((body) => ({ body })));
      const frames: Delivery__Output[][] = [];
      const stream = c.stubs(node?.id ?? "n1").queue.Subscribe({ queue, prefetch: 5, packDeliveries: true });
      stream.on("data", (frame: Delivery__Output) => frames.push([frame, ...frame.more]));
      stream.on("error", () => {}); // cancelled at the end
      try {
        await c.waitFor(() => frames.flat().length >= 5, { what: `five deliveries via ${node?.id}` });
      } finally {
        stream.cancel();
      }
      expect(frames.map((frame) => frame.map((delivery) => delivery.body.toString()))).toEqual([bodies]);
    }
  }, TEST_TIMEOUT_MS);

  it("streams deliveries to an SDK subscription that acks them", async () => {
    const client = cluster().client();
    await client.enqueueBatch("subscribe", [{ body: "a" }, { body: "b" }, { body: "c" }]);

    const got: string[] = [];
    for await (const delivery of client.subscribe("subscribe", { prefetch: 2 })) {
      got.push(delivery.text());
      expect(await delivery.ack()).toBe(true);
      if (got.length === 3) break;
    }

    expect(got).toEqual(["a", "b", "c"]);
    expect(await client.queueStats("subscribe")).toMatchObject({ ready: 0, inFlight: 0, ackedTotal: 3 });
  }, TEST_TIMEOUT_MS);

  it("extends a lease past its original end", async () => {
    const client = cluster().client();
    await client.enqueue("extend", "slow job");

    const [delivery] = await client.dequeue("extend", { visibilityTimeoutMs: 1_500 });
    expect(await delivery?.extendLease(30_000)).toBe(true);
    // Well past the original 1.5 s lease, the message is still leased to us, not redelivered.
    expect(await client.dequeue("extend", { waitMs: 2_500 })).toEqual([]);
    expect(await client.queueStats("extend")).toMatchObject({ ready: 0, inFlight: 1 });

    expect(await delivery?.ack()).toBe(true);
  }, TEST_TIMEOUT_MS);

  it("reports queue stats that add up, lists queues sorted, purges and deletes", async () => {
    const client = cluster().client();
    expect(await client.createQueue("stats-b")).toBe(true);
    expect(await client.createQueue("stats-a")).toBe(true);
    await client.enqueue("stats-a", "acked");
    await client.enqueue("stats-a", "leased");
    await client.enqueue("stats-a", "delayed", { delayMs: 60_000 });
    const [toAck] = await client.dequeue("stats-a");
    await toAck?.ack();
    await client.dequeue("stats-a");

    const stats = await client.queueStats("stats-a");
    expect(stats).toEqual({ ready: 0, inFlight: 1, delayed: 1, enqueuedTotal: 3, ackedTotal: 1, deadLetteredTotal: 0, purgedTotal: 0 });
    const queues = await client.listQueues();
    expect(queues).toEqual(expect.arrayContaining(["stats-a", "stats-b"]));
    expect(queues).toEqual([...queues].sort());

    expect(await client.purgeQueue("stats-a")).toBe(2);
    expect(await client.queueStats("stats-a")).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, enqueuedTotal: 3, purgedTotal: 2 });
    expect(await client.deleteQueue("stats-b")).toBe(true);
    expect(await client.deleteQueue("stats-b")).toBe(false);
    expect(await client.listQueues()).not.toContain("stats-b");
  }, TEST_TIMEOUT_MS);

  it("enqueues a batch all or nothing, in order", async () => {
    const client = cluster().client();
    await client.createQueue("batch", { maxMessageBytes: 16, maxLength: 5 });

    const oversize = await rejection(client.enqueueBatch("batch", [{ body: "one" }, { body: "two" }, { body: "x".repeat(17) }]));
    expect(isInvalidArgument(oversize)).toBe(true);
    expect(await client.queueStats("batch")).toMatchObject({ enqueuedTotal: 0 });

    const { ids, duplicates } = await client.enqueueBatch("batch", [{ body: "one" }, { body: "two" }, { body: "three" }]);
    expect(duplicates).toEqual([false, false, false]);
    expect(ids).toEqual([ids[0], (ids[0] ?? 0) + 1, (ids[0] ?? 0) + 2]);

    const overfull = await rejection(client.enqueueBatch("batch", [{ body: "four" }, { body: "five" }, { body: "six" }]));
    expect(isQueueFull(overfull)).toBe(true);
    expect(await client.queueStats("batch")).toMatchObject({ ready: 3, enqueuedTotal: 3 });
    expect(texts(await client.dequeue("batch", { maxMessages: 10 }))).toEqual(["one", "two", "three"]);
  }, TEST_TIMEOUT_MS);

  it("publishes through the SDK publisher (EnqueueStream), refusing a bad message without breaking the stream", async () => {
    const client = cluster().client();
    await client.createQueue("published", { maxMessageBytes: 64 });
    const publisher = client.publisher("published", { maxInFlight: 16 });
    const bodies = Array.from({ length: 200 }, (_, n) => `p${n}`);

    let mostInFlight = 0;
    const results = await Promise.all(
      bodies.map(async (body) => {
        const result = await publisher.publish(body);
        mostInFlight = Math.max(mostInFlight, publisher.inFlight);
        return result;
      }),
    );
    const refused = await rejection(publisher.publish("x".repeat(65)));
    const after = await publisher.publish("after the refusal");
    await publisher.close();

    expect(new Set(results.map((result) => result.id)).size).toBe(bodies.length);
    expect(mostInFlight).toBeLessThanOrEqual(16);
    expect(refused.grpcCode).toBe(grpc.status.INVALID_ARGUMENT);
    expect(after.duplicate).toBe(false);
    expect(await drain(client, "published")).toEqual([...bodies, "after the refusal"]);
  }, TEST_TIMEOUT_MS);
});
