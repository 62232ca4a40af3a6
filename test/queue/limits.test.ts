import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import {
  MAX_BATCH_MESSAGES,
  MAX_HEADERS,
  MAX_IDEMPOTENCY_KEY_BYTES,
  MAX_IDS_PER_REQUEST,
  MAX_MAX_MESSAGE_BYTES,
} from "../../src/queue/limits.js";
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

  it("cannot be set above 4 MiB", () => {
    const sm = new QueueStateMachine();
    refused(sm.apply(cmd.create("q", 0, { maxMessageBytes: MAX_MAX_MESSAGE_BYTES + 1 })), ErrorCode.InvalidArgument);
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
