import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, refused, texts } from "./helpers.js";

/** Leases message 1 of `queue` and lets the lease run out, `times` times, starting at `startMs`. */
function failDeliveries(sm: QueueStateMachine, queue: string, times: number, startMs: number): number {
  let nowMs = startMs;
  for (let attempt = 0; attempt < times; attempt++) {
    ok(sm.apply(cmd.lease(queue, nowMs, 1, 100)));
    nowMs += 100;
  }
  return nowMs;
}

describe("dead-lettering", () => {
  it("moves a message to the dead-letter queue after max_deliveries expired leases", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("work", 0, { maxDeliveries: 2, deadLetterQueue: "work.dlq" })));
    ok(sm.apply(cmd.enqueue("work", 0, [msg("poison", { headers: { origin: "test" } })])));
    const nowMs = failDeliveries(sm, "work", 2, 0);
    expect(ok(sm.apply(cmd.lease("work", nowMs))).deliveries).toEqual([]);
    expect(ok(sm.stats("work", nowMs))).toMatchObject({ ready: 0, inFlight: 0, deadLetteredTotal: 1 });

    expect(sm.listQueues()).toEqual(["work", "work.dlq"]);
    const [dead] = await sm.readDeliveries(ok(sm.apply(cmd.lease("work.dlq", nowMs))).deliveries);
    expect(dead).toMatchObject({ id: 1, deliveryCount: 1, enqueuedAtMs: nowMs, headers: { origin: "test" } });
    expect(texts(dead === undefined ? [] : [dead])).toEqual(["poison"]);
    expect(ok(sm.stats("work.dlq", nowMs)).enqueuedTotal).toBe(1);
  });

  it("counts a lease that ended at max_deliveries as dead-lettered in stats before any command", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("work", 0, { maxDeliveries: 1, deadLetterQueue: "dlq" })));
    ok(sm.apply(cmd.enqueue("work", 0, ["poison"])));
    ok(sm.apply(cmd.lease("work", 0, 1, 100)));
    expect(sm.hasReady("work", 100)).toBe(false);
    expect(ok(sm.stats("work", 100))).toMatchObject({ ready: 0, inFlight: 0, deadLetteredTotal: 1 });
  });

  it("drops the message when the queue has no dead-letter queue", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("work", 0, { maxDeliveries: 1 })));
    ok(sm.apply(cmd.enqueue("work", 0, ["poison", "fine"])));
    const nowMs = failDeliveries(sm, "work", 1, 0);
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("work", nowMs, 10))).deliveries))).toEqual(["fine"]);
    expect(sm.listQueues()).toEqual(["work"]);
    expect(ok(sm.stats("work", nowMs)).deadLetteredTotal).toBe(1);
  });

  it("dead-letters a nacked message that reached max_deliveries", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("work", 0, { maxDeliveries: 2, deadLetterQueue: "dlq" })));
    ok(sm.apply(cmd.enqueue("work", 0, ["poison"])));
    ok(sm.apply(cmd.lease("work", 1)));
    ok(sm.apply(cmd.nack("work", 2, { ids: [1] })));
    ok(sm.apply(cmd.lease("work", 3)));
    expect(ok(sm.apply(cmd.nack("work", 4, { ids: [1] }))).nacked).toBe(1);
    expect(ok(sm.stats("dlq", 4)).ready).toBe(1);
    expect(ok(sm.stats("work", 4))).toMatchObject({ ready: 0, deadLetteredTotal: 1 });
  });

  it("uses an existing dead-letter queue and its own id sequence", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("dlq", 0, ["already here"])));
    ok(sm.apply(cmd.create("work", 0, { maxDeliveries: 1, deadLetterQueue: "dlq" })));
    ok(sm.apply(cmd.enqueue("work", 0, ["poison"])));
    const nowMs = failDeliveries(sm, "work", 1, 0);
    ok(sm.apply(cmd.lease("work", nowMs)));
    expect(ok(sm.apply(cmd.lease("dlq", nowMs, 10))).deliveries.map((d) => d.id)).toEqual([1, 2]);
  });

  it("rejects dead-letter settings that cannot work", () => {
    const sm = new QueueStateMachine();
    refused(sm.apply(cmd.create("q", 0, { maxDeliveries: 3, deadLetterQueue: "q" })), ErrorCode.InvalidArgument);
    const never = refused(sm.apply(cmd.create("q", 0, { deadLetterQueue: "dlq" })), ErrorCode.InvalidArgument);
    expect(never.message).toContain("set max_deliveries");
    refused(sm.apply(cmd.create("q", 0, { maxDeliveries: 3, deadLetterQueue: "bad name" })), ErrorCode.InvalidArgument);
  });
});
