/**
 * Producing and draining for the fault tests: a background producer that records exactly which enqueues
 * the cluster acknowledged (and when), a drain that empties a queue, and the check every fault test ends
 * with: nothing acknowledged is lost, nothing appears that was never sent, and nothing appears twice.
 */
import { expect } from "vitest";
import type { EnqueueResult, RaftqClient } from "../../src/client/index.js";

/** How a producer runs. */
export interface ProducerOptions {
  /** Bodies are `${prefix}-${n}`, n from 0; unique per producer. */
  prefix: string;
  /** Stop after this many enqueues have been started (default: until stop()). */
  total?: number;
  /** Enqueues in flight at once (default 4). */
  concurrency?: number;
}

/** An acknowledged enqueue. */
export interface Acknowledgement {
  readonly body: string;
  readonly id: number;
  /** Date.now() when the answer arrived. */
  readonly atMs: number;
}

/** Sends one message, e.g. `(body) => client.enqueue(queue, body)` or `(body) => publisher.publish(body)`. */
export type Send = (body: string) => Promise<EnqueueResult>;

/**
 * Sends numbered messages through the SDK (which retries with idempotency keys) from `concurrency` loops
 * until `total` were started or stop() is called. It never throws: failures are recorded.
 */
export class Producer {
  /** Every body an enqueue was started for: what may legitimately be in the queue. */
  readonly attempted = new Set<string>();
  /** Every enqueue the cluster acknowledged, in the order the answers arrived. */
  readonly acknowledged: Acknowledgement[] = [];
  /** Enqueues that failed even after the SDK's retries: body and error. */
  readonly failures: { body: string; error: unknown }[] = [];
  private next = 0;
  private stopped = false;
  private readonly running: Promise<void>;

  constructor(
    private readonly send: Send,
    private readonly options: ProducerOptions,
  ) {
    const loops = Array.from({ length: options.concurrency ?? 4 }, () => this.loop());
    this.running = Promise.all(loops).then(() => undefined);
  }

  /** Bodies the cluster acknowledged. */
  acknowledgedBodies(): Set<string> {
    return new Set(this.acknowledged.map((ack) => ack.body));
  }

  /** What was sent, in the shape expectNoLossNoDuplicates takes. */
  sent(): SentMessages {
    return { attempted: this.attempted, acknowledged: this.acknowledgedBodies() };
  }

  /** The first acknowledgement that arrived after `timeMs`, if any. */
  firstAcknowledgedAfter(timeMs: number): Acknowledgement | undefined {
    return this.acknowledged.find((ack) => ack.atMs > timeMs);
  }

  /** Resolves once `total` enqueues are settled (or, without a total, after stop()). */
  finished(): Promise<void> {
    return this.running;
  }

  /** Starts no new enqueue and resolves once the ones in flight are settled. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.running;
  }

  private async loop(): Promise<void> {
    const total = this.options.total ?? Infinity;
    while (!this.stopped && this.next < total) {
      const body = `${this.options.prefix}-${this.next++}`;
      this.attempted.add(body);
      try {
        const result = await this.send(body);
        this.acknowledged.push({ body, id: result.id, atMs: Date.now() });
      } catch (error) {
        this.failures.push({ body, error });
        // A producer that outlives its test (which failed before stopping it) would spin on a closed
        // client and exhaust memory: no test expects anywhere near this many failures.
        if (this.failures.length >= MAX_FAILURES) this.stopped = true;
      }
    }
  }
}

/** Failures after which a producer gives up on its own. */
const MAX_FAILURES = 10_000;

/**
 * Dequeues and acks everything in `queue` until a dequeue comes back empty and the stats show nothing
 * ready, delayed or in flight; returns the bodies in the order they were delivered (repeats included).
 */
export async function drain(client: RaftqClient, queue: string, maxRounds = 1_000): Promise<string[]> {
  const bodies: string[] = [];
  for (let round = 0; round < maxRounds; round++) {
    const deliveries = await client.dequeue(queue, { maxMessages: 500, visibilityTimeoutMs: 60_000 });
    if (deliveries.length > 0) {
      bodies.push(...deliveries.map((delivery) => delivery.text()));
      const result = await client.ack(queue, { receipts: deliveries.map((delivery) => delivery.receipt) });
      expect(result.refusedReceipts, "acks of a drain refused").toEqual([]);
      continue;
    }
    const stats = await client.queueStats(queue);
    if (stats.ready + stats.inFlight + stats.delayed === 0) return bodies;
    if (stats.inFlight > 0 && stats.ready === 0 && stats.delayed === 0) {
      throw new Error(`cannot drain "${queue}": ${stats.inFlight} messages are leased to someone else`);
    }
  }
  throw new Error(`"${queue}" was not drained after ${maxRounds} rounds`);
}

/** What a test sent: every body an enqueue was started for, and those the cluster acknowledged. */
export interface SentMessages {
  readonly attempted: ReadonlySet<string>;
  readonly acknowledged: ReadonlySet<string>;
}

/** What a drain found compared with what was sent. */
export interface DrainReport {
  readonly acknowledged: number;
  readonly drained: number;
  /** Drained although never acknowledged (their enqueue's outcome was unknown to the producer). */
  readonly unacknowledgedPresent: number;
}

/**
 * Asserts the end state of a fault test: every acknowledged body was drained, every drained body was
 * actually sent, and none was drained twice (the SDK's idempotency keys make retries harmless).
 */
export function expectNoLossNoDuplicates(sent: SentMessages, drained: readonly string[]): DrainReport {
  const counts = new Map<string, number>();
  for (const body of drained) counts.set(body, (counts.get(body) ?? 0) + 1);
  const lost = [...sent.acknowledged].filter((body) => !counts.has(body));
  const invented = [...counts.keys()].filter((body) => !sent.attempted.has(body));
  const duplicated = [...counts].filter(([, count]) => count > 1).map(([body, count]) => `${body} x${count}`);
  expect(lost, "acknowledged messages that were not drained (lost)").toEqual([]);
  expect(invented, "drained messages that were never sent").toEqual([]);
  expect(duplicated, "messages drained more than once").toEqual([]);
  return {
    acknowledged: sent.acknowledged.size,
    drained: drained.length,
    unacknowledgedPresent: [...counts.keys()].filter((body) => !sent.acknowledged.has(body)).length,
  };
}
