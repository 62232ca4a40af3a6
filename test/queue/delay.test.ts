import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, texts } from "./helpers.js";

describe("delayed messages", () => {
  it("stay invisible until enqueued_at + delay", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("later", { delayMs: 500 }), msg("now")])));
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 1001, 10))).deliveries))).toEqual(["now"]);
    expect(ok(sm.apply(cmd.lease("q", 1499, 10))).deliveries).toEqual([]);
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("q", 1500, 10))).deliveries))).toEqual(["later"]);
  });

  it("are counted as delayed, then as ready once due, without any command", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("later", { delayMs: 500 })])));
    expect(ok(sm.stats("q", 1000))).toMatchObject({ ready: 0, delayed: 1 });
    expect(ok(sm.stats("q", 1500))).toMatchObject({ ready: 1, delayed: 0 });
  });

  it("tell long polls when to wake up", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("later", { delayMs: 500 })])));
    expect(sm.nextWakeMs("q")).toBe(1500);
    expect(sm.hasReady("q", 1499)).toBe(false);
    expect(sm.hasReady("q", 1500)).toBe(true);
    ok(sm.apply(cmd.enqueue("q", 1001, ["now"])));
    expect(sm.nextWakeMs("q")).toBe(0);
  });

  it("has nothing to wake up for on an empty or missing queue", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 1)));
    expect(sm.nextWakeMs("q")).toBeUndefined();
    expect(sm.nextWakeMs("missing")).toBeUndefined();
    expect(sm.hasReady("missing", 1)).toBe(false);
  });
});
