import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, refused, texts } from "./helpers.js";

describe("leases and redelivery", () => {
  it("delivers a message with its body, headers, enqueue time and delivery_count 1", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("hello", { headers: { "content-type": "text/plain" } })])));
    const [delivery] = ok(sm.apply(cmd.lease("q", 1200))).deliveries;
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
