/**
 * The randomized sweep as a test: 500 seeds of random fault schedules (with membership changes, log
 * compaction and snapshot transfers in most of them), each ending with the liveness and durability checks. A failure names the seed; `make sim SEED=<seed>` replays it with a full trace.
 */
import { expect, test } from "vitest";
import { randomRun, RunFailure, type RunStats } from "./random-run.js";

const SEEDS = 500;

test(`randomized fault schedules: ${SEEDS} seeds pass every safety, liveness and durability check`, () => {
  const started = Date.now();
  const total: RunStats = { ticks: 0, faults: 0, elections: 0, commits: 0, proposals: 0, acknowledged: 0, reads: 0, messages: 0, membershipChanges: 0, compactions: 0, snapshotsInstalled: 0 };
  // Every seed runs even after a failure, so one report lists them all (each with its replay command).
  const failures: RunFailure[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    try {
      const { stats } = randomRun({ seed });
      for (const key of Object.keys(total) as (keyof RunStats)[]) total[key] += stats[key];
    } catch (error) {
      if (!(error instanceof RunFailure)) throw error;
      failures.push(error);
    }
  }
  console.log(
    `sweep: ${SEEDS} seeds, ${total.ticks} ticks, ${total.faults} faults, ${total.elections} elections, ` +
      `${total.commits} commits, ${total.acknowledged} acknowledged writes, ${total.reads} reads, ` +
      `${total.membershipChanges} membership changes asked, ${total.compactions} compactions, ${total.snapshotsInstalled} snapshots installed, ` +
      `${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (failures.length > 0) {
    const first = failures[0]!;
    throw new Error(
      `${failures.length} of ${SEEDS} seeds failed:\n${failures.map((f) => `  ${f.message}\n    replay: make sim SEED=${f.seed}`).join("\n")}\n` +
        `--- trace tail of seed ${first.seed} ---\n${first.traceTail.slice(-40).join("\n")}`,
    );
  }
  expect(total.elections).toBeGreaterThan(SEEDS);
  expect(total.acknowledged).toBeGreaterThan(0);
  // The sweep must exercise membership changes, compaction and snapshot transfer, not just allow them.
  expect(total.membershipChanges).toBeGreaterThan(SEEDS / 2);
  expect(total.snapshotsInstalled).toBeGreaterThan(SEEDS / 10);
}, 120_000);

test("a seed replays exactly: same run, same trace", () => {
  const traceOf = (seed: number) => {
    const lines: string[] = [];
    const result = randomRun({ seed, faultTicks: 200, echo: (line) => lines.push(line) });
    return { stats: result.stats, lines };
  };
  const first = traceOf(7);
  const second = traceOf(7);
  expect(second.stats).toEqual(first.stats);
  expect(second.lines).toEqual(first.lines);
  expect(traceOf(8).lines).not.toEqual(first.lines);
});
