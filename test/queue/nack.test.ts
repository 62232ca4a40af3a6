import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, ok, texts } from "./helpers.js";

describe("nack", () => {
  it("returns a leased message at once", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const receipt = ok(sm.apply(cmd.lease("q", 0))).deliveries[0]?.receipt ?? "";
    expect(ok(sm.apply(cmd.nack("q", 1, { receipts: [receipt] })))).toEqual({ nacked: 1, refusedReceipts: [] });
    const [again] = ok(sm.apply(cmd.lease("q", 1))).deliveries;
    expect(again).toMatchObject({ id: 1, deliveryCount: 2 });
  });

  it("returns a leased message after its delay", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b"])));
    ok(sm.apply(cmd.lease("q", 0)));
    ok(sm.apply(cmd.nack("q", 10, { ids: [1] }, 500)));
    expect(ok(sm.stats("q", 10))).toMatchObject({ ready: 1, delayed: 1, inFlight: 0 });
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 509, 10))).deliveries))).toEqual(["b"]);
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 510, 10))).deliveries))).toEqual(["a"]);
  });

  it("ignores messages that are not leased", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const receipt = ok(sm.apply(cmd.lease("q", 0, 1, 100))).deliveries[0]?.receipt ?? "";
    ok(sm.apply(cmd.nack("q", 1, { ids: [1] })));
    expect(ok(sm.apply(cmd.nack("q", 2, { ids: [1, 5], receipts: [receipt] })))).toEqual({
      nacked: 0,
      refusedReceipts: [receipt],
    });
  });
});
