import { describe, expect, it } from "vitest";
import { splitLinks, bridgeLinks, oneWayLinks, linkKey } from "../../src/chaos/partitions.js";
import { Prng } from "../../src/chaos/prng.js";
import { FAULT_KINDS, planFaults } from "../../src/chaos/schedule.js";

describe("fault schedule", () => {
  it("is the same for the same seed, and differs for another", () => {
    const plan = (seed: number) => planFaults(new Prng(seed), { durationMs: 120_000 });

    expect(plan(42)).toEqual(plan(42));
    expect(plan(42)).not.toEqual(plan(43));
  });

  it("deals every kind in a long run, kills twice per deck, and keeps pauses longer than an election timeout", () => {
    const faults = planFaults(new Prng(1), { durationMs: 600_000 });
    const count = (kind: string) => faults.filter((fault) => fault.kind === kind).length;

    for (const kind of FAULT_KINDS) expect(count(kind), kind).toBeGreaterThan(0);
    expect(count("kill")).toBeGreaterThanOrEqual(2 * count("pause") - 2);
    expect(Math.min(...faults.filter((fault) => fault.kind === "pause").map((fault) => fault.durationMs))).toBeGreaterThanOrEqual(1_500);
    expect(faults.every((fault, i) => i === 0 || fault.atMs > faults[i - 1]!.atMs + faults[i - 1]!.durationMs)).toBe(true);
  });

  it("targets the leader as often as leaderBias says", () => {
    const faults = planFaults(new Prng(3), { durationMs: 3_600_000, leaderBias: 0.6 });
    const share = faults.filter((fault) => fault.target === "leader").length / faults.length;

    expect(share).toBeGreaterThan(0.5);
    expect(share).toBeLessThan(0.7);
  });
});

describe("partitions", () => {
  it("cuts every link between groups both ways and none inside a group", () => {
    expect(splitLinks([["n1"], ["n2", "n3"]]).map(linkKey).sort()).toEqual(["n1→n2", "n1→n3", "n2→n1", "n3→n1"]);
  });

  it("leaves a bridge node connected to both halves", () => {
    expect(bridgeLinks(["n1"], "n2", ["n3"]).map(linkKey).sort()).toEqual(["n1→n3", "n3→n1"]);
  });

  it("cuts one direction only for one-way faults", () => {
    expect(oneWayLinks(["n1"], ["n2", "n3"]).map(linkKey)).toEqual(["n1→n2", "n1→n3"]);
  });
});
