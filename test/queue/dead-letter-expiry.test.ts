import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import type { QueueStats } from "../../src/queue/results.js";
import { DEFAULT_SETTINGS } from "../../src/queue/settings.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, expectBalanced, ok, refused, texts } from "./helpers.js";

/** A queue's counts at `atMs`, checked to add up. */
function statsAt(sm: QueueStateMachine, queue: string, atMs: number): QueueStats {
  const stats = ok(sm.stats(queue, atMs));
  expectBalanced(queue, stats);
  return stats;
}

/** Creates "src" (max_deliveries 1, dead-lettering into "dlq") holding `bodies`, leased one by one at 0 for `leaseMs`. */
function abandoned(sm: QueueStateMachine, bodies: readonly string[], leaseMs: readonly number[]): void {
  ok(sm.apply(cmd.create("src", 0, { maxDeliveries: 1, deadLetterQueue: "dlq" })));
  ok(sm.apply(cmd.enqueue("src", 0, bodies)));
  for (const ms of leaseMs) ok(sm.apply(cmd.lease("src", 0, 1, ms)));
}

describe("dead-lettering by lease expiry", () => {
  it("puts the message in the dead-letter queue when its last lease ends, with no command on the source", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("dlq", 0)));
    abandoned(sm, ["x"], [300]);

    expect(sm.hasReady("dlq", 299)).toBe(false);
    expect(sm.nextWakeMs("dlq")).toBe(300);
    expect(statsAt(sm, "dlq", 299)).toMatchObject({ ready: 0, enqueuedTotal: 0 });

    expect(sm.hasReady("dlq", 300)).toBe(true);
    expect(statsAt(sm, "dlq", 300)).toMatchObject({ ready: 1, inFlight: 0, enqueuedTotal: 1 });
    expect(statsAt(sm, "src", 300)).toMatchObject({ ready: 0, inFlight: 0, deadLetteredTotal: 1 });
    // Nothing the source itself could deliver: a long poll on it sleeps until a new enqueue or nack.
    expect(sm.hasReady("src", 300)).toBe(false);
    expect(sm.nextWakeMs("src")).toBeUndefined();

    const [dead] = ok(sm.apply(cmd.lease("dlq", 350))).deliveries;
    expect(dead).toMatchObject({ id: 1, deliveryCount: 1, enqueuedAtMs: 300 });
    expect(texts(await sm.readDeliveries(dead === undefined ? [] : [dead]))).toEqual(["x"]);
    expect(statsAt(sm, "dlq", 350)).toMatchObject({ ready: 0, inFlight: 1, enqueuedTotal: 1 });
    expect(statsAt(sm, "src", 350)).toMatchObject({ inFlight: 0, deadLetteredTotal: 1 });
  });

  it("routes the dead letters before any command on the dead-letter queue, in the order they were dead-lettered", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("dlq", 0)));
    abandoned(sm, ["late", "early"], [500, 200]);
    ok(sm.apply(cmd.enqueue("dlq", 400, ["enqueued"])));

    const deliveries = ok(sm.apply(cmd.lease("dlq", 600, 10))).deliveries;
    expect(texts(await sm.readDeliveries(deliveries))).toEqual(["early", "enqueued", "late"]);
    expect(deliveries.map((d) => d.enqueuedAtMs)).toEqual([200, 400, 500]);
  });

  it("orders dead letters of several sources by when they were dead-lettered, whichever queue is touched", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("a", 0, { maxDeliveries: 1, deadLetterQueue: "dlq" })));
    ok(sm.apply(cmd.create("b", 0, { maxDeliveries: 1, deadLetterQueue: "dlq" })));
    ok(sm.apply(cmd.enqueue("a", 0, ["from a"])));
    ok(sm.apply(cmd.enqueue("b", 0, ["from b"])));
    ok(sm.apply(cmd.lease("a", 0, 1, 500)));
    ok(sm.apply(cmd.lease("b", 0, 1, 300)));
    expect(sm.nextWakeMs("dlq")).toBe(300);

    ok(sm.apply(cmd.ack("a", 600, {})));
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("dlq", 600, 10))).deliveries))).toEqual(["from b", "from a"]);
  });

  it("creates a missing dead-letter queue with defaults when the first message is dead-lettered into it", async () => {
    const sm = new QueueStateMachine();
    abandoned(sm, ["x"], [300]);
    expect(sm.listQueues(299)).toEqual(["src"]);
    expect(sm.settingsOf("dlq", 299)).toBeUndefined();
    expect(sm.stats("dlq", 299)).toMatchObject({ ok: false, error: { code: ErrorCode.NotFound } });
    expect(sm.hasReady("dlq", 299)).toBe(false);
    expect(sm.nextWakeMs("dlq")).toBe(300);

    expect(sm.listQueues(300)).toEqual(["dlq", "src"]);
    expect(sm.settingsOf("dlq", 300)).toEqual(DEFAULT_SETTINGS);
    expect(statsAt(sm, "dlq", 300)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
    expect(sm.hasReady("dlq", 300)).toBe(true);

    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("dlq", 300))).deliveries))).toEqual(["x"]);
    expect(sm.listQueues()).toEqual(["dlq", "src"]);
  });

  it("finds a dead-letter queue created by its first dead letter when CreateQueue names it later", () => {
    const sm = new QueueStateMachine();
    abandoned(sm, ["x"], [300]);
    const error = refused(sm.apply(cmd.create("dlq", 400, { maxLength: 10 })), ErrorCode.AlreadyExists);
    expect(error.message).toContain("max_length is 1000000, not 10");
    expect(ok(sm.apply(cmd.create("dlq", 400)))).toEqual({ created: false });
    expect(statsAt(sm, "dlq", 400)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
  });

  it("keeps what a deleted source dead-lettered before its deletion", async () => {
    const sm = new QueueStateMachine();
    abandoned(sm, ["x", "y"], [300, 900]);
    expect(ok(sm.apply(cmd.remove("src", 500)))).toEqual({ deleted: true });

    expect(statsAt(sm, "dlq", 1000)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
    expect(sm.nextWakeMs("dlq")).toBe(0);
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("dlq", 1000, 10))).deliveries))).toEqual(["x"]);
  });

  it("keeps what a purged source dead-lettered before the purge", () => {
    const sm = new QueueStateMachine();
    abandoned(sm, ["x", "y"], [300, 900]);
    expect(ok(sm.apply(cmd.purge("src", 500))).purged).toBe(1);
    expect(statsAt(sm, "src", 500)).toMatchObject({ deadLetteredTotal: 1, purgedTotal: 1 });
    expect(statsAt(sm, "dlq", 500)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
  });

  it("drops with a deleted dead-letter queue what it held, and re-creates it for later dead letters", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("dlq", 0)));
    abandoned(sm, ["x", "y"], [300, 900]);
    expect(ok(sm.apply(cmd.remove("dlq", 500)))).toEqual({ deleted: true });

    expect(sm.stats("dlq", 899)).toMatchObject({ ok: false, error: { code: ErrorCode.NotFound } });
    expect(sm.nextWakeMs("dlq")).toBe(900);
    expect(statsAt(sm, "dlq", 900)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
    const [dead] = ok(sm.apply(cmd.lease("dlq", 900))).deliveries;
    expect(dead).toMatchObject({ id: 1, enqueuedAtMs: 900 });
    expect(texts(await sm.readDeliveries(dead === undefined ? [] : [dead]))).toEqual(["y"]);
  });

  it("deletes a missing dead-letter queue that already received a dead letter", () => {
    const sm = new QueueStateMachine();
    abandoned(sm, ["x"], [300]);
    expect(ok(sm.apply(cmd.remove("dlq", 400)))).toEqual({ deleted: true });
    expect(sm.listQueues()).toEqual(["src"]);
    expect(sm.hasReady("dlq", 400)).toBe(false);
    expect(statsAt(sm, "src", 400)).toMatchObject({ deadLetteredTotal: 1 });
  });

  it("moves dead letters along a chain one queue at a time", async () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("dlq", 0, { maxDeliveries: 1, deadLetterQueue: "last" })));
    abandoned(sm, ["x"], [300]);
    expect(sm.hasReady("last", 300)).toBe(false);
    ok(sm.apply(cmd.lease("dlq", 300, 1, 100)));
    expect(statsAt(sm, "dlq", 400)).toMatchObject({ inFlight: 0, deadLetteredTotal: 1 });
    expect(statsAt(sm, "last", 400)).toMatchObject({ ready: 1, enqueuedTotal: 1 });
    expect(texts(await sm.readDeliveries(ok(sm.apply(cmd.lease("last", 400))).deliveries))).toEqual(["x"]);
  });
});
