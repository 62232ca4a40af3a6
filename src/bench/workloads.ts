/**
 * The raftq workloads, each on a fresh queue through its own SDK client with default options (retries,
 * an idempotency key on every enqueue): enqueue with 1 and 64 calls in flight, batches, the two ways of
 * draining, and a leader kill under load. The queue is deleted afterwards so the nodes' memory stays flat.
 */
import { performance } from "node:perf_hooks";
import { connect, type OutgoingMessage, type RaftqClient } from "../client/index.js";
import type { Timing } from "./baselines.js";
import type { BenchCluster } from "./cluster.js";
import type { ElectionWatcher } from "./elections.js";
import type { CpuPerMessage } from "./cpu-meter.js";
import { closedLoop, type LoadResult } from "./load.js";

/** What every workload needs. */
export interface WorkloadContext {
  readonly cluster: BenchCluster;
  readonly timing: Timing;
  /** The payload of every message (100 bytes). */
  readonly body: Buffer;
}

/** A drain: messages consumed and acked per second. */
export interface DrainResult {
  readonly messagesPerSecond: number;
  readonly messages: number;
  readonly elapsedMs: number;
  /** CPU per message over the drain (after the prefill), when the timing carries a meter. */
  readonly cpu?: CpuPerMessage;
}

/** A leader kill under single-call enqueue load. */
export interface FailoverResult {
  readonly killedId: string;
  /** Longest time between two successful enqueues over the whole run (the kill falls in it). */
  readonly longestGapMs: number;
  /** From the kill to the first enqueue that succeeded after it. */
  readonly firstSuccessAfterKillMs: number;
  /** Enqueues the cluster acknowledged, and enqueues that failed (outcome unknown). */
  readonly acknowledged: number;
  readonly failed: number;
  /** Acknowledged messages missing from the queue afterwards: must be 0. */
  readonly missing: number;
  /** Messages found more than once. */
  readonly duplicates: number;
  /** Time to restart the killed node and have all three agree on a leader again. */
  readonly rejoinMs: number;
}

/** Enqueues in a batch while pre-filling a queue; the most a batch may carry. */
const PREFILL_BATCH_MESSAGES = 1000;
const PREFILL_BATCHES_IN_FLIGHT = 4;
/** Longest a drain of any size may take before the run is declared stuck. */
const DRAIN_TIMEOUT_MS = 180_000;
/** Empty Dequeue answers in a row after which a drain gives up (the queue is short of messages). */
const MAX_EMPTY_DEQUEUES = 50;
/** Most messages one Dequeue leases while verifying a failover. */
const VERIFY_DEQUEUE_MESSAGES = 1000;
/** After the kill, the load goes on at least this long past the first success (bounded by the next). */
const AFTER_RECOVERY_MS = 1_000;
/** Longest the load waits for the first success after the kill. */
const FAILOVER_TIMEOUT_MS = 20_000;

/** Workload 1: `Enqueue`, one call in flight. */
export function enqueueSingle(ctx: WorkloadContext, queue: string): Promise<LoadResult> {
  return onQueue(ctx, queue, (client) => closedLoop({ concurrency: 1, messagesPerOp: 1, op: () => client.enqueue(queue, ctx.body), ...ctx.timing }));
}

/** Workload 2a: unary `Enqueue`, `concurrency` calls in flight from one client. */
export function enqueueUnary(ctx: WorkloadContext, queue: string, concurrency: number): Promise<LoadResult> {
  return onQueue(ctx, queue, (client) => closedLoop({ concurrency, messagesPerOp: 1, op: () => client.enqueue(queue, ctx.body), ...ctx.timing }));
}

/** Workload 2b: the SDK publisher over one `EnqueueStream`, `concurrency` messages in flight. */
export function enqueueStream(ctx: WorkloadContext, queue: string, concurrency: number): Promise<LoadResult> {
  return onQueue(ctx, queue, async (client) => {
    const publisher = client.publisher(queue, { maxInFlight: concurrency });
    try {
      return await closedLoop({ concurrency, messagesPerOp: 1, op: () => publisher.publish(ctx.body), ...ctx.timing });
    } finally {
      await publisher.close();
    }
  });
}

/** Workload 3: `EnqueueBatch` of `batchMessages`, `concurrency` batches in flight. */
export function enqueueBatches(ctx: WorkloadContext, queue: string, batchMessages: number, concurrency: number): Promise<LoadResult> {
  const batch: OutgoingMessage[] = Array.from({ length: batchMessages }, () => ({ body: ctx.body }));
  return onQueue(ctx, queue, (client) =>
    closedLoop({ concurrency, messagesPerOp: batchMessages, op: () => client.enqueueBatch(queue, batch), ...ctx.timing }),
  );
}

