/**
 * The end of a chaos run, after every fault healed: empty every queue, so that each message that still
 * exists is delivered once more and the checker can tell "lost" from "not yet consumed". Dequeues and
 * acks go into the history as the process "drain"; a queue counts as empty once two linearizable stats
 * reads in a row, DRAIN_CONFIRM_MS apart, find nothing ready, leased or delayed.
 */
import { connect, type QueueStats, type RaftqClient } from "../client/index.js";
import type { HistoryRecorder } from "./history.js";
import { completeWithError } from "./outcome.js";
import { sleep } from "./timing.js";
import { delivered, settle, workerClientOptions } from "./workload.js";

/** Messages leased per drain dequeue. */
const DRAIN_BATCH = 100;
/** Lease of drained messages: long enough to ack them, short enough that a lost ack costs little. */
const DRAIN_LEASE_MS = 5_000;
/** Gap between the two empty stats reads that end a queue's drain. */
const DRAIN_CONFIRM_MS = 500;

/** What the drain achieved. */
export interface DrainResult {
  /** True when every queue was confirmed empty before the deadline. */
  readonly complete: boolean;
  /** Per queue still not empty: its last stats, or the error reading them. */
  readonly remaining: Readonly<Record<string, QueueStats | string>>;
}

/** Drains each queue until it is confirmed empty, `timeoutMs` has passed for the whole drain, or `signal` aborts. */
export async function drainQueues(
  addresses: readonly string[],
  queues: readonly string[],
  history: HistoryRecorder,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<DrainResult> {
  const client = connect(workerClientOptions(addresses));
  const deadline = Date.now() + timeoutMs;
  const remaining: Record<string, QueueStats | string> = {};
  try {
    for (const queue of queues) {
      const left = await drainQueue(client, queue, history, deadline, signal);
      if (left !== undefined) remaining[queue] = left;
    }
  } finally {
    client.close();
  }
  return { complete: Object.keys(remaining).length === 0, remaining };
}

/** Undefined once the queue is confirmed empty; else what is left when the deadline passed. */
async function drainQueue(client: RaftqClient, queue: string, history: HistoryRecorder, deadline: number, signal: AbortSignal | undefined): Promise<QueueStats | string | undefined> {
  let last: QueueStats | string = "not read yet";
  let emptyReads = 0;
  while (Date.now() < deadline && !signal?.aborted) {
    const request = { maxMessages: DRAIN_BATCH, visibilityTimeoutMs: DRAIN_LEASE_MS, waitMs: 200 };
    const op = history.invoke("drain", "dequeue", queue, request);
    try {
      const deliveries = await client.dequeue(queue, request);
      op.ok({ messages: deliveries.map(delivered) });
      await Promise.all(deliveries.map((delivery) => settle("drain", "ack", client, delivery, 0, history)));
      if (deliveries.length > 0) {
        emptyReads = 0;
        continue;
      }
    } catch (error) {
      completeWithError(op, error);
      await sleep(100);
      continue;
    }
    try {
      last = await client.queueStats(queue);
      emptyReads = last.ready + last.inFlight + last.delayed === 0 ? emptyReads + 1 : 0;
    } catch (error) {
      last = `stats failed: ${(error as Error).message}`;
      emptyReads = 0;
    }
    if (emptyReads >= 2) return undefined;
    if (emptyReads === 1) await sleep(DRAIN_CONFIRM_MS);
  }
  return last;
}
