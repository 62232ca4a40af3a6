import { describe, expect, it } from "vitest";
import { checkHistory } from "../../src/chaos/checker.js";
import { HistoryBuilder } from "./history-builder.js";

const a = { id: 1, body: "p1-0" };
const b = { id: 2, body: "p1-1" };

describe("chaos checker: messages", () => {
  it("passes a clean history: every acknowledged message delivered once and acked", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .enqueue("q", b.body, 30, 40, { id: 2 })
      .dequeue("q", 50, 60, [a, b])
      .settle("ack", "q", a, 61, 70)
      .settle("ack", "q", b, 71, 80)
      .end();

    const report = checkHistory(events);

    expect(report.violations).toEqual([]);
    expect(report.valid).toBe(true);
    expect(report.messages).toMatchObject({ attempted: 2, acknowledged: 2, delivered: 2, deliveries: 2 });
    expect(report.operations["enqueue"]).toEqual({ ok: 2, fail: 0, info: 0 });
  });

  it("reports an acknowledged enqueue that was never delivered as lost", () => {
    const events = new HistoryBuilder().enqueue("q", a.body, 10, 20, { id: 1 }).enqueue("q", b.body, 30, 40, { id: 2 }).dequeue("q", 50, 60, [a]).end();

    const report = checkHistory(events);

    expect(report.valid).toBe(false);
    expect(report.messages.lost.count).toBe(1);
    expect(report.messages.lost.messages[0]).toMatchObject({ body: "p1-1", queue: "q", id: 2, acknowledgedAt: 40 });
    expect(report.violations[0]).toMatch(/^lost: p1-1/);
  });

  it("reports a delivery of a body nobody sent as unexpected", () => {
    const events = new HistoryBuilder().enqueue("q", a.body, 10, 20, { id: 1 }).dequeue("q", 50, 60, [a, { id: 2, body: "ghost" }]).end();

    const report = checkHistory(events);

    expect(report.valid).toBe(false);
    expect(report.messages.unexpected.count).toBe(1);
    expect(report.messages.unexpected.deliveries[0]).toMatchObject({ body: "ghost", reason: "no enqueue of this body was ever attempted" });
  });

  it("reports deliveries from the wrong queue, of surely failed enqueues, and of one id with two bodies as unexpected", () => {
    const events = new HistoryBuilder()
      .enqueue("q", "x", 10, 20, { id: 1 })
      .enqueue("q", "refused", 10, 20, { outcome: "fail" })
      .dequeue("other", 50, 60, [{ id: 1, body: "x" }])
      .dequeue("q", 50, 60, [{ id: 7, body: "refused" }])
      .enqueue("q", "y", 10, 20, { id: 3 })
      .enqueue("q", "z", 10, 20, { id: 4 })
      .dequeue("q", 70, 80, [{ id: 3, body: "y" }])
      .dequeue("q", 4_000, 4_010, [{ id: 3, body: "z", count: 2 }])
      .end();

    const reasons = checkHistory(events).messages.unexpected.deliveries.map((delivery) => delivery.reason);

    expect(reasons).toEqual(
      expect.arrayContaining([
        "enqueued to q but delivered from other",
        "every enqueue of it failed for sure (INVALID_ARGUMENT)",
        expect.stringMatching(/^id 3 was delivered with 2 different bodies/),
      ]),
    );
  });

  it("reports a redelivery before the lease could have ended, with no nack, as an unexplained duplicate", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .dequeue("q", 100, 110, [a], 2_000)
      .dequeue("q", 500, 510, [{ ...a, count: 2 }], 2_000)
      .settle("ack", "q", { ...a, count: 2 }, 511, 520)
      .end();

    const report = checkHistory(events);

    expect(report.valid).toBe(false);
    expect(report.messages.duplicates).toMatchObject({ count: 1, unexplained: 1, explained: 0 });
    expect(report.violations[0]).toMatch(/^unexplained duplicate: q#1 \(p1-0\) delivered again by 0\.510s .* could not end before 2\.100s/);
  });

  it("reports a redelivery after a successful ack, and one that does not raise the delivery count", () => {
    const acked = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .dequeue("q", 100, 110, [a])
      .settle("ack", "q", a, 111, 120, true)
      .dequeue("q", 5_000, 5_010, [{ ...a, count: 2 }])
      .end();
    const sameCount = new HistoryBuilder().enqueue("q", a.body, 10, 20, { id: 1 }).dequeue("q", 100, 110, [a]).dequeue("q", 5_000, 5_010, [a]).end();

    expect(checkHistory(acked).violations).toEqual([expect.stringMatching(/after an ack of delivery 1 succeeded/)]);
    expect(checkHistory(sameCount).violations).toEqual([expect.stringMatching(/delivered twice with the same delivery count 1/)]);
  });

  it("orders deliveries by delivery count: an answer relayed late, after the next lease's, is still explained", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .dequeue("q", 100, 2_600, [a], 2_000, "c1") // leased at ~100 ms, answer held up on a slow link
      .dequeue("q", 2_150, 2_200, [{ ...a, count: 2 }], 2_000, "c2")
      .settle("ack", "q", { ...a, count: 2 }, 2_201, 2_210)
      .end();

    const report = checkHistory(events);

    expect(report.violations).toEqual([]);
    expect(report.messages.duplicates.byExplanation["lease-expired"]).toBe(1);
  });

  it("allows duplicates explained by lease expiry, by a nack (even one answered refused), and by a keyless resend", () => {
    const c = { id: 3, body: "k1-0" };
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .enqueue("q", b.body, 10, 20, { id: 2 })
      // a: abandoned, delivered again once its 2 s lease could have run out.
      .dequeue("q", 100, 110, [a], 2_000)
      .dequeue("q", 2_100, 2_110, [{ ...a, count: 2 }], 2_000)
      .settle("ack", "q", { ...a, count: 2 }, 2_111, 2_120)
      // b: nacked (the answer says refused: the SDK's repeat of an applied nack), delivered again at once.
      .dequeue("q", 100, 110, [b], 30_000)
      .settle("nack", "q", b, 111, 120, false)
      .dequeue("q", 130, 140, [{ ...b, count: 2 }])
      .settle("ack", "q", { ...b, count: 2 }, 141, 150)
      // c: sent without a key, resent after an unknown outcome: enqueued twice, as ids 3 and 4.
      .enqueue("q", c.body, 200, 300, { key: null, outcome: "info", process: "k1" })
      .enqueue("q", c.body, 300, 310, { key: null, id: 4, process: "k1" })
      .dequeue("q", 400, 410, [c, { id: 4, body: c.body }])
      .settle("ack", "q", c, 411, 420)
      .settle("ack", "q", { id: 4, body: c.body }, 411, 420)
      .end();

    const report = checkHistory(events);

    expect(report.violations).toEqual([]);
    expect(report.messages.duplicates).toMatchObject({
      count: 3,
      explained: 3,
      unexplained: 0,
      byExplanation: { "lease-expired": 1, nacked: 1, "keyless-retry": 1 },
    });
  });

  it("reports the same body under two ids as unexplained when every attempt carried its key", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { outcome: "info" })
      .enqueue("q", a.body, 30, 40, { id: 2 })
      .dequeue("q", 50, 60, [{ id: 1, body: a.body }, { id: 2, body: a.body }])
      .end();

    expect(checkHistory(events).violations).toEqual([expect.stringMatching(/enqueued 2 times \(q#1, q#2\) although every attempt carried its idempotency key/)]);
  });

  it("counts enqueues with an unknown outcome whose message showed up as recovered", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 8_010, { outcome: "info" })
      .enqueue("q", b.body, 10, 8_010, { outcome: "info" })
      .dequeue("q", 9_000, 9_010, [a])
      .end();

    const report = checkHistory(events);

    expect(report.valid).toBe(true);
    expect(report.messages.recovered).toEqual({ count: 1, unknownNeverDelivered: 1 });
    expect(report.messages.unknown).toBe(2);
  });

  it("fails a run whose drain did not finish: lost cannot be told from not yet consumed", () => {
    const report = checkHistory(new HistoryBuilder().end(false));

    expect(report.valid).toBe(false);
    expect(report.violations).toEqual([expect.stringMatching(/^drain incomplete/)]);
  });
});

