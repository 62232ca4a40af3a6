import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok } from "./helpers.js";

describe("log time", () => {
  it("never goes backwards: an older now_ms acts at the latest time seen", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 2000, ["a"])));
    ok(sm.apply(cmd.enqueue("q", 500, ["b"])));
    expect(sm.nowMs).toBe(2000);
    const deliveries = ok(sm.apply(cmd.lease("q", 0, 2, 100))).deliveries;
    expect(deliveries.map((d) => d.enqueuedAtMs)).toEqual([2000, 2000]);
    expect(sm.nextWakeMs("q")).toBe(2100);
  });

  it("does not end leases or dedup windows early for a leader with a slow clock", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { dedupWindowMs: 1000 })));
    ok(sm.apply(cmd.enqueue("q", 5000, [msg("a", { idempotencyKey: "k" })])));
    ok(sm.apply(cmd.lease("q", 5000, 1, 100)));
    expect(ok(sm.apply(cmd.lease("q", 5050))).deliveries).toEqual([]);
    expect(ok(sm.apply(cmd.lease("q", 3000))).deliveries).toEqual([]);
    expect(ok(sm.apply(cmd.enqueue("q", 3000, [msg("a", { idempotencyKey: "k" })]))).duplicates).toEqual([true]);
  });

  it("advances even when a command is refused for the queue's state", () => {
    const sm = new QueueStateMachine();
    sm.apply(cmd.lease("missing", 7000));
    expect(sm.nowMs).toBe(7000);
  });
});
