/** Single acks joined into Ack calls: one call per turn, the rest while a call is in flight in the next. */
import { describe, expect, it } from "vitest";
import { AckCoalescer, MAX_RECEIPTS_PER_ACK } from "../../src/client/ack-coalescer.js";
import type { AckResult } from "../../src/client/client.js";

/** A fake Ack endpoint: records each call, answers when told, refusing the receipts in `refuse`. */
class FakeAcks {
  readonly calls: { queue: string; receipts: string[] }[] = [];
  private readonly pending: (() => void)[] = [];

  constructor(private readonly refuse = new Set<string>()) {}

  readonly send = (queue: string, receipts: string[]): Promise<AckResult> => {
    this.calls.push({ queue, receipts });
    return new Promise((resolve) => {
      this.pending.push(() => {
        const refusedReceipts = receipts.filter((receipt) => this.refuse.has(receipt));
        resolve({ acked: receipts.length - refusedReceipts.length, refusedReceipts });
      });
    });
  };

  answerAll(): void {
    for (const answer of this.pending.splice(0)) answer();
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("AckCoalescer", () => {
  it("sends the acks of one turn in one call, and each learns its own outcome", async () => {
    const fake = new FakeAcks(new Set(["r3"]));
    const acks = new AckCoalescer(fake.send);
    const outcomes = Array.from({ length: 5 }, (_, n) => acks.ack("q", `r${n}`));
    await turn();
    expect(fake.calls).toEqual([{ queue: "q", receipts: ["r0", "r1", "r2", "r3", "r4"] }]);
    fake.answerAll();
    expect(await Promise.all(outcomes)).toEqual([true, true, true, false, true]);
  });

  it("holds acks made while a call is in flight for the next call, one call per queue at a time", async () => {
    const fake = new FakeAcks();
    const acks = new AckCoalescer(fake.send);
    const first = acks.ack("q", "a");
    await turn();
    const later = [acks.ack("q", "b"), acks.ack("q", "c"), acks.ack("other", "x")];
    await turn();
    expect(fake.calls).toEqual([
      { queue: "q", receipts: ["a"] },
      { queue: "other", receipts: ["x"] },
    ]);
    fake.answerAll();
    expect(await first).toBe(true);
    await turn();
    expect(fake.calls[2]).toEqual({ queue: "q", receipts: ["b", "c"] });
    fake.answerAll();
    expect(await Promise.all(later)).toEqual([true, true, true]);
  });

  it("shares one answer for a receipt acked twice, splits big batches, and fails only the failed call's acks", async () => {
    const calls: string[][] = [];
    let fail = true;
    const acks = new AckCoalescer(async (_queue, receipts) => {
      calls.push(receipts);
      if (fail) {
        fail = false;
        throw new Error("UNAVAILABLE");
      }
      return { acked: receipts.length, refusedReceipts: [] };
    });
    const doomed = acks.ack("q", "r");
    await expect(doomed).rejects.toThrow("UNAVAILABLE");
    const twice = [acks.ack("q", "s"), acks.ack("q", "s")];
    expect(await Promise.all(twice)).toEqual([true, true]);
    expect(calls[1]).toEqual(["s"]);

    const many = Array.from({ length: MAX_RECEIPTS_PER_ACK + 5 }, (_, n) => acks.ack("q", `m${n}`));
    expect((await Promise.all(many)).every(Boolean)).toBe(true);
    expect(calls.slice(2).map((receipts) => receipts.length)).toEqual([MAX_RECEIPTS_PER_ACK, 5]);
  });
});
