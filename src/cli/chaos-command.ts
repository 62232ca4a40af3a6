/** `raftq chaos`: a Jepsen-style run against a real local cluster (see docs/chaos.md). */
import { randomInt } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, Option } from "commander";

interface ChaosFlags {
  nodes: string;
  duration: string;
  seed?: string;
  out: string;
  unsafeAckBeforeCommit?: boolean;
  keepData?: boolean;
}

/** Shortest and longest run accepted. */
const MIN_DURATION_MS = 1_000;
const MAX_DURATION_MS = 24 * 3_600_000;

/** Registers `raftq chaos`; it exits 0 when the history passes every check, 1 on any violation. */
export function registerChaosCommand(program: Command): void {
  program
    .command("chaos")
    .description("start a local cluster behind fault-injecting proxies, run load and faults, then check the history (exit 1 on any violation)")
    .addOption(new Option("--nodes <n>", "cluster size").choices(["3", "5"]).default("3"))
    .addOption(new Option("--duration <time>", "how long load and faults run before heal, drain and check: e.g. 90s, 10m").default("60s"))
    .addOption(new Option("--seed <n>", "replays a run's fault schedule and workload decisions (default: random, printed)"))
    .addOption(new Option("--out <dir>", "each run writes history.jsonl, report.json and node logs to its own directory here").default(join(tmpdir(), "raftq-chaos")))
    .addOption(new Option("--unsafe-ack-before-commit", "run the nodes with a deliberate lost-write bug: the checker must report lost messages"))
    .addOption(new Option("--keep-data", "keep the nodes' data directories even when the run passes"))
    .addHelpText("after", "\nExamples:\n  raftq chaos --duration 3m --seed 1\n  raftq chaos --nodes 5 --duration 10m\n  make chaos DURATION=3m SEED=1 NODES=5")
    .action(async (flags: ChaosFlags) => {
      // Loaded here, not at the top: every `raftq serve` process loads this file, and nodes need none of it.
      const [{ runChaos }, { killAllNodesNow }] = await Promise.all([import("../chaos/run.js"), import("../chaos/node-process.js")]);
      const durationMs = parseDuration(flags.duration);
      const seed = flags.seed === undefined ? randomInt(0, 2 ** 31) : parseSeed(flags.seed);
      const nodes = Number(flags.nodes);
      const print = (line: string): void => void process.stdout.write(`${line}\n`);
      print(`raftq chaos: seed ${seed} (replay: bin/raftq chaos --seed ${seed} --nodes ${nodes} --duration ${flags.duration}${flags.unsafeAckBeforeCommit ? " --unsafe-ack-before-commit" : ""})`);

      const interrupted = new AbortController();
      let interrupts = 0;
      const onSignal = (): void => {
        // First Ctrl-C: stop and clean up. Second: kill the nodes at once and leave.
        if (++interrupts > 1) {
          killAllNodesNow();
          process.exit(130);
        }
        print("interrupted: stopping every node (Ctrl-C again to kill them at once)");
        interrupted.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const result = await runChaos({
          seed,
          nodes,
          durationMs,
          outDir: flags.out,
          unsafeAckBeforeCommit: flags.unsafeAckBeforeCommit === true,
          keepData: flags.keepData === true,
          log: (line) => print(`[${new Date().toISOString().slice(11, 23)}] ${line}`),
          signal: interrupted.signal,
        });
        process.stdout.write(`\n${result.summary}`);
        if (!result.report.valid) {
          throw new Error(`the chaos run with seed ${seed} found violations; see ${result.files.report} and the node logs in ${result.files.runDir}/logs`);
        }
      } catch (error) {
        if (interrupted.signal.aborted) throw new Error("the chaos run was interrupted; every node was stopped and no verdict was reached", { cause: error });
        throw error;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}

/** "90s", "10m", "1h", "1500ms" or a bare number of seconds, in ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
  const value = match ? Number(match[1]) * unitMs[(match[2] ?? "s") as keyof typeof unitMs] : NaN;
  if (!(value >= MIN_DURATION_MS && value <= MAX_DURATION_MS)) {
    throw new Error(`--duration "${text}" is invalid: use a time between 1s and 24h such as 90s, 10m or 1h`);
  }
  return Math.round(value);
}

function parseSeed(text: string): number {
  const seed = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(seed)) throw new Error(`--seed "${text}" is invalid: use a whole number such as 42`);
  return seed;
}
