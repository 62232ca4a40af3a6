/** Per-queue settings: their defaults, their bounds, and how a CreateQueue request resolves to them. */
import { ErrorCode, QueueError } from "./errors.js";
import {
  MAX_DEDUP_WINDOW_MS,
  MAX_MAX_DELIVERIES,
  MAX_MAX_LENGTH,
  MAX_MAX_MESSAGE_BYTES,
  MAX_VISIBILITY_TIMEOUT_MS,
} from "./limits.js";
import { quote, validateQueueName, validateRange } from "./validation.js";

/** A queue's settings, every default applied. */
export interface QueueSettings {
  /** Deliveries after which an expiring or nacked message is dead-lettered; 0 = never. */
  readonly maxDeliveries: number;
  /** Queue receiving dead-lettered messages; "" = they are dropped. */
  readonly deadLetterQueue: string;
  /** Lease length when a Dequeue, Subscribe or ExtendLease does not choose one. */
  readonly visibilityTimeoutMs: number;
  /** Most messages held: ready, delayed and in flight together. */
  readonly maxLength: number;
  /** Largest body accepted, inclusive. */
  readonly maxMessageBytes: number;
  /** How long (log time) an idempotency key is remembered. */
  readonly dedupWindowMs: number;
}

/** Settings as requested: a 0 or "" field takes the default. */
export type QueueSettingsInput = QueueSettings;

/**
 * Defaults. max_length defaults to 1,000,000 rather than unlimited so a stuck consumer fills a queue to a
 * clear RESOURCE_EXHAUSTED instead of exhausting the nodes' memory.
 */
export const DEFAULT_SETTINGS: QueueSettings = {
  maxDeliveries: 0,
  deadLetterQueue: "",
  visibilityTimeoutMs: 30_000,
  maxLength: 1_000_000,
  maxMessageBytes: 1024 * 1024,
  dedupWindowMs: 300_000,
};

/** Messages a Dequeue leases when max_messages is 0. */
export const DEFAULT_MAX_MESSAGES = 1;
/** Subscribe's prefetch when the request leaves it 0. */
export const DEFAULT_PREFETCH = 10;

/** The settings of queue `queue` as requested by `input`, or why they are invalid. */
export function resolveSettings(queue: string, input: QueueSettingsInput): QueueSettings | QueueError {
  const problem =
    validateRange("max_deliveries", input.maxDeliveries, 0, MAX_MAX_DELIVERIES) ??
    validateRange("visibility_timeout_ms", input.visibilityTimeoutMs, 0, MAX_VISIBILITY_TIMEOUT_MS) ??
    validateRange("max_length", input.maxLength, 0, MAX_MAX_LENGTH) ??
    validateRange("max_message_bytes", input.maxMessageBytes, 0, MAX_MAX_MESSAGE_BYTES) ??
    validateRange("dedup_window_ms", input.dedupWindowMs, 0, MAX_DEDUP_WINDOW_MS) ??
    validateDeadLetterQueue(queue, input);
  if (problem !== undefined) return problem;
  return {
    maxDeliveries: input.maxDeliveries,
    deadLetterQueue: input.deadLetterQueue,
    visibilityTimeoutMs: input.visibilityTimeoutMs || DEFAULT_SETTINGS.visibilityTimeoutMs,
    maxLength: input.maxLength || DEFAULT_SETTINGS.maxLength,
    maxMessageBytes: input.maxMessageBytes || DEFAULT_SETTINGS.maxMessageBytes,
    dedupWindowMs: input.dedupWindowMs || DEFAULT_SETTINGS.dedupWindowMs,
  };
}

function validateDeadLetterQueue(queue: string, input: QueueSettingsInput): QueueError | undefined {
  if (input.deadLetterQueue === "") return undefined;
  const problem = validateQueueName(input.deadLetterQueue, "dead_letter_queue");
  if (problem !== undefined) return problem;
  if (input.deadLetterQueue === queue) {
    return new QueueError(
      ErrorCode.InvalidArgument,
      `dead_letter_queue ${quote(queue)} is the queue itself: name another queue, or "" to drop such messages`,
    );
  }
  if (input.maxDeliveries === 0) {
    return new QueueError(
      ErrorCode.InvalidArgument,
      `dead_letter_queue ${quote(input.deadLetterQueue)} would never receive anything: set max_deliveries too`,
    );
  }
  return undefined;
}

const SETTING_NAMES: readonly (readonly [keyof QueueSettings, string])[] = [
  ["maxDeliveries", "max_deliveries"],
  ["deadLetterQueue", "dead_letter_queue"],
  ["visibilityTimeoutMs", "visibility_timeout_ms"],
  ["maxLength", "max_length"],
  ["maxMessageBytes", "max_message_bytes"],
  ["dedupWindowMs", "dedup_window_ms"],
];

/** How `requested` differs from `existing`, one phrase per setting, e.g. "max_length is 100, not 5". */
export function settingsDifferences(existing: QueueSettings, requested: QueueSettings): string[] {
  return SETTING_NAMES.filter(([key]) => existing[key] !== requested[key]).map(
    ([key, name]) => `${name} is ${JSON.stringify(existing[key])}, not ${JSON.stringify(requested[key])}`,
  );
}
