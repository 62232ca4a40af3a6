/**
 * The commands of the queue state machine, as TypeScript. This is the one mirror of
 * proto/raftq/v1/commands.proto: each variant holds `kind` (the oneof member), `nowMs`, and exactly the
 * fields of its proto message in camelCase, so the codec maps between them without per-field code.
 */
import type { QueueSettingsInput } from "./settings.js";

interface CommandBase {
  /** The leader's clock (Unix ms) when it proposed the command. */
  readonly nowMs: number;
  /** The queue the command acts on. */
  readonly queue: string;
}

/** Creates a queue; settings fields left 0 or "" take the defaults. */
export interface CreateQueueCommand extends CommandBase, QueueSettingsInput {
  readonly kind: "createQueue";
}

/** Deletes a queue and its messages. */
export interface DeleteQueueCommand extends CommandBase {
  readonly kind: "deleteQueue";
}

/** Drops every message of a queue. */
export interface PurgeQueueCommand extends CommandBase {
  readonly kind: "purgeQueue";
}

/** One message of an EnqueueCommand. */
export interface NewMessage {
  readonly body: Uint8Array;
  /** "" = no idempotency key. */
  readonly idempotencyKey: string;
  readonly delayMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** Appends a batch of messages to one queue, all or nothing. */
export interface EnqueueCommand extends CommandBase {
  readonly kind: "enqueue";
  /** Create the queue with default settings if it is missing, else fail with NOT_FOUND. */
  readonly autoCreate: boolean;
  readonly messages: readonly NewMessage[];
}

/** Leases ready messages (Dequeue, Subscribe). */
export interface LeaseCommand extends CommandBase {
  readonly kind: "lease";
  /** 0 means 1. */
  readonly maxMessages: number;
  /** 0 means the queue's visibility timeout. */
  readonly visibilityTimeoutMs: number;
}

/** Deletes delivered messages by id or receipt. */
export interface AckCommand extends CommandBase {
  readonly kind: "ack";
  readonly ids: readonly number[];
  readonly receipts: readonly string[];
}

/** Returns leased messages to the queue after `delayMs`. */
export interface NackCommand extends CommandBase {
  readonly kind: "nack";
  readonly ids: readonly number[];
  readonly receipts: readonly string[];
  readonly delayMs: number;
}

/** Moves the lease deadline of leased messages to now + `visibilityTimeoutMs`. */
export interface ExtendLeaseCommand extends CommandBase {
  readonly kind: "extendLease";
  readonly ids: readonly number[];
  readonly receipts: readonly string[];
  /** 0 means the queue's visibility timeout. */
  readonly visibilityTimeoutMs: number;
}

/** Any state change of the queues: one Raft log entry. */
export type Command =
  | CreateQueueCommand
  | DeleteQueueCommand
  | PurgeQueueCommand
  | EnqueueCommand
  | LeaseCommand
  | AckCommand
  | NackCommand
  | ExtendLeaseCommand;

/** The name of a command variant, e.g. "enqueue". */
export type CommandKind = Command["kind"];

/** Every command kind, in the order of the proto oneof. */
export const COMMAND_KINDS: readonly CommandKind[] = [
  "createQueue",
  "deleteQueue",
  "purgeQueue",
  "enqueue",
  "lease",
  "ack",
  "nack",
  "extendLease",
];
