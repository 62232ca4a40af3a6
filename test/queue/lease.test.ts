import { describe, expect, it } from "vitest";
import { deliveryBytes } from "../../src/queue/delivery-size.js";
import { ErrorCode } from "../../src/queue/errors.js";
import { MAX_HEADERS, MAX_HEADERS_BYTES, MAX_LEASE_BYTES, MAX_MAX_MESSAGE_BYTES } from "../../src/queue/limits.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, refused, texts } from "./helpers.js";

const MIB = 1024 * 1024;

/** A message whose body is `bytes` bytes of `fill`. */
function sized(bytes: number, fill = 0, headers: Record<string, string> = {}): ReturnType<typeof msg> {
  return { ...msg(""), body: new Uint8Array(bytes).fill(fill), headers };
}

/** MAX_HEADERS headers whose keys and values take MAX_HEADERS_BYTES in all. */
function maximalHeaders(): Record<string, string> {
  const keys = Array.from({ length: MAX_HEADERS }, (_, i) => `h${String(i).padStart(2, "0")}`);
  const valueBytes = Math.floor((MAX_HEADERS_BYTES - keys.join("").length) / MAX_HEADERS);
  return Object.fromEntries(keys.map((key) => [key, "v".repeat(valueBytes)]));
}

describe("leases and redelivery", () => {
  it("delivers a message with its body, headers, enqueue time and delivery_count 1", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("hello", { headers: { "content-type": "text/plain" } })])));
    const [delivery] = await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 1200))).deliveries);
    expect(delivery).toMatchObject({ id: 1, deliveryCount: 1, enqueuedAtMs: 1000 });
    expect(delivery?.headers).toEqual({ "content-type": "text/plain" });
    expect(texts(delivery === undefined ? [] : [delivery])).toEqual(["hello"]);
  });

  it("hides a leased message until its lease ends, then delivers it again with delivery_count 2", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    ok(sm.apply(cmd.lease("q", 0, 1, 1000)));
    expect(ok(sm.apply(cmd.lease("q", 999))).deliveries).toEqual([]);
    const [again] = ok(sm.apply(cmd.lease("q", 1000))).deliveries;
    expect(again).toMatchObject({ id: 1, deliveryCount: 2 });
  });

  it("uses the queue's visibility timeout when the lease names none", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { visibilityTimeoutMs: 5000 })));
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    ok(sm.apply(cmd.lease("q", 0)));
    expect(sm.nextWakeMs("q")).toBe(5000);
    expect(ok(sm.apply(cmd.lease("q", 4999))).deliveries).toEqual([]);
    expect(ok(sm.apply(cmd.lease("q", 5000))).deliveries).toHaveLength(1);
  });

  it("defaults to 30 s of visibility and one message per lease", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b"])));
    expect(ok(sm.apply(cmd.lease("q", 0, 0))).deliveries).toHaveLength(1);
    expect(sm.nextWakeMs("q")).toBe(0);
    ok(sm.apply(cmd.lease("q", 0, 0)));
    expect(sm.nextWakeMs("q")).toBe(30_000);
  });

  it("gives every delivery attempt its own receipt", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const first = ok(sm.apply(cmd.lease("q", 0, 1, 10))).deliveries[0]?.receipt;
    const second = ok(sm.apply(cmd.lease("q", 10, 1, 10))).deliveries[0]?.receipt;
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(first).not.toBe(second);
  });

  it("tells whether a delivery still holds its lease", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b"])));
    const [first, second] = ok(sm.apply(cmd.lease("q", 0, 2, 100))).deliveries.map((d) => d.receipt);
    expect(sm.isLeased("q", first ?? "")).toBe(true);
    expect(sm.isLeased("q", first ?? "", 100)).toBe(false);
    ok(sm.apply(cmd.ack("q", 1, { receipts: [first ?? ""] })));
    ok(sm.apply(cmd.nack("q", 1, { receipts: [second ?? ""] })));
    expect(sm.isLeased("q", first ?? "")).toBe(false);
    expect(sm.isLeased("q", second ?? "")).toBe(false);
    expect(sm.isLeased("q", "garbage")).toBe(false);
    expect(sm.isLeased("missing", second ?? "")).toBe(false);
  });

  it("refuses max_messages and visibility timeouts out of range", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    refused(sm.apply(cmd.lease("q", 0, 1001)), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.lease("q", 0, 1, 12 * 3600 * 1000 + 1)), ErrorCode.InvalidArgument);
    refused(sm.apply(cmd.lease("q", 0, -1)), ErrorCode.InvalidArgument);
  });
});

describe("lease byte budget", () => {
  it("leases only as many large messages as fit MAX_LEASE_BYTES, leaving the rest ready", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, Array.from({ length: 5 }, (_, i) => sized(MIB, i)))));
    const first = await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 0, 5))).deliveries);
    expect(first.map((d) => d.id)).toEqual([1, 2, 3]);
    expect(first.reduce((sum, d) => sum + deliveryBytes(d), 0)).toBeLessThanOrEqual(MAX_LEASE_BYTES);
    expect(ok(sm.stats("q", 0))).toMatchObject({ ready: 2, inFlight: 3 });

    expect(ok(sm.apply(cmd.lease("q", 0, 5))).deliveries.map((d) => d.id)).toEqual([4, 5]);
  });

  it("still fills a lease with small messages up to max_messages", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, Array.from({ length: 1000 }, () => sized(1000)))));
    expect(ok(sm.apply(cmd.lease("q", 0, 1000))).deliveries).toHaveLength(1000);
  });

  it("always delivers one ready message, even one of maximal size, and stops after it", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxMessageBytes: MAX_MAX_MESSAGE_BYTES })));
    const big = sized(MAX_MAX_MESSAGE_BYTES, 1, maximalHeaders());
    ok(sm.apply(cmd.enqueue("q", 0, ["small", big, big])));

    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 0, 10))).deliveries))).toEqual(["small"]);
    const deliveries = await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 0, 10))).deliveries);
    expect(deliveries).toHaveLength(1);
    const [alone] = deliveries;
    if (alone === undefined) throw new Error("no delivery");
    expect(alone).toMatchObject({ id: 2, deliveryCount: 1, headers: big.headers });
    expect(alone.body.byteLength).toBe(MAX_MAX_MESSAGE_BYTES);
    expect(deliveryBytes(alone)).toBeGreaterThan(MAX_LEASE_BYTES);
    expect(ok(sm.apply(cmd.lease("q", 0, 10))).deliveries.map((d) => d.id)).toEqual([3]);
  });
});
