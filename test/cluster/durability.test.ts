/**
 * What the cluster acknowledged survives the loss of every process: a SIGKILL of all three nodes at once
 * (while a producer is writing) and a graceful stop of all three. After the restart every acknowledged
 * message is there, every acked message stays gone, and queue settings and idempotency keys are kept.
 */
import { describe, expect, it } from "vitest";
import { startCluster } from "./harness.js";
import { drain, expectNoLossNoDuplicates, Producer } from "./workload.js";

const TEST_TIMEOUT_MS = 90_000;

describe("durability", () => {
  it("keeps every acknowledged message, and forgets every acked one, through a SIGKILL of all three nodes", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 30_000 });
    await client.createQueue("durable");

    const before = new Producer((body) => client.enqueue("durable", body), { prefix: "before", total: 200 });
    await before.finished();
    const consumed = await client.dequeue("durable", { maxMessages: 50 });
    await client.ack("durable", { receipts: consumed.map((delivery) => delivery.receipt) });
    const consumedBodies = new Set(consumed.map((delivery) => delivery.text()));
    expect(consumedBodies.size).toBe(50);

    // A second producer is still writing when every node dies at the same moment.
    const during = new Producer((body) => client.enqueue("durable", body), { prefix: "during" });
    await cluster.waitFor(() => during.acknowledged.length >= 100, { timeoutMs: 30_000, what: "100 enqueues before the crash" });
    await Promise.all(cluster.nodes.map((node) => cluster.kill(node.id, "SIGKILL")));
    await cluster.startAll();
    await during.stop();
    expect(before.failures).toEqual([]);
    expect(during.failures).toEqual([]);

    const drained = await drain(client, "durable");
    const notConsumed = (bodies: Iterable<string>): Set<string> => new Set([...bodies].filter((body) => !consumedBodies.has(body)));
    const report = expectNoLossNoDuplicates(
      {
        attempted: notConsumed([...before.attempted, ...during.attempted]),
        acknowledged: notConsumed([...before.acknowledgedBodies(), ...during.acknowledgedBodies()]),
      },
      drained,
    );
    console.log(`durability: ${report.drained} messages drained after a SIGKILL of all nodes, ${report.acknowledged} of them acknowledged`);
    expect(drained.filter((body) => consumedBodies.has(body))).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it("keeps messages, acks, queue settings and idempotency keys through a graceful stop of all three nodes", async () => {
    const cluster = await startCluster();
    const client = cluster.client({ timeoutMs: 30_000 });
    const settings = { maxLength: 1_000, visibilityTimeoutMs: 5_000, maxDeliveries: 5, deadLetterQueue: "graceful-dlq" };
    await client.createQueue("graceful", settings);
    const bodies = Array.from({ length: 100 }, (_, n) => `g${n}`);
    const { ids } = await client.enqueueBatch("graceful", bodies.map((body) => ({ body, idempotencyKey: `key-${body}` })));
    const consumed = await client.dequeue("graceful", { maxMessages: 10 });
    await client.ack("graceful", { receipts: consumed.map((delivery) => delivery.receipt) });

    const exits = await Promise.all(cluster.nodes.map((node) => cluster.stop(node.id)));
    expect(exits).toEqual(cluster.nodes.map(() => ({ code: 0, signal: null })));
    await cluster.startAll();

    expect(await client.createQueue("graceful", settings)).toBe(false);
    expect(await client.enqueue("graceful", "g50", { idempotencyKey: "key-g50" })).toEqual({ id: ids[50], duplicate: true });
    expect(await client.queueStats("graceful")).toMatchObject({ ready: 90, enqueuedTotal: 100, ackedTotal: 10 });
    expect(await drain(client, "graceful")).toEqual(bodies.slice(10));
  }, TEST_TIMEOUT_MS);
});
