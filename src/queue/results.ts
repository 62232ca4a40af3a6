/** What applying a command returns. Results stay in process (the leader maps them to gRPC responses). */
import type { CommandKind } from "./commands.js";
import type { QueueError } from "./errors.js";

/** What CreateQueue did. */
export interface CreateQueueResult {
  /** False when the queue already existed with identical settings. */
  readonly created: boolean;
}

/** What DeleteQueue did. */
export interface DeleteQueueResult {
  /** False when there was no such queue. */
  readonly deleted: boolean;
}

/** What PurgeQueue did. */
export interface PurgeQueueResult {
  /** Messages dropped. */
  readonly purged: number;
}

/** Where each message of an enqueued batch went, by position. */
export interface EnqueueResult {
  /** ids[i] is the id of message i, or the first id of its idempotency key when duplicates[i]. */
  readonly ids: readonly number[];
  readonly duplicates: readonly boolean[];
}

/**
 * One delivery attempt of a message as a lease returns it: everything but the body and headers, which
 * stay in storage until the answer is sent (QueueStateMachine.readDeliveries).
 */
export interface LeasedMessage {
  readonly id: number;
  /** Where the body and headers are stored. */
  readonly bodyId: number;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly enqueuedAtMs: number;
  readonly receipt: string;
}

/** One delivery attempt of a message, with its body and headers, as a Dequeue or Subscribe answers it. */
export interface Delivery extends Omit<LeasedMessage, "bodyId"> {
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** The deliveries of one lease (Dequeue). */
export interface LeaseResult {
  /** Lowest id first; empty when nothing was ready. */
  readonly deliveries: readonly LeasedMessage[];
}

/** What an Ack did. */
export interface AckResult {
  readonly acked: number;
  /** Receipts whose message is gone or was delivered again since. */
  readonly refusedReceipts: readonly string[];
}

/** What a Nack did. */
export interface NackResult {
  /** Messages returned to the queue or dead-lettered. */
  readonly nacked: number;
  /** Receipts whose message is gone, not leased, or was delivered again since. */
  readonly refusedReceipts: readonly string[];
}

/** What an ExtendLease did. */
export interface ExtendLeaseResult {
  readonly extended: number;
  /** Receipts whose message is gone, not leased, or was delivered again since. */
  readonly refusedReceipts: readonly string[];
}

/** Message counts of one queue. ready + inFlight + delayed = enqueued - acked - deadLettered - purged. */
export interface QueueStats {
  readonly ready: number;
  readonly inFlight: number;
  readonly delayed: number;
  readonly enqueuedTotal: number;
  readonly ackedTotal: number;
  /** Messages that reached max_deliveries and left, to the dead-letter queue or dropped. */
  readonly deadLetteredTotal: number;
  readonly purgedTotal: number;
}

/** The result type of each command kind. */
export interface ResultByKind {
  createQueue: CreateQueueResult;
  deleteQueue: DeleteQueueResult;
  purgeQueue: PurgeQueueResult;
  enqueue: EnqueueResult;
  lease: LeaseResult;
  ack: AckResult;
  nack: NackResult;
  extendLease: ExtendLeaseResult;
}

/** A value, or the reason there is none. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: QueueError };

/** The outcome of applying a command of kind K, tagged with K so callers can narrow a mixed stream. */
export type Applied<K extends CommandKind = CommandKind> = K extends CommandKind
  ? { readonly kind: K } & Outcome<ResultByKind[K]>
  : never;

/** The outcome of a log entry that is not a valid command (corrupt or from a newer version). */
export interface Undecodable {
  readonly kind: "undecodable";
  readonly ok: false;
  readonly error: QueueError;
}

/** What the queue state machine returns for one applied log entry. */
export type QueueApplyResult = Applied | Undecodable;
