/**
 * The simulator sweep CLI (`make sim`): runs randomized seeds and summarizes them, or replays one seed.
 *
 *   node dist/test/sim/sweep.js --seeds 1000 [--from 1] [--nodes N]   run seeds from..from+N-1
 *       (--nodes 1..9 fixes the cluster size; by default each seed picks 3 or 5)
 *   node dist/test/sim/sweep.js --seed 42 [--nodes 5]                  replay one seed, full trace
 *   --fault-ticks T changes the length of each run's fault phase (default DEFAULT_FAULT_TICKS)
 *
 * A failure prints `FAILED seed=S`, the cause, the trace tail and the replay command, and exits 1.
 */
import { MAX_SIM_NODES } from "./cluster.js";
import { randomRun, RunFailure, type RunStats } from "./random-run.js";

/** The largest sweep one invocation accepts. */
export const MAX_SWEEP_SEEDS = 10_000_000;
/** Trace lines printed with a failure in a sweep (a replay prints them all). */
const FAILURE_TAIL_LINES = 80;

interface SweepArgs {
  readonly seeds: number;
  readonly from: number;
  readonly replaySeed: number | null;
  readonly nodes: number | undefined;
  readonly faultTicks: number | undefined;
}

function parseArgs(argv: readonly string[]): SweepArgs {
  const values = new Map<string, number>();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (!["--seeds", "--seed", "--from", "--nodes", "--fault-ticks"].includes(flag)) usage(`unknown argument "${flag}"`);
    const value = Number(argv[++i]);
    if (!Number.isSafeInteger(value) || value < 1) usage(`${flag} needs a positive integer, got "${argv[i] ?? ""}"`);
    values.set(flag, value);
  }
  const nodes = values.get("--nodes");
  if (nodes !== undefined && nodes > MAX_SIM_NODES) usage(`--nodes must be 1..${MAX_SIM_NODES}`);
  const seeds = values.get("--seeds") ?? 100;
  if (seeds > MAX_SWEEP_SEEDS) usage(`--seeds is at most ${MAX_SWEEP_SEEDS}`);
  return { seeds, from: values.get("--from") ?? 1, replaySeed: values.get("--seed") ?? null, nodes, faultTicks: values.get("--fault-ticks") };
}

function usage(problem: string): never {
  console.error(`sweep: ${problem}\nusage: sweep.js --seeds N [--from S] [--nodes N] [--fault-ticks T]  |  sweep.js --seed S [--nodes N] [--fault-ticks T]`);
  process.exit(2);
}

function replayCommand(args: SweepArgs, seed: number): string {
  const make = `make sim SEED=${seed}${args.nodes === undefined ? "" : ` NODES=${args.nodes}`}`;
  if (args.faultTicks === undefined) return make;
  return `node dist/test/sim/sweep.js --seed ${seed}${args.nodes === undefined ? "" : ` --nodes ${args.nodes}`} --fault-ticks ${args.faultTicks}`;
}

/** Prints a failure: cause, trace tail, replay command. */
function reportFailure(failure: RunFailure, args: SweepArgs, tailLines: number): void {
  console.log(`\nFAILED seed=${failure.seed}  (${failure.nodes} nodes, ${failure.profile})`);
  const cause = failure.cause instanceof Error ? failure.cause : new Error(String(failure.cause));
  // The cause's own message already carries a trace tail when it came from a step; print it once.
  console.log(`${cause.name}: ${cause.message.split("\n--- last")[0]}`);
  if (!(failure.cause instanceof Error && /SafetyViolation|LivenessViolation/.test(cause.name))) console.log(cause.stack ?? "");
  if (tailLines > 0) {
    console.log(`--- trace tail (last ${Math.min(tailLines, failure.traceTail.length)} lines) ---`);
    console.log(failure.traceTail.slice(-tailLines).join("\n"));
  }
  console.log(`--- replay: ${replayCommand(args, failure.seed)}`);
}

function replay(args: SweepArgs, seed: number): number {
  const started = Date.now();
  try {
    const result = randomRun({ seed, nodes: args.nodes, faultTicks: args.faultTicks, echo: (line) => console.log(line) });
    console.log(`\nseed=${seed} ok: ${result.nodes} nodes, ${result.profile}`);
    console.log(summary(result.stats, 1, Date.now() - started));
    return 0;
  } catch (error) {
    if (!(error instanceof RunFailure)) throw error;
    reportFailure(error, args, 0);
    return 1;
  }
}

function sweep(args: SweepArgs): number {
  const started = Date.now();
  const total: RunStats = { ticks: 0, faults: 0, elections: 0, commits: 0, proposals: 0, acknowledged: 0, reads: 0, messages: 0, membershipChanges: 0, compactions: 0, snapshotsInstalled: 0 };
  const progressEvery = Math.max(1, Math.floor(args.seeds / 10));
  for (let k = 0; k < args.seeds; k++) {
    const seed = args.from + k;
    try {
      const { stats } = randomRun({ seed, nodes: args.nodes, faultTicks: args.faultTicks });
      for (const key of Object.keys(total) as (keyof RunStats)[]) total[key] += stats[key];
    } catch (error) {
      if (!(error instanceof RunFailure)) throw error;
      reportFailure(error, args, FAILURE_TAIL_LINES);
      console.log(`after ${k} passing seeds; ${summary(total, k, Date.now() - started)}`);
      return 1;
    }
    if ((k + 1) % progressEvery === 0 && k + 1 < args.seeds) console.log(`  ${k + 1}/${args.seeds} seeds ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  console.log(`ok: seeds ${args.from}..${args.from + args.seeds - 1}; ${summary(total, args.seeds, Date.now() - started)}`);
  return 0;
}

function summary(stats: RunStats, seeds: number, elapsedMs: number): string {
  return (
    `${seeds} seeds, ${stats.ticks} ticks, ${stats.faults} faults, ${stats.elections} elections, ` +
    `${stats.commits} commits, ${stats.acknowledged}/${stats.proposals} proposals acknowledged, ${stats.reads} reads, ` +
    `${stats.messages} messages, ${stats.membershipChanges} membership changes asked, ${stats.compactions} compactions, ${stats.snapshotsInstalled} snapshots installed, ${(elapsedMs / 1000).toFixed(1)} s`
  );
}

const args = parseArgs(process.argv.slice(2));
process.exitCode = args.replaySeed === null ? sweep(args) : replay(args, args.replaySeed);
