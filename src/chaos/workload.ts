/**
 * The client load of a chaos run: producers and consumers on several queues, each a logical process doing
 * one operation at a time and recording it in the history. Every decision (which queue, how many to
 * lease, ack or nack or abandon) comes from the worker's own PRNG stream, forked from the run's seed in a
 * fixed order, so a replay makes the same decisions in the same order; which message a decision meets
 * depends on timing.
 *
 * - keyed producers ("p1"…): SDK `enqueue` with an idempotency key (the body); after an unknown outcome
 *   they enqueue again with the same key, up to MAX_KEYED_ATTEMPTS times: never a duplicate.
 * - keyless producers ("k1"…): `enqueue` without a key; after an unknown outcome they sometimes send the
 *   same body again, still without a key: the duplicates this may cause are allowed and explained.
 * - publishers ("u1.1"…): lanes publishing through one pipelined `publisher` per queue, keyed.
 * - consumers ("c1"…): `dequeue` with a short lease, then ack most deliveries, nack some and abandon the
 *   rest, whose leases expire so they are delivered again.
 * Bodies are unique: `<process>-<n>`. Every loop is bounded (maxOpsPerWorker) and stops on the signal.
 */
import { connect, isOutcomeUnknown, isRetryable, type ClientOptions, type Delivery, type Publisher, type RaftqClient } from "../client/index.js";
import type { DeliveredMessage, HistoryRecorder } from "./history.js";
import { completeWithError } from "./outcome.js";
import type { Prng } from "./prng.js";
import type { MsRange } from "./schedule.js";
import { sleep, withTimeout } from "./timing.js";

/** The shape of the load. */
export interface WorkloadOptions {
  /** Queue names (default q0, q1, q2). */
  readonly queues: readonly string[];
  /** Keyed single-call producers (default 3). */
  readonly producers: number;
  /** Keyless producers (default 1). */
  readonly keylessProducers: number;
  /** Publisher workers (default 1), each with `publisherLanes` lanes. */
  readonly publishers: number;
  readonly publisherLanes: number;
  /** Consumers (default 3). */
  readonly consumers: number;
  /** Lease length of every dequeue (default 2000 ms: abandoned messages come back soon). */
  readonly visibilityTimeoutMs: number;
  /** Chance a delivery is acked (default 0.85) or nacked (default 0.07); the rest are abandoned. */
  readonly ackChance: number;
  readonly nackChance: number;
  /** Pause between two operations of one worker (default 0–20 ms), to keep a small machine responsive. */
  readonly thinkMs: MsRange;
  /** Most operations one worker performs (default 1,000,000). */
  readonly maxOpsPerWorker: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  queues: ["q0", "q1", "q2"],
  producers: 3,
  keylessProducers: 1,
  publishers: 1,
  publisherLanes: 4,
  consumers: 3,
  visibilityTimeoutMs: 2_000,
  ackChance: 0.85,
  nackChance: 0.07,
  thinkMs: [0, 20],
  maxOpsPerWorker: 1_000_000,
};

/** Attempts of one keyed message (the SDK retries inside each). */
const MAX_KEYED_ATTEMPTS = 3;
/** Chance a keyless producer sends a body again after an unknown outcome. */
const KEYLESS_RESEND_CHANCE = 0.5;
/** How long a consumer's dequeue may wait on the server for a message. */
const DEQUEUE_WAIT_MS = 300;
/** Largest nack delay. */
const MAX_NACK_DELAY_MS = 200;

/**
 * Client settings of every worker: a bounded call time, and grpc-js reconnect backoff capped at 1 s (its
 * default grows to 120 s) so a restarted node is used again soon.
 */
export function workerClientOptions(addresses: readonly string[]): ClientOptions {
  return {
    addresses,
    timeoutMs: 8_000,
    attemptTimeoutMs: 2_000,
    maxBackoffMs: 500,
    channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 1_000 },
  };
}

/** What the workers share. */
interface WorkerContext {
  readonly history: HistoryRecorder;
  readonly options: WorkloadOptions;
  readonly signal: AbortSignal;
}