describe("chaos checker: order", () => {
  it("flags a message passed over by a later dequeue while it was surely ready", () => {
    const events = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .enqueue("q", b.body, 10, 20, { id: 2 })
      .dequeue("q", 30, 40, [b])
      .dequeue("q", 50, 60, [a])
      .end();

    const report = checkHistory(events);

    expect(report.order.count).toBe(1);
    expect(report.order.violations[0]).toMatchObject({ id: 1, overtakenBy: { id: 2 } });
    expect(report.valid).toBe(false);
  });

  it("does not flag concurrent dequeues, or a message acknowledged only after the overtaking dequeue was sent", () => {
    const concurrent = new HistoryBuilder()
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .enqueue("q", b.body, 10, 20, { id: 2 })
      .dequeue("q", 30, 60, [b], 2_000, "c1")
      .dequeue("q", 35, 50, [a], 2_000, "c2")
      .end();
    const late = new HistoryBuilder()
      .enqueue("q", a.body, 10, 35, { id: 1 })
      .enqueue("q", b.body, 10, 20, { id: 2 })
      .dequeue("q", 30, 40, [b])
      .dequeue("q", 50, 60, [a])
      .end();

    expect(checkHistory(concurrent).order.count).toBe(0);
    expect(checkHistory(late).order.count).toBe(0);
  });

  it("is skipped for runs whose acks do not imply commit", () => {
    const events = new HistoryBuilder({ seed: 1, unsafeAckBeforeCommit: true })
      .enqueue("q", a.body, 10, 20, { id: 1 })
      .enqueue("q", b.body, 10, 20, { id: 2 })
      .dequeue("q", 30, 40, [b])
      .dequeue("q", 50, 60, [a])
      .end();

    expect(checkHistory(events).order).toEqual({ checked: false, count: 0, violations: [] });
  });
});