/**
 * Workload 4a: pre-fills `messages`, then times `Dequeue` of `leaseMessages` followed by `Ack` of their
 * receipts. `overlapAck`: the next Dequeue goes out while the Ack of the batch before is in flight (at
 * most one Ack in flight), as a consumer that acks in the background does; otherwise each Ack is awaited
 * before the next Dequeue.
 */
export function drainByDequeue(ctx: WorkloadContext, queue: string, messages: number, leaseMessages: number, overlapAck: boolean): Promise<DrainResult> {
  return onQueue(ctx, queue, async (client) => {
    await prefill(client, queue, ctx.body, messages);
    ctx.timing.cpu?.start();
    const startMs = performance.now();
    let leased = 0;
    let drained = 0;
    let emptyInARow = 0;
    let ackInFlight: Promise<void> = Promise.resolve();
    const ack = async (receipts: string[]): Promise<void> => {
      const result = await client.ack(queue, { receipts });
      if (result.refusedReceipts.length > 0) throw new Error(`Ack refused ${result.refusedReceipts.length} fresh receipts of "${queue}"`);
      drained += result.acked;
    };
    while (leased < messages) {
      checkDeadline(startMs, `draining "${queue}" by Dequeue (${drained} of ${messages} acked)`);
      const deliveries = await client.dequeue(queue, { maxMessages: leaseMessages });
      if (deliveries.length === 0) {
        if (++emptyInARow >= MAX_EMPTY_DEQUEUES) throw new Error(`"${queue}" ran dry after ${drained} of ${messages} messages`);
        continue;
      }
      emptyInARow = 0;
      leased += deliveries.length;
      await ackInFlight;
      ackInFlight = ack(deliveries.map((delivery) => delivery.receipt));
      if (!overlapAck) await ackInFlight;
    }
    await ackInFlight;
    return drainResult(ctx, drained, startMs);
  });
}

/** Workload 4b: pre-fills `messages`, then times `Subscribe` with `prefetch`, acking every delivery as it arrives. */
export function drainBySubscribe(ctx: WorkloadContext, queue: string, messages: number, prefetch: number): Promise<DrainResult> {
  return onQueue(ctx, queue, async (client) => {
    await prefill(client, queue, ctx.body, messages);
    ctx.timing.cpu?.start();
    const stuck = AbortSignal.timeout(DRAIN_TIMEOUT_MS);
    const startMs = performance.now();
    let received = 0;
    let acked = 0;
    let refused = 0;
    let acksInFlight = 0;
    let allAcked: (() => void) | undefined;
    const settled = (): void => {
      if (--acksInFlight === 0) allAcked?.();
    };
    // Acks are not awaited one by one: the server leases at most `prefetch` unacked deliveries, which
    // bounds the acks in flight.
    for await (const delivery of client.subscribe(queue, { prefetch, signal: stuck })) {
      acksInFlight++;
      delivery.ack().then((ok) => void (ok ? acked++ : refused++), () => void refused++).finally(settled);
      if (++received >= messages) break;
    }
    if (acksInFlight > 0) await new Promise<void>((resolve) => (allAcked = resolve));
    if (acked < messages) {
      const why = stuck.aborted ? `: stopped by the ${DRAIN_TIMEOUT_MS} ms drain timeout` : "";
      throw new Error(`Subscribe on "${queue}" acked ${acked} of ${messages} messages (${refused} acks refused or failed)${why}`);
    }
    return drainResult(ctx, acked, startMs);
  });
}

/**
 * Workload 5: single-call enqueue load, the leader SIGKILLed a third of the way in; then every acknowledged
 * message is looked for in the queue, and the killed node is restarted.
 */
