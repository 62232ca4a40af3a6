import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, ok, refused, texts } from "./helpers.js";

describe("FIFO delivery and ids", () => {
  it("delivers messages in enqueue order, lowest id first", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("jobs", 1000, ["a", "b"])));
    ok(sm.apply(cmd.enqueue("jobs", 1001, ["c"])));
    const first = ok(sm.apply(cmd.lease("jobs", 1002, 2)));
    const second = ok(sm.apply(cmd.lease("jobs", 1003, 10)));
    expect(texts(await sm.readDeliveries(first.deliveries))).toEqual(["a", "b"]);
    expect(texts(await sm.readDeliveries(second.deliveries))).toEqual(["c"]);
    expect(ok(sm.apply(cmd.lease("jobs", 1004, 10))).deliveries).toEqual([]);
  });

  it("numbers messages 1, 2, 3... per queue, independently", () => {
    const sm = new QueueStateMachine();
    expect(ok(sm.apply(cmd.enqueue("a", 1, ["x", "y"]))).ids).toEqual([1, 2]);
    expect(ok(sm.apply(cmd.enqueue("b", 2, ["x"]))).ids).toEqual([1]);
    expect(ok(sm.apply(cmd.enqueue("a", 3, ["z"]))).ids).toEqual([3]);
  });

  it("keeps ids increasing after acks and purges", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1, ["a", "b"])));
    ok(sm.apply(cmd.ack("q", 2, { ids: [1, 2] })));
    ok(sm.apply(cmd.enqueue("q", 3, ["c"])));
    ok(sm.apply(cmd.purge("q", 4)));
    expect(ok(sm.apply(cmd.enqueue("q", 5, ["d"]))).ids).toEqual([4]);
  });

  it("puts a redelivered message back in front of newer ones", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["old", "new"])));
    ok(sm.apply(cmd.lease("q", 0, 1, 100)));
    const afterExpiry = ok(sm.apply(cmd.lease("q", 100, 2)));
    expect(texts(await sm.readDeliveries(afterExpiry.deliveries))).toEqual(["old", "new"]);
  });

  it("auto-creates a queue only when the command asks for it", () => {
    const sm = new QueueStateMachine();
    const error = refused(sm.apply(cmd.enqueue("missing", 1, ["a"], false)), ErrorCode.NotFound);
    expect(error.message).toContain('queue "missing" does not exist');
    ok(sm.apply(cmd.enqueue("auto", 1, ["a"], true)));
    expect(sm.listQueues()).toEqual(["auto"]);
  });

  it("refuses to lease from a queue that does not exist", () => {
    const sm = new QueueStateMachine();
    refused(sm.apply(cmd.lease("nowhere", 1)), ErrorCode.NotFound);
  });
});
