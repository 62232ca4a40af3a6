import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { formatReceipt } from "../../src/queue/receipt.js";
import { cmd, ok } from "./helpers.js";

function leasedMachine(): { sm: QueueStateMachine; receipt: string } {
  const sm = new QueueStateMachine();
  ok(sm.apply(cmd.enqueue("q", 0, ["a", "b"])));
  const receipt = ok(sm.apply(cmd.lease("q", 0, 1, 100))).deliveries[0]?.receipt ?? "";
  return { sm, receipt };
}

describe("ack", () => {
  it("deletes a message for good by receipt", () => {
    const { sm, receipt } = leasedMachine();
    expect(ok(sm.apply(cmd.ack("q", 1, { receipts: [receipt] })))).toEqual({ acked: 1, refusedReceipts: [] });
    expect(ok(sm.stats("q", 1000))).toMatchObject({ ready: 1, inFlight: 0, ackedTotal: 1 });
    expect(ok(sm.apply(cmd.lease("q", 1000, 10))).deliveries.map((d) => d.id)).toEqual([2]);
  });

  it("accepts an id in any state and does not count unknown or already acked ids", () => {
    const { sm } = leasedMachine();
    expect(ok(sm.apply(cmd.ack("q", 1, { ids: [1, 2, 99] }))).acked).toBe(2);
    expect(ok(sm.apply(cmd.ack("q", 2, { ids: [1] }))).acked).toBe(0);
  });

  it("refuses a receipt once its message was delivered again", () => {
    const { sm, receipt } = leasedMachine();
    const redelivered = ok(sm.apply(cmd.lease("q", 100, 1, 100))).deliveries[0];
    expect(redelivered?.deliveryCount).toBe(2);
    expect(ok(sm.apply(cmd.ack("q", 101, { receipts: [receipt] })))).toEqual({ acked: 0, refusedReceipts: [receipt] });
    expect(ok(sm.apply(cmd.ack("q", 102, { receipts: [redelivered?.receipt ?? ""] }))).acked).toBe(1);
  });

  it("accepts a receipt after the lease ended if nobody leased the message since", () => {
    const { sm, receipt } = leasedMachine();
    expect(ok(sm.apply(cmd.ack("q", 500, { receipts: [receipt] }))).acked).toBe(1);
  });

  it("refuses a receipt whose message is gone", () => {
    const { sm, receipt } = leasedMachine();
    ok(sm.apply(cmd.ack("q", 1, { ids: [1] })));
    expect(ok(sm.apply(cmd.ack("q", 2, { receipts: [receipt] }))).refusedReceipts).toEqual([receipt]);
  });

  it("counts a message named twice once", () => {
    const { sm, receipt } = leasedMachine();
    expect(ok(sm.apply(cmd.ack("q", 1, { ids: [1, 1], receipts: [receipt, receipt] })))).toEqual({
      acked: 1,
      refusedReceipts: [],
    });
  });

  it("refuses receipts of a deleted queue's namesake", () => {
    const { sm, receipt } = leasedMachine();
    ok(sm.apply(cmd.remove("q", 1)));
    ok(sm.apply(cmd.enqueue("q", 2, ["new a"])));
    ok(sm.apply(cmd.lease("q", 2)));
    expect(ok(sm.apply(cmd.ack("q", 3, { receipts: [receipt] }))).refusedReceipts).toEqual([receipt]);
  });

  it("refuses a well-formed receipt for a message of another delivery count", () => {
    const { sm } = leasedMachine();
    const forged = formatReceipt({ incarnation: 1, id: 1, deliveryCount: 7 });
    expect(ok(sm.apply(cmd.ack("q", 1, { receipts: [forged] }))).refusedReceipts).toEqual([forged]);
  });
});