export async function failover(ctx: WorkloadContext, watcher: ElectionWatcher, queue: string, label: string): Promise<FailoverResult> {
  const { cluster } = ctx;
  const { leaderId } = await cluster.stableLeader();
  const load = await onQueue(ctx, queue, async (client) => {
    const acknowledged = new Set<string>();
    const successMs: number[] = [];
    let failed = 0;
    let sent = 0;
    let killMs: number | undefined;
    let killing: Promise<void> | undefined;
    const startMs = performance.now();
    const killAtMs = startMs + ctx.timing.warmupMs + ctx.timing.durationMs / 3;
    const plannedEndMs = startMs + ctx.timing.warmupMs + ctx.timing.durationMs;
    const endMs = (): number => {
      if (killMs === undefined) return Number.POSITIVE_INFINITY;
      const firstAfter = successMs.find((at) => at > killMs!);
      if (firstAfter === undefined) return killMs + FAILOVER_TIMEOUT_MS;
      return Math.max(plannedEndMs, firstAfter + AFTER_RECOVERY_MS);
    };
    while (performance.now() < endMs()) {
      if (killMs === undefined && performance.now() >= killAtMs) {
        watcher.beginDeliberate(label);
        killMs = performance.now();
        killing = cluster.kill(leaderId);
      }
      const text = `${queue} #${sent++}`;
      try {
        await client.enqueue(queue, text.padEnd(ctx.body.length, "."));
        acknowledged.add(text);
        successMs.push(performance.now());
      } catch {
        failed++;
      }
    }
    await killing;
    const killedAtMs = killMs!;
    const firstAfter = successMs.find((at) => at > killedAtMs);
    if (firstAfter === undefined) throw new Error(`no enqueue succeeded within ${FAILOVER_TIMEOUT_MS} ms of killing leader ${leaderId}`);
    const { term } = await cluster.stableLeader();
    await watcher.endDeliberate(term, FAILOVER_TIMEOUT_MS);
    const found = await drainBodies(client, queue, acknowledged.size + failed);
    let missing = 0;
    for (const text of acknowledged) if (!found.has(text)) missing++;
    const duplicates = [...found.values()].filter((count) => count > 1).length;
    return {
      longestGapMs: longestGap(successMs),
      firstSuccessAfterKillMs: firstAfter - killedAtMs,
      acknowledged: acknowledged.size,
      failed,
      missing,
      duplicates,
    };
  });
  const rejoinStartMs = performance.now();
  await cluster.restart(leaderId);
  await cluster.stableLeader();
  return { killedId: leaderId, ...load, rejoinMs: performance.now() - rejoinStartMs };
}

/** Runs `work` with a fresh client on a freshly created `queue`, then deletes the queue and closes the client. */
async function onQueue<T>(ctx: WorkloadContext, queue: string, work: (client: RaftqClient) => Promise<T>): Promise<T> {
  const client = connect({ addresses: ctx.cluster.addresses });
  try {
    await client.createQueue(queue);
    const result = await work(client);
    await client.deleteQueue(queue);
    return result;
  } finally {
    client.close();
  }
}

/** Enqueues `messages` copies of `body` in batches, a few in flight. */
async function prefill(client: RaftqClient, queue: string, body: Buffer, messages: number): Promise<void> {
  let remaining = messages;
  const worker = async (): Promise<void> => {
    while (remaining > 0) {
      const size = Math.min(PREFILL_BATCH_MESSAGES, remaining);
      remaining -= size;
      await client.enqueueBatch(queue, Array.from({ length: size }, () => ({ body })));
    }
  };
  await Promise.all(Array.from({ length: PREFILL_BATCHES_IN_FLIGHT }, worker));
}

/** Leases and acks (by id) everything in `queue`; returns how often each body text was seen. */
async function drainBodies(client: RaftqClient, queue: string, expectedAtMost: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const startMs = performance.now();
  // Each round takes up to VERIFY_DEQUEUE_MESSAGES; a few spare rounds cover a short last one.
  const maxRounds = Math.ceil(expectedAtMost / VERIFY_DEQUEUE_MESSAGES) + 10;
  for (let round = 0; round < maxRounds; round++) {
    checkDeadline(startMs, `verifying "${queue}"`);
    const deliveries = await client.dequeue(queue, { maxMessages: VERIFY_DEQUEUE_MESSAGES });
    if (deliveries.length === 0) {
      const stats = await client.queueStats(queue);
      if (stats.ready + stats.inFlight + stats.delayed === 0) return seen;
      continue;
    }
    for (const delivery of deliveries) {
      const text = delivery.text().replace(/\.+$/, "");
      seen.set(text, (seen.get(text) ?? 0) + 1);
    }
    await client.ack(queue, { ids: deliveries.map((delivery) => delivery.id) });
  }
  throw new Error(`"${queue}" still held messages after ${maxRounds} Dequeue rounds (expected at most ${expectedAtMost} messages)`);
}

/** The longest interval between consecutive times. */
function longestGap(timesMs: readonly number[]): number {
  let longest = 0;
  for (let index = 1; index < timesMs.length; index++) longest = Math.max(longest, timesMs[index]! - timesMs[index - 1]!);
  return longest;
}

/** The drain's rate, and its CPU when the timing carries a meter (started when the drain began). */
function drainResult(ctx: WorkloadContext, messages: number, startMs: number): DrainResult {
  const elapsedMs = performance.now() - startMs;
  const meter = ctx.timing.cpu;
  meter?.stop();
  const cpu = meter?.perMessage(messages);
  return { messagesPerSecond: messages / (elapsedMs / 1000), messages, elapsedMs, ...(cpu ? { cpu } : {}) };
}

function checkDeadline(startMs: number, what: string): void {
  if (performance.now() - startMs > DRAIN_TIMEOUT_MS) throw new Error(`${what} took longer than ${DRAIN_TIMEOUT_MS} ms`);
}
