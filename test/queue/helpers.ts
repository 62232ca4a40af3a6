/** Builders and assertions shared by the queue tests: commands read like the API calls they stand for. */
import { expect } from "vitest";
import type {
  AckCommand,
  CreateQueueCommand,
  DeleteQueueCommand,
  EnqueueCommand,
  ExtendLeaseCommand,
  LeaseCommand,
  NackCommand,
  NewMessage,
  PurgeQueueCommand,
} from "../../src/queue/commands.js";
import type { ErrorCode, QueueError } from "../../src/queue/errors.js";
import type { Applied, Delivery, Outcome, QueueStats, Undecodable } from "../../src/queue/results.js";
import type { QueueSettings } from "../../src/queue/settings.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A message with a text body; other fields default to none. */
export function msg(text: string, options: Partial<Omit<NewMessage, "body">> = {}): NewMessage {
  return { body: utf8.encode(text), idempotencyKey: "", delayMs: 0, headers: {}, ...options };
}

/** The text bodies of deliveries, in order. */
export function texts(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((delivery) => fromUtf8.decode(delivery.body));
}

/** Which messages an Ack, Nack or ExtendLease names. */
export interface Targets {
  readonly ids?: readonly number[];
  readonly receipts?: readonly string[];
}

/** Command builders; every one takes the leader's clock `nowMs` explicitly. */
export const cmd = {
  create(queue: string, nowMs: number, settings: Partial<QueueSettings> = {}): CreateQueueCommand {
    return {
      kind: "createQueue",
      nowMs,
      queue,
      maxDeliveries: 0,
      deadLetterQueue: "",
      visibilityTimeoutMs: 0,
      maxLength: 0,
      maxMessageBytes: 0,
      dedupWindowMs: 0,
      ...settings,
    };
  },
  enqueue(queue: string, nowMs: number, messages: readonly (NewMessage | string)[], autoCreate = true): EnqueueCommand {
    return {
      kind: "enqueue",
      nowMs,
      queue,
      autoCreate,
      messages: messages.map((message) => (typeof message === "string" ? msg(message) : message)),
    };
  },
  lease(queue: string, nowMs: number, maxMessages = 1, visibilityTimeoutMs = 0): LeaseCommand {
    return { kind: "lease", nowMs, queue, maxMessages, visibilityTimeoutMs };
  },
  ack(queue: string, nowMs: number, targets: Targets): AckCommand {
    return { kind: "ack", nowMs, queue, ids: targets.ids ?? [], receipts: targets.receipts ?? [] };
  },
  nack(queue: string, nowMs: number, targets: Targets, delayMs = 0): NackCommand {
    return { kind: "nack", nowMs, queue, ids: targets.ids ?? [], receipts: targets.receipts ?? [], delayMs };
  },
  extend(queue: string, nowMs: number, targets: Targets, visibilityTimeoutMs = 0): ExtendLeaseCommand {
    return {
      kind: "extendLease",
      nowMs,
      queue,
      ids: targets.ids ?? [],
      receipts: targets.receipts ?? [],
      visibilityTimeoutMs,
    };
  },
  purge(queue: string, nowMs: number): PurgeQueueCommand {
    return { kind: "purgeQueue", nowMs, queue };
  },
  remove(queue: string, nowMs: number): DeleteQueueCommand {
    return { kind: "deleteQueue", nowMs, queue };
  },
};

/** The value of a command result or read that must have succeeded. */
export function ok<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new Error(`expected success, got: ${outcome.error.message}`);
  return outcome.value;
}

/** The error of a command that must have failed with `code`. */
export function refused(applied: Applied | Undecodable, code: ErrorCode): QueueError {
  if (applied.ok) throw new Error(`expected ${applied.kind} to fail with code ${code}, it succeeded`);
  expect(applied.error.code).toBe(code);
  return applied.error;
}

/** Checks a queue's counts add up: ready + in flight + delayed = enqueued - acked - dead-lettered - purged. */
export function expectBalanced(queue: string, stats: QueueStats): void {
  const held = stats.ready + stats.inFlight + stats.delayed;
  const remaining = stats.enqueuedTotal - stats.ackedTotal - stats.deadLetteredTotal - stats.purgedTotal;
  expect(held, `${queue}: ${JSON.stringify(stats)}`).toBe(remaining);
  for (const count of Object.values(stats)) expect(count).toBeGreaterThanOrEqual(0);
}

/** `value` as plain data, byte arrays (Uint8Array or Buffer alike) as arrays of numbers. */
export function plainData(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plainData);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plainData(item)]));
  }
  return value;
}

/** A seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
