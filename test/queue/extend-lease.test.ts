import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, ok } from "./helpers.js";

describe("extend lease", () => {
  it("pushes the lease deadline to now + timeout", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const receipt = ok(sm.apply(cmd.lease("q", 0, 1, 100))).deliveries[0]?.receipt ?? "";
    expect(ok(sm.apply(cmd.extend("q", 90, { receipts: [receipt] }, 1000)))).toEqual({
      extended: 1,
      refusedReceipts: [],
    });
    expect(ok(sm.apply(cmd.lease("q", 1089))).deliveries).toEqual([]);
    expect(ok(sm.apply(cmd.lease("q", 1090))).deliveries[0]?.deliveryCount).toBe(2);
  });

  it("may shorten a lease, and uses the queue's timeout when none is given", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { visibilityTimeoutMs: 200 })));
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    ok(sm.apply(cmd.lease("q", 0, 1, 10_000)));
    ok(sm.apply(cmd.extend("q", 50, { ids: [1] })));
    expect(sm.nextWakeMs("q")).toBe(250);
  });

  it("refuses a lease that already ended", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const receipt = ok(sm.apply(cmd.lease("q", 0, 1, 100))).deliveries[0]?.receipt ?? "";
    expect(ok(sm.apply(cmd.extend("q", 100, { ids: [1], receipts: [receipt] }, 1000)))).toEqual({
      extended: 0,
      refusedReceipts: [receipt],
    });
  });

  it("extends many times without leaking index entries into behaviour", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    ok(sm.apply(cmd.lease("q", 0, 1, 100)));
    for (let nowMs = 1; nowMs <= 5000; nowMs++) ok(sm.apply(cmd.extend("q", nowMs, { ids: [1] }, 100)));
    expect(ok(sm.stats("q", 5099))).toMatchObject({ inFlight: 1, ready: 0 });
    expect(ok(sm.stats("q", 5100))).toMatchObject({ inFlight: 0, ready: 1 });
  });
});
