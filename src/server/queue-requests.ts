/**
 * Turns public API requests into state machine commands, checking them at the edge so that bad input is
 * refused with INVALID_ARGUMENT before it reaches the log. The leader stamps every command with its clock.
 */
import type { AckRequest__Output } from "../generated/raftq/v1/AckRequest.js";
import type { BatchMessage__Output } from "../generated/raftq/v1/BatchMessage.js";
import type { CreateQueueRequest__Output } from "../generated/raftq/v1/CreateQueueRequest.js";
import type { DequeueRequest__Output } from "../generated/raftq/v1/DequeueRequest.js";
import type { EnqueueRequest__Output } from "../generated/raftq/v1/EnqueueRequest.js";
import type { ExtendLeaseRequest__Output } from "../generated/raftq/v1/ExtendLeaseRequest.js";
import type { NackRequest__Output } from "../generated/raftq/v1/NackRequest.js";
import type { Delivery as DeliveryMessage } from "../generated/raftq/v1/Delivery.js";
import type { QueueStats as QueueStatsMessage } from "../generated/raftq/v1/QueueStats.js";
import { validateCommand } from "../queue/command-validation.js";
import type {
  AckCommand,
  Command,
  CreateQueueCommand,
  EnqueueCommand,
  ExtendLeaseCommand,
  LeaseCommand,
  NackCommand,
  NewMessage,
} from "../queue/commands.js";
import type { Delivery, QueueStats } from "../queue/results.js";
import { validateQueueName, validateWaitMs } from "../queue/validation.js";

/** Throws the command's problem (a QueueError, mapped to its gRPC code) or returns it unchanged. */
export function checked<C extends Command>(command: C): C {
  const problem = validateCommand(command);
  if (problem) throw problem;
  return command;
}

/** Throws if the queue name is malformed (for reads, which build no command). */
export function checkQueueName(queue: string): void {
  const problem = validateQueueName(queue);
  if (problem) throw problem;
}

function newMessage(message: EnqueueRequest__Output | BatchMessage__Output): NewMessage {
  return {
    body: message.body,
    idempotencyKey: message.idempotencyKey ?? "",
    delayMs: message.delayMs,
    headers: message.headers,
  };
}

export function enqueueCommand(request: EnqueueRequest__Output, autoCreate: boolean, nowMs: number): EnqueueCommand {
  return checked({ kind: "enqueue", nowMs, queue: request.queue, autoCreate, messages: [newMessage(request)] });
}

export function enqueueBatchCommand(
  queue: string,
  messages: readonly BatchMessage__Output[],
  autoCreate: boolean,
  nowMs: number,
): EnqueueCommand {
  return checked({ kind: "enqueue", nowMs, queue, autoCreate, messages: messages.map(newMessage) });
}

export function leaseCommand(queue: string, maxMessages: number, visibilityTimeoutMs: number, nowMs: number): LeaseCommand {
  return checked({ kind: "lease", nowMs, queue, maxMessages, visibilityTimeoutMs });
}

/** A Dequeue's lease command, plus its validated long-poll wait. */
export function dequeueCommand(request: DequeueRequest__Output, nowMs: number): { command: LeaseCommand; waitMs: number } {
  const waitProblem = validateWaitMs(request.waitMs);
  if (waitProblem) throw waitProblem;
  return {
    command: leaseCommand(request.queue, request.maxMessages, request.visibilityTimeoutMs, nowMs),
    waitMs: request.waitMs,
  };
}

export function ackCommand(request: AckRequest__Output, nowMs: number): AckCommand {
  return checked({ kind: "ack", nowMs, queue: request.queue, ids: request.ids, receipts: request.receipts });
}

export function nackCommand(request: NackRequest__Output, nowMs: number): NackCommand {
  return checked({
    kind: "nack",
    nowMs,
    queue: request.queue,
    ids: request.ids,
    receipts: request.receipts,
    delayMs: request.delayMs,
  });
}

export function extendLeaseCommand(request: ExtendLeaseRequest__Output, nowMs: number): ExtendLeaseCommand {
  return checked({
    kind: "extendLease",
    nowMs,
    queue: request.queue,
    ids: request.ids,
    receipts: request.receipts,
    visibilityTimeoutMs: request.visibilityTimeoutMs,
  });
}

export function createQueueCommand(request: CreateQueueRequest__Output, nowMs: number): CreateQueueCommand {
  return checked({
    kind: "createQueue",
    nowMs,
    queue: request.queue,
    maxDeliveries: request.maxDeliveries,
    deadLetterQueue: request.deadLetterQueue,
    visibilityTimeoutMs: request.visibilityTimeoutMs,
    maxLength: request.maxLength,
    maxMessageBytes: request.maxMessageBytes,
    dedupWindowMs: request.dedupWindowMs,
  });
}

export function deliveryMessage(delivery: Delivery): DeliveryMessage {
  return {
    id: delivery.id,
    body: Buffer.from(delivery.body.buffer, delivery.body.byteOffset, delivery.body.byteLength),
    headers: { ...delivery.headers },
    deliveryCount: delivery.deliveryCount,
    enqueuedAtMs: delivery.enqueuedAtMs,
    receipt: delivery.receipt,
  };
}

export function statsMessage(stats: QueueStats): QueueStatsMessage {
  return { ...stats };
}
