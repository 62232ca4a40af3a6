/**
 * A real process is SIGKILLed while it persists steps; the reopened data directory must hold exactly the
 * state after some whole step, never half of one, and never lose a step the process reported as durable.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LevelRaftStorage } from "../../src/storage/level-raft-storage.js";
import { stateAfterCrashSteps } from "./fixtures/crash-steps.js";
import { makeTempDir, removeDir } from "./helpers.js";

/** How long one run may take before the test gives up on the child. */
const RUN_DEADLINE_MS = 10_000;
/** Kill points (in reported steps) of the runs: early, mid-overwrite, and later. */
const KILL_AFTER_STEPS = [1, 4, 5, 17, 33, 60];

const repoRoot = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
const writerPath = join(repoRoot, "dist", "test", "storage", "fixtures", "crash-writer.js");

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}: cannot locate the raftq repository`);
  }
}

/** Fails with the fix when the compiled fixture is missing or older than its source. */
function assertWriterBuilt(): void {
  if (!existsSync(writerPath)) throw new Error(`crash fixture ${writerPath} is missing: run \`make build\` first`);
  const builtMs = statSync(writerPath).mtimeMs;
  for (const folder of ["src/storage", "test/storage/fixtures"]) {
    for (const name of readdirSync(join(repoRoot, folder)).filter((file) => file.endsWith(".ts"))) {
      if (statSync(join(repoRoot, folder, name)).mtimeMs > builtMs) {
        throw new Error(`crash fixture ${writerPath} is older than ${folder}/${name}: run \`make build\` first`);
      }
    }
  }
}

interface Run {
  readonly child: ChildProcess;
  /** Highest step number the child printed so far. */
  reported(): number;
  /** Resolves once the child printed at least `step`, rejects if it exits first or the deadline passes. */
  reach(step: number, deadlineMs: number): Promise<void>;
  /** SIGKILLs the child and resolves once it is gone and its stdout is drained. */
  kill(): Promise<void>;
  stderr(): string;
}

function startWriter(dataDir: string): Run {
  const child = spawn(process.execPath, [writerPath, dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  let reported = 0;
  let pending = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) reported = Math.max(reported, Number(line));
    for (const listener of listeners) listener();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.once("close", () => {
    for (const listener of listeners) listener();
  });

  return {
    child,
    reported: () => reported,
    stderr: () => stderr,
    reach: (step, deadlineMs) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (reported >= step) finish(null);
          else if (child.exitCode !== null || child.signalCode !== null) {
            finish(new Error(`crash writer exited (${child.exitCode ?? child.signalCode}) after step ${reported}, before step ${step}: ${stderr}`));
          }
        };
        const timer = setTimeout(() => finish(new Error(`crash writer reached only step ${reported} of ${step} in ${deadlineMs} ms: ${stderr}`)), deadlineMs);
        const finish = (error: Error | null): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error === null) resolve();
          else reject(error);
        };
        listeners.add(check);
        check();
      }),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

describe("LevelRaftStorage under a real crash (SIGKILL)", () => {
  const runs: Run[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    // Whatever happened, no child outlives its test and no directory is left behind.
    await Promise.all(runs.splice(0).map((run) => run.kill()));
    await Promise.all(dirs.splice(0).map(removeDir));
  });

  for (const killAfter of KILL_AFTER_STEPS) {
    it(`recovers a whole step when killed after step ${killAfter} was reported`, async () => {
      assertWriterBuilt();
      const dir = await makeTempDir("level-crash");
      dirs.push(dir);
      const run = startWriter(dir);
      runs.push(run);

      await run.reach(killAfter, RUN_DEADLINE_MS);
      await run.kill();
      // Drained after exit: every step the child printed was durable; at most the next one was in flight.
      const reported = run.reported();
      expect(run.child.signalCode, `the child should have died by SIGKILL, stderr: ${run.stderr()}`).toBe("SIGKILL");

      const storage = await LevelRaftStorage.open(dir);
      try {
        const recovered = await storage.load();
        const step = recovered.hardState.term;
        expect(step, `recovered step ${step}, the child reported ${reported} durable`).toBeGreaterThanOrEqual(reported);
        expect(step).toBeLessThanOrEqual(reported + 1);
        expect(recovered).toEqual(stateAfterCrashSteps(step));
      } finally {
        await storage.close();
      }
    });
  }
});
