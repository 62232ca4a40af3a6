import { join } from "node:path";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { deliveryBytes } from "../../src/queue/delivery-size.js";
import { ErrorCode } from "../../src/queue/errors.js";
import {
  DELIVERY_OVERHEAD_BYTES,
  GRPC_DEFAULT_MAX_RECEIVE_BYTES,
  HEADER_OVERHEAD_BYTES,
  MAX_BATCH_MESSAGES,
  MAX_HEADER_KEY_CHARS,
  MAX_HEADERS,
  MAX_HEADERS_BYTES,
  MAX_IDEMPOTENCY_KEY_BYTES,
  MAX_IDS_PER_REQUEST,
  MAX_LEASE_BYTES,
  MAX_MAX_MESSAGE_BYTES,
  MAX_RECEIPT_CHARS,
} from "../../src/queue/limits.js";
import { PROTO_DIR } from "../../src/protocol/proto-files.js";
import type { Delivery } from "../../src/queue/results.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, refused } from "./helpers.js";

function sized(bytes: number): ReturnType<typeof msg> {
  return { ...msg(""), body: new Uint8Array(bytes) };
}

describe("max_length", () => {
  it("refuses a whole batch that would overfill the queue", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 3 })));
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b"])));
    const error = refused(sm.apply(cmd.enqueue("q", 1, ["c", "d"])), ErrorCode.ResourceExhausted);
    expect(error.message).toContain("max_length 3");
    expect(ok(sm.stats("q", 1)).ready).toBe(2);
    expect(ok(sm.apply(cmd.enqueue("q", 2, ["c"]))).ids).toEqual([3]);
  });

  it("counts ready, delayed and in-flight messages", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 3 })));
    ok(sm.apply(cmd.enqueue("q", 0, ["a", msg("b", { delayMs: 1000 }), "c"])));
    ok(sm.apply(cmd.lease("q", 0)));
    refused(sm.apply(cmd.enqueue("q", 1, ["d"])), ErrorCode.ResourceExhausted);
    ok(sm.apply(cmd.ack("q", 2, { ids: [1] })));
    ok(sm.apply(cmd.enqueue("q", 3, ["d"])));
  });

  it("lets duplicates through a full queue since they add nothing", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 1 })));
    ok(sm.apply(cmd.enqueue("q", 0, [msg("a", { idempotencyKey: "k" })])));
    expect(ok(sm.apply(cmd.enqueue("q", 1, [msg("a", { idempotencyKey: "k" })]))).duplicates).toEqual([true]);
  });
});

describe("max_message_bytes", () => {
  it("accepts a body of exactly max_message_bytes and refuses one byte more", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxMessageBytes: 1000 })));
    ok(sm.apply(cmd.enqueue("q", 0, [sized(1000)])));
    const error = refused(sm.apply(cmd.enqueue("q", 0, [sized(1001)])), ErrorCode.InvalidArgument);
    expect(error.message).toContain("1001 bytes, over max_message_bytes 1000");
  });

  it("defaults to 1 MiB", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, [sized(1024 * 1024)])));
    refused(sm.apply(cmd.enqueue("q", 0, [sized(1024 * 1024 + 1)])), ErrorCode.InvalidArgument);
  });

  it("names the offending message of a batch and enqueues none of it", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxMessageBytes: 10 })));
    const error = refused(sm.apply(cmd.enqueue("q", 0, ["ok", sized(11)])), ErrorCode.InvalidArgument);
    expect(error.message).toMatch(/^message 1 of the batch: /);
    expect(ok(sm.stats("q", 0)).enqueuedTotal).toBe(0);
  });

  it("can be set up to MAX_MAX_MESSAGE_BYTES (4,000,000), not above", () => {
    const sm = new QueueStateMachine();
    expect(MAX_MAX_MESSAGE_BYTES).toBe(4_000_000);
    ok(sm.apply(cmd.create("q", 0, { maxMessageBytes: MAX_MAX_MESSAGE_BYTES })));
    const error = refused(sm.apply(cmd.create("r", 0, { maxMessageBytes: MAX_MAX_MESSAGE_BYTES + 1 })), ErrorCode.InvalidArgument);
    expect(error.message).toContain("max_message_bytes 4000001 is out of range");
    refused(sm.apply(cmd.enqueue("q", 0, [sized(MAX_MAX_MESSAGE_BYTES + 1)])), ErrorCode.InvalidArgument);
  });
});

