/**
 * Leadership changes under load. The leader is SIGKILLed while the SDK sends 1,000 enqueues at the
 * cluster (and a publisher streams more over EnqueueStream): the SDK retries with idempotency keys, so
 * every enqueue is acknowledged in the end, none is lost and none is enqueued twice; the failover time
 * (kill → first enqueue acknowledged by the new leader) is printed. A subscription keeps consuming across
 * such a kill, and a requested leadership transfer fails no call.
 */
import { describe, expect, it } from "vitest";
import type { Delivery } from "../../src/client/index.js";
import { startCluster } from "./harness.js";
import { drain, expectNoLossNoDuplicates, Producer } from "./workload.js";

const TOTAL = 1_000;
const KILL_AFTER_ACKNOWLEDGED = 300;

describe("failover", () => {
  it("loses no acknowledged enqueue, unary or streamed, when the leader is SIGKILLed in the middle of 1,000 enqueues", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 20_000 });
    await client.createQueue("failover");
    await client.createQueue("failover-streamed");
    const oldLeader = await cluster.leader();

    const producer = new Producer((body) => client.enqueue("failover", body), { prefix: "f", total: TOTAL, concurrency: 16 });
    const publisher = client.publisher("failover-streamed", { maxInFlight: 32 });
    const streamed = new Producer((body) => publisher.publish(body), { prefix: "s", concurrency: 32 });
    await cluster.waitFor(() => producer.acknowledged.length >= KILL_AFTER_ACKNOWLEDGED, {
      timeoutMs: 30_000,
      what: `${KILL_AFTER_ACKNOWLEDGED} acknowledged enqueues before the kill`,
    });
    const acknowledgedBeforeKill = producer.acknowledged.length;
    const killedAt = Date.now();
    await cluster.kill(oldLeader.id, "SIGKILL");
    const deadAt = Date.now();
    await cluster.waitFor(() => streamed.acknowledged.filter((ack) => ack.atMs > deadAt).length >= 100, {
      what: "100 streamed enqueues acknowledged after the kill",
    });
    await streamed.stop();
    await publisher.close();
    await producer.finished();

    const newLeader = await cluster.leader();
    const firstAfter = producer.firstAcknowledgedAfter(deadAt);
    if (!firstAfter) return expect.fail("no enqueue was acknowledged after the kill");
    console.log(
      `failover: leader ${oldLeader.id} SIGKILLed after ${acknowledgedBeforeKill}/${TOTAL} acknowledged enqueues; ` +
        `first enqueue acknowledged ${firstAfter.atMs - killedAt} ms after the kill (new leader ${newLeader.id})`,
    );
    expect(newLeader.id).not.toBe(oldLeader.id);
    expect(producer.failures).toEqual([]);
    expect(streamed.failures).toEqual([]);
    expect(producer.acknowledged).toHaveLength(TOTAL);

    // The old leader comes back as a follower and catches up; then both queues are drained.
    await cluster.restart(oldLeader.id);
    await cluster.leader();
    const drained = await drain(client, "failover");
    const report = expectNoLossNoDuplicates(producer.sent(), drained);
    expect(report.drained).toBe(TOTAL);
    expect(new Set(producer.acknowledged.map((ack) => ack.id)).size).toBe(TOTAL);
    const streamedDrained = await drain(client, "failover-streamed");
    const streamedReport = expectNoLossNoDuplicates(streamed.sent(), streamedDrained);
    console.log(`failover: ${streamedReport.acknowledged} streamed enqueues acknowledged across the kill, all drained once`);
  }, 90_000);

  it("keeps a subscription consuming across a leader kill; deliveries lost with the old leader come back", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 20_000 });
    await client.createQueue("consumed", { visibilityTimeoutMs: 2_000 });
    const bodies = Array.from({ length: 200 }, (_, n) => `c${n}`);
    await client.enqueueBatch("consumed", bodies.map((body) => ({ body })));
    const oldLeader = await cluster.leader();

    const seen = new Set<string>();
    const subscription = client.subscribe("consumed", { prefetch: 10 });
    const consuming = (async (): Promise<unknown> => {
      try {
        for await (const delivery of subscription) await settle(delivery, seen);
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    await cluster.waitFor(() => seen.size >= 50, { what: "50 deliveries before the kill" });
    await cluster.kill(oldLeader.id, "SIGKILL");

    const stats = await cluster.waitFor(
      async () => {
        const now = await client.queueStats("consumed");
        return now.ackedTotal === bodies.length && now.ready + now.inFlight + now.delayed === 0 && now;
      },
      { timeoutMs: 30_000, what: () => `all ${bodies.length} messages acked through the subscription (${seen.size} seen so far)` },
    );
    subscription.close();

    expect(await consuming).toBeUndefined();
    expect(stats.deadLetteredTotal).toBe(0);
    expect([...seen].sort()).toEqual([...bodies].sort());
  }, 60_000);

  it("moves leadership on request (TransferLeadership) without failing a producer's call", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 20_000 });
    await client.createQueue("transfer");
    const [target] = await cluster.followers();
    if (!target) return expect.fail("a follower to hand over to");
    const producer = new Producer((body) => client.enqueue("transfer", body), { prefix: "t", concurrency: 2 });
    await cluster.waitFor(() => producer.acknowledged.length >= 20, { what: "20 enqueues before the transfer" });

    expect(await client.transferLeadership(target.id)).toBe(target.id);
    expect((await cluster.leader()).id).toBe(target.id);
    const afterTransfer = producer.acknowledged.length;
    await cluster.waitFor(() => producer.acknowledged.length >= afterTransfer + 20, { what: "20 enqueues after the transfer" });
    await producer.stop();

    expect(producer.failures).toEqual([]);
    expectNoLossNoDuplicates(producer.sent(), await drain(client, "transfer"));
  }, 60_000);

  it("moves a publisher's stream to the new leader when leadership is transferred (the old leader keeps running)", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 5_000 });
    const publisher = client.publisher("transfer-stream", { maxInFlight: 8 });
    await publisher.publish("before");
    const [target] = await cluster.followers();
    if (!target) return expect.fail("a follower to hand over to");
    expect(await client.transferLeadership(target.id)).toBe(target.id);

    const startedMs = Date.now();
    await publisher.publish("after");
    // Well within the client's 5 s timeout: the deposed leader ended the stream instead of refusing forever.
    expect(Date.now() - startedMs).toBeLessThan(3_000);
    await publisher.close();
    const bodies = new Set(["before", "after"]);
    expectNoLossNoDuplicates({ acknowledged: bodies, attempted: bodies }, await drain(client, "transfer-stream"));
  }, 60_000);
});

/** Acks a delivery and records its body; an ack refused because the lease was lost is fine (it comes again). */
async function settle(delivery: Delivery, seen: Set<string>): Promise<void> {
  seen.add(delivery.text());
  await delivery.ack();
}
