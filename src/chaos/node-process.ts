/**
 * One raftq node of a chaos cluster as an OS process (`raftq serve`), across its restarts: same id, port
 * and data directory; each start is a new incarnation. Every process any node starts is also registered
 * for an emergency SIGKILL when this process exits, so no node outlives the harness (short of the harness
 * itself being SIGKILLed).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { withAllocatorEnv } from "../cli/allocator-env.js";

/** How a process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What a node is doing, as far as the harness made it so. */
export type NodeState = "down" | "running" | "paused";

/** Everything needed to start one node. */
export interface NodeSpec {
  readonly id: string;
  /** 127.0.0.1:port it listens on (and clients dial). */
  readonly address: string;
  readonly dataDir: string;
  /** Both output streams of every incarnation, appended. */
  readonly logFile: string;
  /** The built CLI entry point the node runs (see build-snapshot.ts). */
  readonly cliMain: string;
  /** The `raftq serve` arguments after `serve`. */
  readonly args: readonly string[];
}

/** Processes alive right now, across every node of every cluster. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every node process still alive; synchronous, so it works in an "exit" handler. */
export function killAllNodesNow(): void {
  for (const child of liveChildren) child.kill("SIGKILL");
}

/** A node's process, restartable. */
export class NodeProcess {
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<ProcessExit> | undefined;
  private paused = false;
  /** Set when the harness sent SIGKILL or SIGTERM: an exit without it is a crash. */
  private exitRequested = false;
  /** Incremented at every start: tells Status samples of different runs of the node apart. */
  incarnation = 0;
  lastExit: ProcessExit | undefined;

  constructor(readonly spec: NodeSpec) {}

  get id(): string {
    return this.spec.id;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get state(): NodeState {
    if (this.child === undefined) return "down";
    return this.paused ? "paused" : "running";
  }

  /** Spawns the node; it answers gRPC a moment later (the cluster polls for that). */
  start(onExit: (exit: ProcessExit, incarnation: number, requested: boolean) => void): void {
    if (this.child !== undefined) throw new Error(`node ${this.id} is already running (pid ${this.pid}): kill it before starting it again`);
    if (!existsSync(this.spec.cliMain)) throw new Error(`${this.spec.cliMain} is missing: was the build snapshot removed while the run was going?`);
    installExitHook();
    const log = openSync(this.spec.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ["--enable-source-maps", this.spec.cliMain, "serve", ...this.spec.args], {
        stdio: ["ignore", log, log],
        env: withAllocatorEnv(),
      });
    } finally {
      closeSync(log);
    }
    this.incarnation += 1;
    const incarnation = this.incarnation;
    liveChildren.add(child);
    this.child = child;
    this.paused = false;
    this.exitRequested = false;
    this.exitedPromise = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        liveChildren.delete(child);
        const exit = { code, signal };
        if (this.child === child) {
          this.child = undefined;
          this.paused = false;
          this.lastExit = exit;
        }
        onExit(exit, incarnation, this.exitRequested);
        resolve(exit);
      });
    });
  }

  /** Sends a signal; SIGSTOP/SIGCONT mark the node paused/running. False when the node is down. */
  signal(signal: NodeJS.Signals): boolean {
    const child = this.child;
    if (child === undefined) return false;
    if (signal === "SIGKILL" || signal === "SIGTERM") this.exitRequested = true;
    child.kill(signal);
    if (signal === "SIGSTOP") this.paused = true;
    if (signal === "SIGCONT") this.paused = false;
    return true;
  }

  /** Resolves with how the current process ended, or rejects after `timeoutMs`; at once when down. */
  async exited(timeoutMs: number): Promise<ProcessExit | undefined> {
    const exited = this.exitedPromise;
    if (this.child === undefined || exited === undefined) return this.lastExit;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`node ${this.id} (pid ${this.pid}) did not exit within ${timeoutMs} ms; see ${this.spec.logFile}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", killAllNodesNow);
}