/** Creates the workload's queues with the workload's lease length; retries through faults up to `timeoutMs`. */
export async function createQueues(addresses: readonly string[], options: WorkloadOptions, timeoutMs: number): Promise<void> {
  const client = connect(workerClientOptions(addresses));
  try {
    const deadline = Date.now() + timeoutMs;
    for (const queue of options.queues) {
      for (;;) {
        try {
          await client.createQueue(queue, { visibilityTimeoutMs: options.visibilityTimeoutMs, maxDeliveries: 0 });
          break;
        } catch (error) {
          if (!(isRetryable(error) || isOutcomeUnknown(error)) || Date.now() > deadline) {
            throw new Error(`could not create queue ${queue}: ${(error as Error).message}`, { cause: error });
          }
          await sleep(200);
        }
      }
    }
  } finally {
    client.close();
  }
}

/** Runs every worker until `signal` aborts (or each hits its bound); resolves once all have stopped. */
export async function runWorkload(addresses: readonly string[], history: HistoryRecorder, prng: Prng, options: WorkloadOptions, signal: AbortSignal): Promise<void> {
  const context: WorkerContext = { history, options, signal };
  const clients: RaftqClient[] = [];
  const client = (): RaftqClient => {
    const created = connect(workerClientOptions(addresses));
    clients.push(created);
    return created;
  };
  // Forks are taken in a fixed order before anything runs, so each worker's stream is the same every replay.
  const workers: Promise<void>[] = [];
  for (let i = 1; i <= options.producers; i++) workers.push(keyedProducer(`p${i}`, client(), prng.fork(), context));
  for (let i = 1; i <= options.keylessProducers; i++) workers.push(keylessProducer(`k${i}`, client(), prng.fork(), context));
  for (let i = 1; i <= options.publishers; i++) workers.push(publisherWorker(`u${i}`, client(), prng.fork(), context));
  for (let i = 1; i <= options.consumers; i++) workers.push(consumer(`c${i}`, client(), prng.fork(), context));
  try {
    await Promise.all(workers);
  } finally {
    for (const each of clients) each.close();
  }
}

async function keyedProducer(name: string, client: RaftqClient, prng: Prng, context: WorkerContext): Promise<void> {
  const { history, options, signal } = context;
  for (let n = 0; n < options.maxOpsPerWorker && !signal.aborted; n++) {
    const queue = prng.pick(options.queues);
    const body = `${name}-${n}`;
    for (let attempt = 1; attempt <= MAX_KEYED_ATTEMPTS; attempt++) {
      const op = history.invoke(name, "enqueue", queue, { body, key: body, via: "call" });
      try {
        const result = await client.enqueue(queue, body, { idempotencyKey: body });
        op.ok({ id: result.id, duplicate: result.duplicate });
        break;
      } catch (error) {
        if (completeWithError(op, error) === "fail" || signal.aborted) break;
      }
    }
    await think(prng, context);
  }
}

async function keylessProducer(name: string, client: RaftqClient, prng: Prng, context: WorkerContext): Promise<void> {
  const { history, options, signal } = context;
  for (let n = 0; n < options.maxOpsPerWorker && !signal.aborted; n++) {
    const queue = prng.pick(options.queues);
    const body = `${name}-${n}`;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const op = history.invoke(name, "enqueue", queue, { body, key: null, via: "call" });
      try {
        const result = await client.enqueue(queue, body, { idempotencyKey: false });
        op.ok({ id: result.id, duplicate: result.duplicate });
        break;
      } catch (error) {
        if (completeWithError(op, error) === "fail" || signal.aborted || !prng.chance(KEYLESS_RESEND_CHANCE)) break;
      }
    }
    await think(prng, context);
  }
}

