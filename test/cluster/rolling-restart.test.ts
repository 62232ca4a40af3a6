/**
 * A rolling restart, as an operator upgrades a cluster: each node in turn is stopped gracefully (SIGTERM,
 * exit code 0) and started again while a producer keeps enqueueing through the SDK. The cluster keeps
 * accepting writes throughout, no call fails that the client could not retry away, and every acknowledged
 * message is drained afterwards, once. A node stopping must not keep the calls it serves hanging.
 */
import { describe, expect, it } from "vitest";
import { startCluster, useSharedCluster } from "./harness.js";
import { callUnary, codeName, expectOk } from "./raw-grpc.js";
import { drain, expectNoLossNoDuplicates, Producer } from "./workload.js";

/** Enqueues that must be acknowledged while one node is down, to show the cluster still serves. */
const PROGRESS_WHILE_DOWN = 20;

describe("rolling restart", () => {
  // The restart test leaves all three nodes running, so the stop test after it can use the same cluster.
  const sharedCluster = useSharedCluster();

  it("serves a producer without a failed call while every node in turn is stopped and restarted", async () => {
    const cluster = sharedCluster();
    const client = cluster.client({ timeoutMs: 20_000 });
    await client.createQueue("rolling");
    const producer = new Producer((body) => client.enqueue("rolling", body), { prefix: "r", concurrency: 2 });

    for (const node of cluster.nodes) {
      const beforeStop = producer.acknowledged.length;
      const exit = await cluster.stop(node.id);
      expect(exit, `${node.id} stopped by SIGTERM`).toEqual({ code: 0, signal: null });
      await cluster.waitFor(() => producer.acknowledged.length >= beforeStop + PROGRESS_WHILE_DOWN, {
        what: `${PROGRESS_WHILE_DOWN} enqueues acknowledged while ${node.id} is down`,
      });

      await cluster.restart(node.id);
      const leader = await cluster.leader();
      const leaderStatus = await cluster.statusOf(leader);
      const target = leaderStatus?.commitIndex ?? Infinity;
      await cluster.waitFor(async () => ((await cluster.statusOf(node))?.appliedIndex ?? 0) >= target, {
        what: `restarted ${node.id} to apply up to the leader's commit index ${target}`,
      });
    }
    await producer.stop();

    expect(producer.failures).toEqual([]);
    const drained = await drain(client, "rolling");
    const report = expectNoLossNoDuplicates(producer.sent(), drained);
    console.log(`rolling restart: ${report.acknowledged} enqueues acknowledged across three node restarts, all drained once`);
  }, 120_000);

  it("stops a follower promptly while a long poll is forwarded through it, ending the poll retryably", async () => {
    const cluster = sharedCluster();
    await cluster.client().createQueue("parked");
    const [follower] = await cluster.followers();
    if (!follower) return expect.fail("a follower");
    const stub = cluster.stubs(follower.id).queue;
    const parked = callUnary(stub, stub.Dequeue, { queue: "parked", waitMs: 15_000 }, 20_000);
    // A second long poll sent after it on the same channel comes back empty: so the first one is waiting.
    expect(expectOk(await callUnary(stub, stub.Dequeue, { queue: "parked", waitMs: 300 })).messages).toEqual([]);

    const stoppingAt = Date.now();
    const exit = await cluster.stop(follower.id);
    const stopMs = Date.now() - stoppingAt;
    const poll = await parked;

    expect(exit).toEqual({ code: 0, signal: null });
    // A retryable end (the SDK retries UNAVAILABLE) or an empty answer, not CANCELLED.
    expect.soft(poll.ok ? "OK" : codeName(poll.code), "how the forwarded long poll ended").toMatch(/^(OK|UNAVAILABLE)$/);
    expect.soft(stopMs, "ms the follower took to stop").toBeLessThan(3_000);
  }, 60_000);

  it("stops a whole cluster at once promptly: the leader gives up handing over to nodes that are gone", async () => {
    const cluster = await startCluster();
    const leader = await cluster.leader();

    const stoppingAt = Date.now();
    const exits = await Promise.all(cluster.nodes.map((node) => cluster.stop(node.id)));
    const stopMs = Date.now() - stoppingAt;

    expect(exits).toEqual(cluster.nodes.map(() => ({ code: 0, signal: null })));
    // Before, the leader waited out its whole 3 s handover timeout for a target that had already exited.
    expect(stopMs, `ms the cluster took to stop (leader ${leader.id})`).toBeLessThan(2_500);
  }, 60_000);
});