describe("chaos checker: cluster", () => {
  it("reports two leaders in one term", () => {
    const events = new HistoryBuilder()
      .status("n1", 100, { role: "leader", term: 3, commit: 5 })
      .status("n2", 200, { role: "leader", term: 3, commit: 5 })
      .status("n3", 300, { role: "leader", term: 4, commit: 6 })
      .end();

    const report = checkHistory(events);

    expect(report.cluster.splitBrains).toEqual([{ term: 3, leaders: [{ node: "n1", time: 100 }, { node: "n2", time: 200 }] }]);
    expect(report.violations).toEqual([expect.stringMatching(/^two leaders in term 3: n1 .*, n2 /)]);
  });

  it("reports a commit index going back within one process run, and only notes it across a restart", () => {
    const regression = new HistoryBuilder()
      .status("n1", 100, { term: 2, commit: 10 })
      .status("n1", 300, { term: 2, commit: 8 })
      .end();
    const restart = new HistoryBuilder()
      .status("n1", 100, { term: 2, commit: 10 })
      .status("n1", 300, { term: 2, commit: 0, incarnation: 2 })
      .end();

    expect(checkHistory(regression).violations).toEqual([expect.stringMatching(/^commit index of n1 went back from 10 .* to 8 /)]);
    const restarted = checkHistory(restart);
    expect(restarted.valid).toBe(true);
    expect(restarted.cluster.commitResetsAcrossRestarts).toBe(1);
  });

  it("reports a term going back, even across a restart (terms are persisted)", () => {
    const events = new HistoryBuilder()
      .status("n1", 100, { term: 5, commit: 10 })
      .status("n1", 300, { term: 4, commit: 10, incarnation: 2 })
      .end();

    expect(checkHistory(events).violations).toEqual([expect.stringMatching(/^term of n1 went back from 5 to 4/)]);
  });
});

describe("chaos checker: availability and faults", () => {
  it("reports stretches without a successful operation, longest first, with the faults in effect", () => {
    const events = new HistoryBuilder()
      .fault(0, "kill", 2_500, 5_000, "SIGKILL n1 (leader)")
      .enqueue("q", "m0", 0, 1_000, { id: 1 })
      .enqueue("q", "m1", 1_000, 2_000, { id: 2 })
      .enqueue("q", "m2", 2_000, 6_000, { id: 3 })
      .enqueue("q", "m3", 6_000, 7_500, { id: 4 })
      .dequeue("q", 9_500, 9_600, [
        { id: 1, body: "m0" },
        { id: 2, body: "m1" },
        { id: 3, body: "m2" },
        { id: 4, body: "m3" },
      ])
      .end();

    const report = checkHistory(events);

    expect(report.unavailability.map((w) => [w.fromTime, w.toTime])).toEqual([
      [2_000, 6_000],
      [7_500, 9_600],
      [6_000, 7_500],
      [0, 1_000],
      [1_000, 2_000],
    ]);
    expect(report.unavailability[0]!.faults).toEqual(["#0 kill: SIGKILL n1 (leader)"]);
    expect(report.faults).toEqual({ total: 1, byKind: { kill: 1 }, errors: [] });
  });
});
