import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok } from "./helpers.js";

const WINDOW_MS = 1000;

function machineWithWindow(): QueueStateMachine {
  const sm = new QueueStateMachine();
  ok(sm.apply(cmd.create("q", 0, { dedupWindowMs: WINDOW_MS })));
  return sm;
}

describe("idempotency keys", () => {
  it("enqueues a repeated key once and answers with the first id", () => {
    const sm = machineWithWindow();
    const first = ok(sm.apply(cmd.enqueue("q", 10, [msg("a", { idempotencyKey: "k" })])));
    const again = ok(sm.apply(cmd.enqueue("q", 20, [msg("different body", { idempotencyKey: "k" })])));
    expect(first).toEqual({ ids: [1], duplicates: [false] });
    expect(again).toEqual({ ids: [1], duplicates: [true] });
    expect(ok(sm.stats("q", 20)).enqueuedTotal).toBe(1);
  });

  it("still deduplicates after the first message was acked", () => {
    const sm = machineWithWindow();
    ok(sm.apply(cmd.enqueue("q", 10, [msg("a", { idempotencyKey: "k" })])));
    ok(sm.apply(cmd.ack("q", 11, { ids: [1] })));
    expect(ok(sm.apply(cmd.enqueue("q", 12, [msg("a", { idempotencyKey: "k" })]))).duplicates).toEqual([true]);
  });

  it("forgets a key once the window has passed in log time", () => {
    const sm = machineWithWindow();
    ok(sm.apply(cmd.enqueue("q", 10, [msg("a", { idempotencyKey: "k" })])));
    const justInside = ok(sm.apply(cmd.enqueue("q", 10 + WINDOW_MS - 1, [msg("a", { idempotencyKey: "k" })])));
    const atExpiry = ok(sm.apply(cmd.enqueue("q", 10 + WINDOW_MS, [msg("a", { idempotencyKey: "k" })])));
    expect(justInside).toEqual({ ids: [1], duplicates: [true] });
    expect(atExpiry).toEqual({ ids: [2], duplicates: [false] });
  });

  it("starts a new window for a key enqueued again after expiry", () => {
    const sm = machineWithWindow();
    ok(sm.apply(cmd.enqueue("q", 0, [msg("a", { idempotencyKey: "k" })])));
    ok(sm.apply(cmd.enqueue("q", WINDOW_MS, [msg("a", { idempotencyKey: "k" })])));
    const again = ok(sm.apply(cmd.enqueue("q", WINDOW_MS + 500, [msg("a", { idempotencyKey: "k" })])));
    expect(again).toEqual({ ids: [2], duplicates: [true] });
  });

  it("deduplicates within one batch", () => {
    const sm = machineWithWindow();
    const batch = ok(
      sm.apply(
        cmd.enqueue("q", 1, [
          msg("a", { idempotencyKey: "k" }),
          msg("b"),
          msg("a again", { idempotencyKey: "k" }),
        ]),
      ),
    );
    expect(batch).toEqual({ ids: [1, 2, 1], duplicates: [false, false, true] });
  });

  it("scopes keys to their queue", () => {
    const sm = machineWithWindow();
    ok(sm.apply(cmd.enqueue("q", 1, [msg("a", { idempotencyKey: "k" })])));
    expect(ok(sm.apply(cmd.enqueue("other", 2, [msg("a", { idempotencyKey: "k" })]))).duplicates).toEqual([false]);
  });

  it("does not deduplicate messages without a key", () => {
    const sm = machineWithWindow();
    expect(ok(sm.apply(cmd.enqueue("q", 1, ["a", "a"]))).ids).toEqual([1, 2]);
  });
});
