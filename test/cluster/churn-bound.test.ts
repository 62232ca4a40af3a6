/**
 * Churn keeps the Raft log bounded: with small snapshot thresholds, ~20,000 messages flow through a queue
 * (a producer of EnqueueBatch and consumers of Dequeue + Ack at once, the live backlog kept small) and
 * every node compacts its log again and again, so that afterwards its stored log holds no more entries
 * than the thresholds allow, however many went through; and every acknowledged message was consumed once.
 */
import { expect, test } from "vitest";
import type { RaftqClient } from "../../src/client/index.js";
import { LevelRaftStorage } from "../../src/storage/level-raft-storage.js";
import { startCluster } from "./harness.js";
import { drain, expectNoLossNoDuplicates } from "./workload.js";

/** A snapshot after this many applied entries beyond the retained tail... */
const SNAPSHOT_ENTRIES = 100;
/** ...keeping this many entries behind it. */
const RETAIN_ENTRIES = 20;
/** Messages to push through: 200 batches, so about 600 entries (enqueue, lease, ack) and 5 compactions. */
const MESSAGES = 20_000;
const BATCH_MESSAGES = 100;
/** The producer waits while this many messages are enqueued and not yet consumed. */
const MAX_LIVE_MESSAGES = 2_000;
const PRODUCERS = 2;
const CONSUMERS = 2;
/** Leases outlast the test: nothing is redelivered, so a duplicate would be a real one. */
const VISIBILITY_TIMEOUT_MS = 120_000;
const QUEUE = "churn";

/**
 * The most entries a node's stored log may hold once everything is applied: it compacts when the entries
 * past the log start reach SNAPSHOT_ENTRIES + RETAIN_ENTRIES, leaving RETAIN_ENTRIES. The slack covers
 * entries committed while a compaction was being written (a few batches' worth at most).
 */
const MAX_STORED_ENTRIES = SNAPSHOT_ENTRIES + RETAIN_ENTRIES + 50;

/** Enqueues MESSAGES numbered bodies in batches; records every body sent and every one acknowledged. */
async function produce(client: RaftqClient, consumed: () => number, attempted: Set<string>, acknowledged: Set<string>): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < MESSAGES) {
      if (next - consumed() >= MAX_LIVE_MESSAGES) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      const bodies = Array.from({ length: Math.min(BATCH_MESSAGES, MESSAGES - next) }, () => `m-${next++}`);
      for (const body of bodies) attempted.add(body);
      await client.enqueueBatch(QUEUE, bodies.map((body) => ({ body })));
      for (const body of bodies) acknowledged.add(body);
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, loop));
}

/** Dequeues and acks by receipt until the producer is done and the queue comes back empty. */
async function consume(client: RaftqClient, producing: () => boolean, consumed: string[]): Promise<void> {
  const loop = async (): Promise<void> => {
    for (;;) {
      const deliveries = await client.dequeue(QUEUE, { maxMessages: BATCH_MESSAGES, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS, waitMs: 200 });
      if (deliveries.length === 0) {
        if (producing()) continue;
        return;
      }
      const result = await client.ack(QUEUE, { receipts: deliveries.map((delivery) => delivery.receipt) });
      expect(result.refusedReceipts, "acks of fresh receipts refused").toEqual([]);
      consumed.push(...deliveries.map((delivery) => delivery.text()));
    }
  };
  await Promise.all(Array.from({ length: CONSUMERS }, loop));
}

test("under enqueue + ack churn every node keeps compacting: its stored log stays within the thresholds, and every message is consumed once", async () => {
  const cluster = await startCluster({ extraArgs: ["--snapshot-entries", String(SNAPSHOT_ENTRIES), "--retain-entries", String(RETAIN_ENTRIES)] });
  const client = cluster.client();
  const attempted = new Set<string>();
  const acknowledged = new Set<string>();
  const consumed: string[] = [];
  let producing = true;

  const producer = produce(client, () => consumed.length, attempted, acknowledged).finally(() => (producing = false));
  await Promise.all([producer, consume(client, () => producing, consumed)]);
  consumed.push(...(await drain(client, QUEUE)));
  const report = expectNoLossNoDuplicates({ attempted, acknowledged }, consumed);
  expect(report.acknowledged).toBe(MESSAGES);

  // Every node has applied everything before it is stopped, so its stored log is the settled one.
  const leader = await cluster.leader();
  const commitIndex = (await cluster.statusOf(leader))!.commitIndex;
  for (const node of cluster.nodes) {
    await cluster.waitFor(async () => ((await cluster.statusOf(node))?.appliedIndex ?? 0) >= commitIndex, { timeoutMs: 10_000, what: `${node.id} to apply ${commitIndex}` });
  }
  const followers = cluster.nodes.filter((node) => node.id !== leader.id);
  for (const node of [...followers, leader]) expect((await cluster.stop(node.id)).code, `${node.id} stops cleanly`).toBe(0);

  for (const node of cluster.nodes) {
    const compactions = cluster.logLines(node.id).filter((line) => line.includes("compacted the log")).length;
    const storage = await LevelRaftStorage.open(node.dataDir);
    const { logStart, entries } = await storage.load().finally(() => storage.close());
    console.log(`${node.id}: ${compactions} compactions; log start ${logStart.index}, ${entries.length} entries stored of ${commitIndex} committed`);
    expect(compactions, `${node.id}'s compactions`).toBeGreaterThanOrEqual(2);
    expect(logStart.index, `${node.id}'s log start advanced to near the end of the log`).toBeGreaterThan(commitIndex - MAX_STORED_ENTRIES);
    expect(entries.length, `${node.id}'s stored log entries`).toBeLessThanOrEqual(MAX_STORED_ENTRIES);
  }
}, 60_000);