/** Lanes publishing through one shared publisher per queue. */
async function publisherWorker(name: string, client: RaftqClient, prng: Prng, context: WorkerContext): Promise<void> {
  const { options } = context;
  const publishers = new Map<string, Publisher>();
  const publisherFor = (queue: string): Publisher => {
    let publisher = publishers.get(queue);
    if (!publisher) {
      publisher = client.publisher(queue, { maxInFlight: options.publisherLanes * 2 });
      publishers.set(queue, publisher);
    }
    return publisher;
  };
  const lanes = Array.from({ length: options.publisherLanes }, (_, index) => publisherLane(`${name}.${index + 1}`, publisherFor, prng.fork(), context));
  await Promise.all(lanes);
  // Each publish is already settled; closing only ends the streams.
  await Promise.all([...publishers.values()].map((publisher) => withTimeout(publisher.close(), 10_000, `closing the ${publisher.queue} publisher`).catch(() => {})));
}

async function publisherLane(name: string, publisherFor: (queue: string) => Publisher, prng: Prng, context: WorkerContext): Promise<void> {
  const { history, options, signal } = context;
  for (let n = 0; n < options.maxOpsPerWorker && !signal.aborted; n++) {
    const queue = prng.pick(options.queues);
    const body = `${name}-${n}`;
    const op = history.invoke(name, "enqueue", queue, { body, key: body, via: "publisher" });
    try {
      const result = await publisherFor(queue).publish(body, { idempotencyKey: body });
      op.ok({ id: result.id, duplicate: result.duplicate });
    } catch (error) {
      completeWithError(op, error);
    }
    await think(prng, context);
  }
}

async function consumer(name: string, client: RaftqClient, prng: Prng, context: WorkerContext): Promise<void> {
  const { history, options, signal } = context;
  for (let ops = 0; ops < options.maxOpsPerWorker && !signal.aborted; ops++) {
    const queue = prng.pick(options.queues);
    const request = { maxMessages: prng.int(1, 5), visibilityTimeoutMs: options.visibilityTimeoutMs, waitMs: DEQUEUE_WAIT_MS };
    const op = history.invoke(name, "dequeue", queue, request);
    let deliveries: Delivery[];
    try {
      deliveries = await client.dequeue(queue, request);
      op.ok({ messages: deliveries.map(delivered) });
    } catch (error) {
      completeWithError(op, error);
      await think(prng, context);
      continue;
    }
    for (const delivery of deliveries) {
      const roll = prng.next();
      if (roll < options.ackChance) await settle(name, "ack", client, delivery, 0, history);
      else if (roll < options.ackChance + options.nackChance) await settle(name, "nack", client, delivery, prng.int(0, MAX_NACK_DELAY_MS), history);
      // Otherwise abandoned: its lease runs out and it is delivered again.
    }
    await think(prng, context);
  }
}

/** Acks or nacks one delivery by its receipt, recording the operation. */
export async function settle(
  process: string,
  f: "ack" | "nack",
  client: RaftqClient,
  delivery: Delivery,
  delayMs: number,
  history: HistoryRecorder,
): Promise<void> {
  const target = { id: delivery.id, body: delivery.text(), receipt: delivery.receipt, deliveryCount: delivery.deliveryCount };
  const refs = { receipts: [delivery.receipt] };
  if (f === "ack") {
    const op = history.invoke(process, "ack", delivery.queue, target);
    try {
      op.ok({ settled: (await client.ack(delivery.queue, refs)).refusedReceipts.length === 0 });
    } catch (error) {
      completeWithError(op, error);
    }
  } else {
    const op = history.invoke(process, "nack", delivery.queue, { ...target, delayMs });
    try {
      op.ok({ settled: (await client.nack(delivery.queue, { ...refs, delayMs })).refusedReceipts.length === 0 });
    } catch (error) {
      completeWithError(op, error);
    }
  }
}

/** A delivery as the history keeps it. */
export function delivered(delivery: Delivery): DeliveredMessage {
  return { id: delivery.id, body: delivery.text(), deliveryCount: delivery.deliveryCount, receipt: delivery.receipt };
}

function think(prng: Prng, context: WorkerContext): Promise<boolean> {
  return sleep(prng.int(...context.options.thinkMs), context.signal);
}
