/**
 * The churn workload of `make bench-churn`: messages flow through one queue (a producer of EnqueueBatch,
 * consumers of Dequeue + Ack, running at once, the live backlog held under a cap), while every node's data
 * directory is sampled. It shows whether the disk a node uses stays bounded when the log is compacted
 * and LevelDB reclaims deleted records, whatever the number of messages that went through.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type OutgoingMessage } from "../client/index.js";
import type { BenchCluster } from "./cluster.js";
import { directoryBytes, formatMegabytes, residentBytes } from "./resources.js";
import { formatNumber } from "./table.js";

/** How to run the churn. */
export interface ChurnOptions {
  /** Messages to enqueue and ack in all. */
  readonly messages: number;
  /** The payload of every message. */
  readonly body: Buffer;
  /** Messages per EnqueueBatch and most messages per Dequeue. */
  readonly batchMessages: number;
  /** Enqueued but not yet acked messages the producer allows before it waits for the consumers. */
  readonly maxLiveMessages: number;
  /** Send an idempotency key with every message (the SDK's default) or none. */
  readonly idempotencyKeys: boolean;
  /** Called with a progress line every few seconds. */
  readonly progress: (line: string) => void;
}

/** One node's figures over the churn. */
export interface ChurnNodeFigures {
  readonly id: string;
  readonly maxDataDirBytes: number;
  /** After the last ack, once every node applied everything and a short settle passed. */
  readonly finalDataDirBytes: number;
  readonly maxRssBytes: number;
  readonly finalRssBytes: number | undefined;
}

/** What the churn measured. */
export interface ChurnResult {
  readonly messages: number;
  readonly elapsedMs: number;
  /** Messages enqueued and acked per second. */
  readonly messagesPerSecond: number;
  /** The most messages enqueued but not yet acked at any sample. */
  readonly maxLiveMessages: number;
  readonly samples: number;
  readonly nodes: readonly ChurnNodeFigures[];
}

/** Producer batches in flight at once. */
const PRODUCERS = 2;
/** Consumer loops (Dequeue then Ack) at once. */
const CONSUMERS = 4;
/** How long a Dequeue waits for a message when none is ready. */
const DEQUEUE_WAIT_MS = 500;
/** Leases outlast the run: nothing is redelivered, so every message is acked exactly once. */
const VISIBILITY_TIMEOUT_MS = 600_000;
/** Every this often: each node's data directory size and RSS, and a progress line. */
const SAMPLE_INTERVAL_MS = 3_000;
/** How often the producer looks again when the live backlog is at its cap. */
const BACKPRESSURE_POLL_MS = 5;
/** Longest wait for every node to apply everything once the churn is over. */
const APPLY_TIMEOUT_MS = 60_000;
/** Wait after every node applied everything before the final sample: lets a pending compaction finish. */
const SETTLE_MS = 5_000;

/** Runs the churn through `queue` on `cluster` and samples every node until it is done. */
export async function runChurn(cluster: BenchCluster, queue: string, options: ChurnOptions): Promise<ChurnResult> {
  const { messages, batchMessages } = options;
  const client = connect({ addresses: cluster.addresses });
  const figures = new Map(cluster.ids.map((id) => [id, { maxDataDirBytes: 0, maxRssBytes: 0 }]));
  let enqueued = 0;
  let started = 0;
  let acked = 0;
  let maxLive = 0;
  let samples = 0;
  const startMs = performance.now();

  const sample = (): void => {
    samples++;
    maxLive = Math.max(maxLive, enqueued - acked);
    for (const [id, figure] of figures) {
      figure.maxDataDirBytes = Math.max(figure.maxDataDirBytes, directoryBytes(cluster.dataDir(id)));
      const pid = cluster.pid(id);
      figure.maxRssBytes = Math.max(figure.maxRssBytes, (pid === undefined ? undefined : residentBytes(pid)) ?? 0);
    }
  };
  const sampler = setInterval(() => {
    sample();
    const seconds = (performance.now() - startMs) / 1000;
    const sizes = [...figures].map(([id]) => `${id} ${formatMegabytes(directoryBytes(cluster.dataDir(id)))}`).join(", ");
    options.progress(
      `${formatNumber(acked, 0)} of ${formatNumber(messages, 0)} acked (${formatNumber(acked / seconds, 0)} msg/s), ` +
        `${formatNumber(enqueued - acked, 0)} live; data dirs: ${sizes}`,
    );
  }, SAMPLE_INTERVAL_MS);

  const produce = async (): Promise<void> => {
    while (started < messages) {
      if (started - acked >= options.maxLiveMessages) {
        await sleep(BACKPRESSURE_POLL_MS);
        continue;
      }
      const count = Math.min(batchMessages, messages - started);
      started += count;
      const batch: OutgoingMessage[] = Array.from({ length: count }, () =>
        options.idempotencyKeys ? { body: options.body } : { body: options.body, idempotencyKey: false },
      );
      await client.enqueueBatch(queue, batch);
      enqueued += count;
    }
  };
  const consume = async (): Promise<void> => {
    while (acked < messages) {
      const deliveries = await client.dequeue(queue, { maxMessages: batchMessages, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS, waitMs: DEQUEUE_WAIT_MS });
      if (deliveries.length === 0) continue;
      const result = await client.ack(queue, { receipts: deliveries.map((delivery) => delivery.receipt) });
      if (result.refusedReceipts.length > 0) {
        throw new Error(`Ack refused ${result.refusedReceipts.length} fresh receipts of "${queue}": a message was redelivered or lost`);
      }
      acked += result.acked;
    }
  };

  try {
    // The producer stops at maxLiveMessages (plus the batches in flight): the cap is never what limits it.
    await client.createQueue(queue, { maxLength: 2 * (options.maxLiveMessages + PRODUCERS * batchMessages) });
    await Promise.all([...Array.from({ length: PRODUCERS }, produce), ...Array.from({ length: CONSUMERS }, consume)]);
    const elapsedMs = performance.now() - startMs;
    clearInterval(sampler);
    sample();
    const stats = await client.queueStats(queue);
    if (stats.ackedTotal !== messages || stats.ready + stats.inFlight + stats.delayed !== 0) {
      throw new Error(
        `after the churn "${queue}" holds ready ${stats.ready}, in flight ${stats.inFlight}, delayed ${stats.delayed}, ` +
          `acked in all ${stats.ackedTotal}: expected nothing left and ${messages} acked`,
      );
    }
    await cluster.allApplied(APPLY_TIMEOUT_MS);
    await sleep(SETTLE_MS);
    sample();
    const nodes = [...figures].map(([id, figure]): ChurnNodeFigures => {
      const pid = cluster.pid(id);
      return { id, ...figure, finalDataDirBytes: directoryBytes(cluster.dataDir(id)), finalRssBytes: pid === undefined ? undefined : residentBytes(pid) };
    });
    return { messages, elapsedMs, messagesPerSecond: messages / (elapsedMs / 1000), maxLiveMessages: maxLive, samples, nodes };
  } finally {
    clearInterval(sampler);
    client.close();
  }
}
