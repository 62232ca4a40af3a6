import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, ok, seededRandom } from "./helpers.js";

const BATCH = 1000;

describe("ready order at scale", () => {
  it("leases the remaining messages lowest id first after acks by id, nacks and expiries all over a large backlog", () => {
    const random = seededRandom(17);
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 1_000_000, visibilityTimeoutMs: 100 })));
    const live = new Set<number>();
    for (let batch = 0; batch < 5; batch++) {
      const ids = ok(sm.apply(cmd.enqueue("q", 0, Array.from({ length: BATCH }, (_, i) => `m${batch}.${i}`)))).ids;
      for (const id of ids) live.add(id);
    }
    // Ack most ready messages by id, from anywhere in the backlog (stale entries pile up in the middle).
    const acked = [...live].filter(() => random() < 0.8);
    ok(sm.apply(cmd.ack("q", 0, { ids: acked })));
    for (const id of acked) live.delete(id);
    // Lease some, nack a few of them back and let the rest expire: they rejoin behind newer ids.
    const leased = ok(sm.apply(cmd.lease("q", 1, 300))).deliveries.map((d) => d.id);
    ok(sm.apply(cmd.nack("q", 2, { ids: leased.filter((id) => id % 2 === 0) })));
    // More enqueues after the acks make the index compact its run of fresh ids.
    for (let batch = 0; batch < 3; batch++) {
      const ids = ok(sm.apply(cmd.enqueue("q", 3, Array.from({ length: BATCH }, (_, i) => `n${batch}.${i}`)))).ids;
      for (const id of ids) live.add(id);
    }
    const order: number[] = [];
    for (let nowMs = 500; ; nowMs += 1) {
      const deliveries = ok(sm.apply(cmd.lease("q", nowMs, 1000, 1_000_000))).deliveries;
      if (deliveries.length === 0) break;
      order.push(...deliveries.map((d) => d.id));
    }
    expect(order).toEqual([...live].sort((a, b) => a - b));
    expect(ok(sm.stats("q", 100_000))).toMatchObject({ ready: 0, inFlight: live.size, delayed: 0 });
  });
});