describe("Dequeue answer size", () => {
  const DEQUEUE_RESPONSE = protobuf
    .loadSync(join(PROTO_DIR, "raftq", "v1", "queue.proto"))
    .lookupType("raftq.v1.DequeueResponse");

  /** The largest delivery a queue can hold: every field at its bound. */
  function maximalDelivery(): Delivery {
    const keys = Array.from({ length: MAX_HEADERS }, (_, i) => `${i}`.padStart(MAX_HEADER_KEY_CHARS, "k"));
    const valueBytes = Math.floor((MAX_HEADERS_BYTES - MAX_HEADERS * MAX_HEADER_KEY_CHARS) / MAX_HEADERS);
    return {
      id: Number.MAX_SAFE_INTEGER,
      body: new Uint8Array(MAX_MAX_MESSAGE_BYTES).fill(0xff),
      headers: Object.fromEntries(keys.map((key) => [key, "v".repeat(valueBytes)])),
      deliveryCount: 1000,
      enqueuedAtMs: Number.MAX_SAFE_INTEGER,
      receipt: "z".repeat(MAX_RECEIPT_CHARS),
    };
  }

  function encodedBytes(deliveries: readonly Delivery[]): number {
    return DEQUEUE_RESPONSE.encode({ messages: deliveries }).finish().byteLength;
  }

  it("lets one message of maximal size, headers and framing fit a default gRPC client", () => {
    const worstCase =
      MAX_MAX_MESSAGE_BYTES + MAX_HEADERS_BYTES + MAX_HEADERS * HEADER_OVERHEAD_BYTES + MAX_RECEIPT_CHARS + DELIVERY_OVERHEAD_BYTES;
    expect(worstCase).toBeLessThanOrEqual(GRPC_DEFAULT_MAX_RECEIVE_BYTES);
    expect(MAX_LEASE_BYTES).toBeLessThanOrEqual(GRPC_DEFAULT_MAX_RECEIVE_BYTES);
    expect(deliveryBytes(maximalDelivery())).toBeLessThanOrEqual(worstCase);
  });

  it("counts at least the bytes a delivery takes on the wire", async () => {
    const maximal = maximalDelivery();
    expect(encodedBytes([maximal])).toBeLessThanOrEqual(deliveryBytes(maximal));
    expect(encodedBytes([maximal])).toBeLessThanOrEqual(GRPC_DEFAULT_MAX_RECEIVE_BYTES);

    const sm = new QueueStateMachine();
    const headers = { "content-type": "application/octet-stream", trace: "é✓".repeat(100) };
    ok(sm.apply(cmd.enqueue("q", 0, Array.from({ length: 10 }, () => ({ ...sized(1024 * 1024), headers })))));
    const deliveries = await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 0, 10))).deliveries);
    expect(deliveries).toHaveLength(3);
    const counted = deliveries.reduce((sum, delivery) => sum + deliveryBytes(delivery), 0);
    expect(encodedBytes(deliveries)).toBeLessThanOrEqual(counted);
    expect(counted).toBeLessThanOrEqual(MAX_LEASE_BYTES);
  });
});

describe("request bounds", () => {
  it("refuses empty and oversized batches", () => {
    const sm = new QueueStateMachine();
    refused(sm.apply(cmd.enqueue("q", 0, [])), ErrorCode.InvalidArgument);
    const tooMany = Array.from({ length: MAX_BATCH_MESSAGES + 1 }, () => "x");
    refused(sm.apply(cmd.enqueue("q", 0, tooMany)), ErrorCode.InvalidArgument);
  });

  it("refuses too many headers, bad header keys and long idempotency keys", () => {
    const sm = new QueueStateMachine();
    const headers = Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`h${i}`, "v"]));
    refused(sm.apply(cmd.enqueue("q", 0, [msg("a", { headers })])), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.enqueue("q", 0, [msg("a", { headers: { "bad key": "v" } })])), ErrorCode.InvalidArgument);
    const longKey = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
    refused(sm.apply(cmd.enqueue("q", 0, [msg("a", { idempotencyKey: longKey })])), ErrorCode.InvalidArgument);
    ok(sm.apply(cmd.enqueue("q", 0, [msg("a", { idempotencyKey: "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES) })])));
  });

  it("refuses too many ids, bad ids and malformed receipts", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const ids = Array.from({ length: MAX_IDS_PER_REQUEST + 1 }, (_, i) => i + 1);
    refused(sm.apply(cmd.ack("q", 0, { ids })), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.ack("q", 0, { ids: [0] })), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.ack("q", 0, { ids: [1.5] })), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.nack("q", 0, { receipts: ["not-a-receipt"] })), ErrorCode.InvalidArgument);
  });

  it("refuses delays beyond 12 hours", () => {
    const sm = new QueueStateMachine();
    refused(sm.apply(cmd.enqueue("q", 0, [msg("a", { delayMs: 12 * 3600 * 1000 + 1 })])), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.nack("q", 0, { ids: [1] }, 12 * 3600 * 1000 + 1)), ErrorCode.InvalidArgument);
  });
});
