/**
 * Checks of a whole command that need no queue state. The server runs them before proposing, so bad input
 * never reaches the log; the state machine runs them again on apply, so a bad entry is refused, not applied.
 */
import type { Command, EnqueueCommand } from "./commands.js";
import { ErrorCode, QueueError } from "./errors.js";
import {
  MAX_BATCH_BYTES,
  MAX_BATCH_MESSAGES,
  MAX_DELAY_MS,
  MAX_MAX_MESSAGE_BYTES,
  MAX_VISIBILITY_TIMEOUT_MS,
} from "./limits.js";
import { resolveSettings } from "./settings.js";
import {
  headersByteLength,
  validateBodySize,
  validateHeaders,
  validateIdempotencyKey,
  validateIdsAndReceipts,
  validateMaxMessages,
  validateQueueName,
  validateRange,
} from "./validation.js";

/** Undefined if `command` is well formed, else what is wrong with it. */
export function validateCommand(command: Command): QueueError | undefined {
  const problem =
    validateRange("now_ms", command.nowMs, 0, Number.MAX_SAFE_INTEGER) ?? validateQueueName(command.queue);
  if (problem !== undefined) return problem;
  switch (command.kind) {
    case "createQueue": {
      const settings = resolveSettings(command.queue, command);
      return settings instanceof QueueError ? settings : undefined;
    }
    case "deleteQueue":
    case "purgeQueue":
      return undefined;
    case "enqueue":
      return validateEnqueue(command);
    case "lease":
      return (
        validateMaxMessages(command.maxMessages) ??
        validateRange("visibility_timeout_ms", command.visibilityTimeoutMs, 0, MAX_VISIBILITY_TIMEOUT_MS)
      );
    case "ack":
      return validateIdsAndReceipts(command.ids, command.receipts);
    case "nack":
      return (
        validateIdsAndReceipts(command.ids, command.receipts) ??
        validateRange("delay_ms", command.delayMs, 0, MAX_DELAY_MS)
      );
    case "extendLease":
      return (
        validateIdsAndReceipts(command.ids, command.receipts) ??
        validateRange("visibility_timeout_ms", command.visibilityTimeoutMs, 0, MAX_VISIBILITY_TIMEOUT_MS)
      );
  }
}

function validateEnqueue(command: EnqueueCommand): QueueError | undefined {
  const count = command.messages.length;
  if (count === 0 || count > MAX_BATCH_MESSAGES) {
    return new QueueError(
      ErrorCode.InvalidArgument,
      `batch has ${count} messages: send 1 to ${MAX_BATCH_MESSAGES} messages per batch`,
    );
  }
  let batchBytes = 0;
  for (const [index, message] of command.messages.entries()) {
    const problem =
      validateBodySize(message.body.byteLength, MAX_MAX_MESSAGE_BYTES) ??
      validateIdempotencyKey(message.idempotencyKey) ??
      validateRange("delay_ms", message.delayMs, 0, MAX_DELAY_MS) ??
      validateHeaders(message.headers);
    if (problem !== undefined) return inMessage(index, count, problem);
    batchBytes +=
      message.body.byteLength + Buffer.byteLength(message.idempotencyKey, "utf8") + headersByteLength(message.headers);
  }
  if (batchBytes > MAX_BATCH_BYTES) {
    return new QueueError(
      ErrorCode.InvalidArgument,
      `batch carries ${batchBytes} bytes: split it into batches of at most ${MAX_BATCH_BYTES} bytes`,
    );
  }
  return undefined;
}

/** Prefixes the position of the offending message of a batch (the single message of an Enqueue is not). */
export function inMessage(index: number, count: number, error: QueueError): QueueError {
  if (count === 1) return error;
  return new QueueError(error.code, `message ${index} of the batch: ${error.message}`);
}
