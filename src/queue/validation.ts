/**
 * Checks of single request fields, shared by the server (to refuse bad input before it reaches the log)
 * and the state machine (which re-checks every command it applies). Each returns undefined when the value
 * is acceptable, else a QueueError saying what is wrong and how to fix it.
 */
import { ErrorCode, QueueError } from "./errors.js";
import {
  MAX_HEADER_KEY_CHARS,
  MAX_HEADERS,
  MAX_HEADERS_BYTES,
  MAX_IDEMPOTENCY_KEY_BYTES,
  MAX_IDS_PER_REQUEST,
  MAX_LEASE_MESSAGES,
  MAX_MAX_MESSAGE_BYTES,
  MAX_QUEUE_NAME_CHARS,
  MAX_RECEIPT_CHARS,
  MAX_WAIT_MS,
} from "./limits.js";
import { parseReceipt } from "./receipt.js";

const QUEUE_NAME_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_QUEUE_NAME_CHARS - 1}}$`);
/** Header keys start with a letter or digit, which also keeps "__proto__" out of header objects. */
const HEADER_KEY_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,${MAX_HEADER_KEY_CHARS - 1}}$`);
/** Longest excerpt of a bad value quoted back in a message, so a huge value cannot bloat the error. */
const QUOTE_MAX_CHARS = 80;

/** `value` in double quotes, shortened, for error messages. */
export function quote(value: string): string {
  const excerpt = value.length > QUOTE_MAX_CHARS ? `${value.slice(0, QUOTE_MAX_CHARS)}...` : value;
  return JSON.stringify(excerpt);
}

function invalid(message: string): QueueError {
  return new QueueError(ErrorCode.InvalidArgument, message);
}

/** Checks a queue name (`field` names it in the message, e.g. "dead_letter_queue"). */
export function validateQueueName(name: string, field = "queue name"): QueueError | undefined {
  if (QUEUE_NAME_PATTERN.test(name)) return undefined;
  return invalid(
    `${field} ${quote(name)} is invalid: use 1-${MAX_QUEUE_NAME_CHARS} letters, digits, '.', '_' or '-', ` +
      "starting with a letter or digit",
  );
}

/** Checks that `value` is an integer in min..max; `field` is the API field name, e.g. "delay_ms". */
export function validateRange(field: string, value: number, min: number, max: number): QueueError | undefined {
  if (Number.isSafeInteger(value) && value >= min && value <= max) return undefined;
  return invalid(`${field} ${value} is out of range: use an integer from ${min} to ${max}`);
}

/** Checks a body's size against a queue's max_message_bytes (a body of exactly that size is accepted). */
export function validateBodySize(bodyBytes: number, maxMessageBytes: number): QueueError | undefined {
  if (bodyBytes <= maxMessageBytes) return undefined;
  return invalid(
    `message body is ${bodyBytes} bytes, over max_message_bytes ${maxMessageBytes}: send a smaller body, ` +
      `or use a queue created with a larger max_message_bytes (at most ${MAX_MAX_MESSAGE_BYTES})`,
  );
}

/** UTF-8 size of a message's headers (keys and values), as counted against MAX_HEADERS_BYTES. */
export function headersByteLength(headers: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(headers)) {
    bytes += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  }
  return bytes;
}

/** Checks a message's headers: count, key syntax and total size. */
export function validateHeaders(headers: Readonly<Record<string, string>>): QueueError | undefined {
  const keys = Object.keys(headers);
  if (keys.length > MAX_HEADERS) {
    return invalid(`message has ${keys.length} headers: use at most ${MAX_HEADERS}`);
  }
  for (const key of keys) {
    if (!HEADER_KEY_PATTERN.test(key)) {
      return invalid(
        `header key ${quote(key)} is invalid: use 1-${MAX_HEADER_KEY_CHARS} letters, digits, '.', '_', ':', ` +
          "'/' or '-', starting with a letter or digit",
      );
    }
  }
  const bytes = headersByteLength(headers);
  if (bytes > MAX_HEADERS_BYTES) {
    return invalid(`message headers take ${bytes} bytes: keep keys and values under ${MAX_HEADERS_BYTES} bytes in all`);
  }
  return undefined;
}

/** Checks an idempotency key ("" means none). */
export function validateIdempotencyKey(key: string): QueueError | undefined {
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes <= MAX_IDEMPOTENCY_KEY_BYTES) return undefined;
  return invalid(`idempotency_key is ${bytes} bytes: use at most ${MAX_IDEMPOTENCY_KEY_BYTES}`);
}

/** Checks the ids and receipts of an Ack, Nack or ExtendLease. */
export function validateIdsAndReceipts(
  ids: readonly number[],
  receipts: readonly string[],
): QueueError | undefined {
  if (ids.length + receipts.length > MAX_IDS_PER_REQUEST) {
    return invalid(
      `${ids.length} ids and ${receipts.length} receipts given: send at most ${MAX_IDS_PER_REQUEST} in one request`,
    );
  }
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 1) {
      return invalid(`message id ${id} is invalid: ids are the positive integers Enqueue returned`);
    }
  }
  for (const receipt of receipts) {
    if (receipt.length > MAX_RECEIPT_CHARS || parseReceipt(receipt) === undefined) {
      return invalid(`receipt ${quote(receipt)} is malformed: pass the receipt exactly as the Delivery carried it`);
    }
  }
  return undefined;
}

/** Checks Dequeue's max_messages (0 means 1). */
export function validateMaxMessages(maxMessages: number): QueueError | undefined {
  return validateRange("max_messages", maxMessages, 0, MAX_LEASE_MESSAGES);
}

/** Checks Dequeue's wait_ms; the wait happens in the server, not in the log. */
export function validateWaitMs(waitMs: number): QueueError | undefined {
  return validateRange("wait_ms", waitMs, 0, MAX_WAIT_MS);
}

/** Checks Subscribe's prefetch (0 means the default, 10). */
export function validatePrefetch(prefetch: number): QueueError | undefined {
  return validateRange("prefetch", prefetch, 0, MAX_LEASE_MESSAGES);
}
