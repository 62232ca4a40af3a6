/**
 * Every bound the queue enforces, in one place. A request beyond a bound is refused with INVALID_ARGUMENT
 * (or RESOURCE_EXHAUSTED for capacity), never queued to fail slowly.
 */

const HOUR_MS = 60 * 60 * 1000;
const MIB = 1024 * 1024;

/** Most queues a cluster holds (auto-created dead-letter queues may exceed it, at most one per queue). */
export const MAX_QUEUES = 10_000;
/** Longest queue name; the full rule is in validation.ts. */
export const MAX_QUEUE_NAME_CHARS = 128;

/** Most messages one Enqueue command (EnqueueBatch) carries. */
export const MAX_BATCH_MESSAGES = 1000;
/** Most bytes (bodies, header keys and values, idempotency keys) one Enqueue command carries. */
export const MAX_BATCH_BYTES = 16 * MIB;
/** Most headers per message. */
export const MAX_HEADERS = 64;
/** Longest header key; the full rule is in validation.ts. */
export const MAX_HEADER_KEY_CHARS = 128;
/** Most bytes of one message's header keys and values together (UTF-8). */
export const MAX_HEADERS_BYTES = 16 * 1024;
/** Longest idempotency key (UTF-8 bytes). */
export const MAX_IDEMPOTENCY_KEY_BYTES = 256;
/** Longest delay of an Enqueue or Nack. */
export const MAX_DELAY_MS = 12 * HOUR_MS;

/** Most messages one lease (Dequeue) returns; also the largest Subscribe prefetch. */
export const MAX_LEASE_MESSAGES = 1000;
/**
 * Largest answer a gRPC client accepts by default (grpc-js and most other implementations): a Dequeue
 * answer beyond it is refused by the client after the lease was committed, stranding its messages.
 */
export const GRPC_DEFAULT_MAX_RECEIVE_BYTES = 4 * MIB;
/**
 * Most bytes of deliveries one lease returns, counted by deliveryBytes (delivery-size.ts); a lease stops
 * before the message that would pass it, but always returns at least one ready message. It leaves room
 * under GRPC_DEFAULT_MAX_RECEIVE_BYTES for the answer's own framing.
 */
export const MAX_LEASE_BYTES = 4_000_000;
/**
 * Allowance for one Delivery's protobuf framing beyond its body, header keys and values, and receipt:
 * the field tags and lengths, id, delivery_count and enqueued_at_ms (at most 40 bytes when encoded).
 */
export const DELIVERY_OVERHEAD_BYTES = 64;
/** Allowance for one header's map-entry framing (tags and lengths, at most 11 bytes when encoded). */
export const HEADER_OVERHEAD_BYTES = 12;
/** Longest Dequeue long poll. */
export const MAX_WAIT_MS = 20_000;
/** Most ids plus receipts in one Ack, Nack or ExtendLease. */
export const MAX_IDS_PER_REQUEST = 10_000;
/** Longest receipt string accepted; real receipts are shorter (see receipt.ts). */
export const MAX_RECEIPT_CHARS = 64;

/** Bounds of the per-queue settings (CreateQueue). */
export const MAX_MAX_DELIVERIES = 1000;
export const MIN_VISIBILITY_TIMEOUT_MS = 1;
export const MAX_VISIBILITY_TIMEOUT_MS = 12 * HOUR_MS;
export const MAX_MAX_LENGTH = 10_000_000;
/**
 * The largest max_message_bytes a queue may choose; bodies are checked against it before a queue is known.
 * It is below 4 MiB so that one message with MAX_HEADERS_BYTES of headers, its receipt and its framing
 * always fits a Dequeue answer of GRPC_DEFAULT_MAX_RECEIVE_BYTES (limits.test.ts checks the sum).
 */
export const MAX_MAX_MESSAGE_BYTES = 4_000_000;
export const MAX_DEDUP_WINDOW_MS = 24 * HOUR_MS;
/**
 * Most idempotency keys a queue remembers. Beyond it the oldest key is forgotten before its window ends,
 * trading exactly-once enqueue for bounded memory under extreme key rates.
 */
export const MAX_DEDUP_KEYS_PER_QUEUE = 1_000_000;
