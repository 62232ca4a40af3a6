/**
 * Short real chaos runs (3 nodes, fixed seeds): a correct cluster passes under kills, pauses and
 * partitions, and a cluster with the deliberate --unsafe-ack-before-commit bug is caught losing messages.
 * Needs `make build` (the nodes run the built CLI). About a minute in all.
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runChaos, type ChaosRunResult } from "../../src/chaos/run.js";

const OUT_DIR = join(tmpdir(), "raftq-chaos-test");

/** Processes whose command line mentions the run directory: its nodes, if any survived. */
function survivors(result: ChaosRunResult): string {
  return spawnSync("pgrep", ["-af", result.files.runDir], { encoding: "utf8" }).stdout.trim();
}

/** Removes a run's files when it went as expected; keeps them (and says where) otherwise. */
function keepOnFailure(result: ChaosRunResult, asExpected: boolean): void {
  if (asExpected) rmSync(result.files.runDir, { recursive: true, force: true });
  else console.error(`chaos run kept in ${result.files.runDir}\n${result.summary}`);
}

describe("chaos run against real nodes", () => {
  it("finds nothing lost, unexpected or unexplained under kills, pauses and partitions (seed 4)", async () => {
    const result = await runChaos({
      seed: 4,
      nodes: 3,
      durationMs: 30_000,
      outDir: OUT_DIR,
      // Short faults so that one deck (kill, pause, kill, one-way, split, …) fits into 30 s.
      schedule: { kinds: ["kill", "pause", "isolate", "split", "bridge", "one-way", "stop"], faultMs: [1_500, 3_000], pauseMs: [1_500, 3_000], gapMs: [500, 1_500], firstAtMs: 1_000 },
    });
    const { report } = result;
    keepOnFailure(result, report.valid);

    expect(report.violations).toEqual([]);
    expect(report.messages.lost.count).toBe(0);
    expect(report.messages.unexpected.count).toBe(0);
    expect(report.messages.acknowledged).toBeGreaterThan(100);
    expect(report.faults.byKind["kill"]).toBeGreaterThan(0);
    expect(report.faults.byKind["pause"]).toBeGreaterThan(0);
    expect((report.faults.byKind["split"] ?? 0) + (report.faults.byKind["one-way"] ?? 0)).toBeGreaterThan(0);
    expect(survivors(result)).toBe("");
  }, 150_000);

  it("catches the lost writes of --unsafe-ack-before-commit under leader kills and isolation", async () => {
    // Loss is near-certain (an isolated leader acknowledges everything for a whole election timeout), but
    // try a few seeds rather than fail on one unlucky timing.
    let result: ChaosRunResult | undefined;
    for (const seed of [7, 8, 9]) {
      result = await runChaos({
        seed,
        nodes: 3,
        durationMs: 12_000,
        outDir: OUT_DIR,
        unsafeAckBeforeCommit: true,
        schedule: { kinds: ["kill", "isolate"], leaderBias: 1, faultMs: [1_500, 2_500], gapMs: [1_000, 1_500], firstAtMs: 1_500 },
        workload: { consumers: 1 },
      });
      expect(survivors(result)).toBe("");
      keepOnFailure(result, result.report.messages.lost.count > 0);
      if (result.report.messages.lost.count > 0) break;
    }

    expect(result!.report.messages.lost.count).toBeGreaterThan(0);
    expect(result!.report.valid).toBe(false);
    expect(result!.report.violations[0]).toMatch(/^lost: /);
  }, 150_000);
});
