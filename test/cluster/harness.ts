/**
 * Real raftq clusters for end-to-end tests: every node is a `raftq serve` process on a free 127.0.0.1 port
 * with its own data directory and log file under one temporary root. Tests wait by polling with deadlines
 * (`waitFor`, `leader`), never by sleeping. Every process is SIGKILLed and the root removed when the test
 * (or, for a shared cluster, the describe block) ends, whether it passed, failed or timed out; a failing
 * test prints the tail of every node's log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, onTestFinished, type TestContext } from "vitest";
import { connect, type RaftqClient } from "../../src/client/index.js";
import type { ClientOptions } from "../../src/client/options.js";
import type { StatusResponse__Output } from "../../src/generated/raftq/v1/StatusResponse.js";
import { freePorts } from "../../src/chaos/ports.js";
import { PROTO_DIR } from "../../src/protocol/proto-files.js";
import { formatPeers } from "../../src/server/peers.js";
import { callUnary, nodeStubs, type NodeStubs } from "./raw-grpc.js";
import { withAllocatorEnv } from "../../src/cli/allocator-env.js";

/** The built CLI every node runs; `make build` produces it. */
export const CLI_MAIN = join(dirname(PROTO_DIR), "dist", "src", "cli", "main.js");

/** Longest wait for a new cluster to elect a leader that every node agrees on. */
const STARTUP_TIMEOUT_MS = 20_000;
/** Longest wait for a started process to answer gRPC. */
const NODE_READY_TIMEOUT_MS = 15_000;
/** Longest wait for a signalled process to exit (a graceful stop may hand over leadership and drain calls). */
const EXIT_TIMEOUT_MS = 15_000;
/** How often waitFor polls. */
const POLL_INTERVAL_MS = 50;
/** Lines of each node's log shown when a test fails or a wait times out. */
const LOG_TAIL_LINES = 25;
/** Longest log line shown; pino lines can be long. */
const LOG_LINE_MAX_CHARS = 400;

/** How to start a cluster. */
export interface ClusterOptions {
  /** Number of nodes, named n1..nN (default 3). */
  nodes?: number;
  /**
   * How many of them found the cluster (default: all): they get --peers naming the founders. The others
   * are spares: when started they run with --join (every founder's address) and ask to be added.
   */
  founders?: number;
  /** Extra `raftq serve` flags for every node, e.g. ["--no-auto-create"]. */
  extraArgs?: readonly string[];
  /** Extra environment variables for every node. */
  env?: Readonly<Record<string, string>>;
}

/** How a node process ended. */
export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One node of a test cluster. Its address, data dir and log file stay the same across restarts. */
export interface NodeHandle {
  readonly id: string;
  /** 127.0.0.1:port, as in --listen and --peers. */
  readonly address: string;
  readonly dataDir: string;
  /** stdout and stderr of every run of this node, appended. */
  readonly logFile: string;
  /** The process id of the current run; undefined while the node is down. */
  readonly pid: number | undefined;
  /** "running", "paused" (SIGSTOP) or "down" (exited, or never started). */
  readonly state: "running" | "paused" | "down";
  /** How the last run ended, once it has. */
  readonly lastExit: NodeExit | undefined;
}

/** Options of `waitFor`. */
export interface WaitOptions {
  /** Give up after this long (default 10000 ms). */
  timeoutMs?: number;
  /** What is awaited, for the timeout message, e.g. "n2 to report a leader"; a function is asked at timeout. */
  what: string | (() => string);
  /** Fail at once when the probe throws, instead of treating the error as "not yet". */
  stopOnError?: boolean;
}

/** Every child process any cluster of this test file started: killed even if the worker exits abruptly. */
const allChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of allChildren) child.kill("SIGKILL");
});

/** A node and its current process. */
class ClusterNode implements NodeHandle {
  process: ChildProcess | undefined;
  exited: Promise<NodeExit> | undefined;
  paused = false;
  lastExit: NodeExit | undefined;
  readonly stubs: NodeStubs;

  constructor(
    readonly id: string,
    readonly address: string,
    readonly dataDir: string,
    readonly logFile: string,
  ) {
    this.stubs = nodeStubs(address);
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get state(): NodeHandle["state"] {
    if (this.process === undefined) return "down";
    return this.paused ? "paused" : "running";
  }
}

/** A cluster of real raftq nodes; see startCluster and useSharedCluster. */
export class TestCluster {
  private readonly clients: RaftqClient[] = [];
  private closed = false;

  private constructor(
    /** The temporary directory holding every node's data dir and log file. */
    readonly root: string,
    /** The --peers value every node gets. */
    private readonly peers: string,
    private readonly members: readonly ClusterNode[],
    private readonly options: ClusterOptions,
  ) {}

  /** Allocates ports and directories; no process is started yet. */
  static async create(options: ClusterOptions): Promise<TestCluster> {
    if (!existsSync(CLI_MAIN)) {
      throw new Error(`${CLI_MAIN} is missing: run \`make build\` first (the cluster tests run the built node)`);
    }
    const count = options.nodes ?? 3;
    const ports = await freePorts(count);
    const root = mkdtempSync(join(tmpdir(), "raftq-cluster-"));
    const members = ports.map(
      (port, index) => new ClusterNode(`n${index + 1}`, `127.0.0.1:${port}`, join(root, `n${index + 1}`), join(root, `n${index + 1}.log`)),
    );
    const founders = members.slice(0, options.founders ?? count);
    const peers = formatPeers(new Map(founders.map((member) => [member.id, member.address])));
    return new TestCluster(root, peers, members, options);
  }

  private isFounder(member: ClusterNode): boolean {
    return this.members.indexOf(member) < (this.options.founders ?? this.members.length);
  }

  private founderAddresses(): string[] {
    return this.members.filter((member) => this.isFounder(member)).map((member) => member.address);
  }

  /** Every node, in id order. */
  get nodes(): readonly NodeHandle[] {
    return this.members;
  }

  /** Every node's address, in id order: what a client is configured with. */
  get addresses(): string[] {
    return this.members.map((member) => member.address);
  }

  /** The node with this id. */
  node(id: string): NodeHandle {
    return this.member(id);
  }

  /** The raw gRPC stubs (Queue, Cluster, Health) of one node, for calls the SDK would validate or retry. */
  stubs(id: string): NodeStubs {
    return this.member(id).stubs;
  }

  /** Nodes whose process runs and is not paused. */
  liveNodes(): NodeHandle[] {
    return this.members.filter((member) => member.state === "running");
  }

  /** Starts every node that is down and waits for a leader all of them agree on. */
  async startAll(): Promise<NodeHandle> {
    const founders = this.members.filter((member) => this.isFounder(member));
    await Promise.all(founders.filter((member) => member.state === "down").map((member) => this.restart(member.id)));
    return this.leader({ timeoutMs: STARTUP_TIMEOUT_MS });
  }

  /** Starts a node that is down, on its old port with its old data dir; resolves once it answers gRPC. */
  async restart(id: string): Promise<void> {
    const member = this.member(id);
    if (member.process !== undefined) throw new Error(`node ${id} is still running (pid ${member.pid}): stop or kill it first`);
    const args = [
      "--enable-source-maps",
      CLI_MAIN,
      "serve",
      "--id", member.id,
      "--listen", member.address,
      ...(this.isFounder(member) ? ["--peers", this.peers] : ["--join", this.founderAddresses().join(",")]),
      "--data-dir", member.dataDir,
      ...(this.options.extraArgs ?? []),
    ];
    const log = openSync(member.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, args, { stdio: ["ignore", log, log], env: { ...withAllocatorEnv(), ...this.options.env } });
    } finally {
      closeSync(log);
    }
    allChildren.add(child);
    member.process = child;
    member.paused = false;
    member.exited = new Promise<NodeExit>((resolve) => {
      const ended = (exit: NodeExit): void => {
        allChildren.delete(child);
        if (member.process === child) {
          member.process = undefined;
          member.paused = false;
          member.lastExit = exit;
        }
        resolve(exit);
      };
      child.once("exit", (code, signal) => ended({ code, signal }));
      // Without a pid the process was never spawned and there will be no "exit"; other errors (a failed
      // kill of a process that is exiting anyway) need no handling, but must not go unlistened.
      child.on("error", () => {
        if (child.pid === undefined) ended({ code: null, signal: null });
      });
    });
    await this.waitFor(
      async () => {
        if (member.process !== child) throw new Error(`node ${id} exited while starting (${describeExit(member.lastExit)})`);
        return (await callUnary(member.stubs.cluster, member.stubs.cluster.Status, {}, 500)).ok;
      },
      { timeoutMs: NODE_READY_TIMEOUT_MS, what: `node ${id} to answer Cluster.Status`, stopOnError: true },
    );
  }

  /**
   * Sends `signal` to a node. SIGSTOP and SIGCONT pause and resume it; any other signal is expected to end
   * it, and this resolves once the process has exited.
   */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<NodeExit | undefined> {
    const member = this.member(id);
    const child = member.process;
    if (child === undefined || member.exited === undefined) throw new Error(`node ${id} is not running`);
    child.kill(signal);
    if (signal === "SIGSTOP" || signal === "SIGCONT") {
      member.paused = signal === "SIGSTOP";
      return undefined;
    }
    if (member.paused && signal !== "SIGKILL") child.kill("SIGCONT");
    return this.awaitExit(id, member.exited);
  }

  /** Stops a node gracefully (SIGTERM) and resolves with how it exited: a clean stop is code 0. */
  async stop(id: string): Promise<NodeExit> {
    const exit = await this.kill(id, "SIGTERM");
    if (exit === undefined) throw new Error("unreachable: SIGTERM ends a node");
    return exit;
  }

  /**
   * Polls every live node's Cluster.Status until exactly one of them is the leader and every live node
   * names it, then returns it.
   */
  async leader(options: { timeoutMs?: number } = {}): Promise<NodeHandle> {
    let last = "no answer yet";
    return this.waitFor(
      async () => {
        const live = this.members.filter((member) => member.state === "running");
        const statuses = await Promise.all(live.map((member) => this.statusOf(member)));
        last = statuses.map((status, index) => describeStatus(live[index]?.id ?? "?", status)).join("; ");
        const leaders = statuses.filter((status) => status?.role === "leader");
        const leaderId = leaders[0]?.nodeId;
        if (leaders.length !== 1 || leaderId === undefined) return undefined;
        if (!statuses.every((status) => status?.leaderId === leaderId)) return undefined;
        return this.member(leaderId);
      },
      { timeoutMs: options.timeoutMs ?? 10_000, what: () => `one leader all live nodes agree on (last seen: ${last})` },
    );
  }

  /** The live nodes other than the current leader. */
  async followers(): Promise<NodeHandle[]> {
    const leader = await this.leader();
    return this.liveNodes().filter((node) => node.id !== leader.id);
  }

  /** One node's own view of the cluster (Cluster.Status), or undefined if it does not answer in time. */
  async statusOf(node: NodeHandle, timeoutMs = 1_000): Promise<StatusResponse__Output | undefined> {
    const stubs = this.member(node.id).stubs;
    const outcome = await callUnary(stubs.cluster, stubs.cluster.Status, {}, timeoutMs);
    return outcome.ok ? outcome.response : undefined;
  }

  /**
   * Polls `probe` until it returns something other than undefined or false, and returns that. A probe that
   * throws counts as "not yet" (its last error is reported on timeout) unless `stopOnError` is set.
   * On timeout it fails with `what`, the last error and the tail of every node's log.
   */
  async waitFor<T>(
    probe: () => T | undefined | false | Promise<T | undefined | false>,
    options: WaitOptions,
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined && value !== false) return value;
      } catch (error) {
        if (options.stopOnError) throw new Error(`${errorText(error)}\n${this.logTails()}`, { cause: error });
        lastError = error;
      }
      if (Date.now() >= deadline) {
        const what = typeof options.what === "function" ? options.what() : options.what;
        const cause = lastError === undefined ? "" : `\nlast error: ${errorText(lastError)}`;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}\n${this.logTails()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  /** An SDK client over every node's address (closed with the cluster). */
  client(options: Partial<ClientOptions> = {}): RaftqClient {
    const client = connect({ addresses: this.addresses, ...options });
    this.clients.push(client);
    return client;
  }

  /** Every line one node has logged so far, over all its runs. */
  logLines(id: string): string[] {
    const { logFile } = this.member(id);
    const text = existsSync(logFile) ? readFileSync(logFile, "utf8").trimEnd() : "";
    return text === "" ? [] : text.split("\n");
  }

  /** The last `lines` lines of every node's log, labelled, for failure messages. */
  logTails(lines = LOG_TAIL_LINES): string {
    return this.members
      .map((member) => {
        const tail = this.logLines(member.id).slice(-lines).map((line) => line.slice(0, LOG_LINE_MAX_CHARS));
        return `----- ${member.id} (${member.address}, ${member.state}) last ${tail.length} log lines -----\n${tail.join("\n")}`;
      })
      .join("\n");
  }

  /** SIGKILLs every process still running (paused ones too), closes clients and stubs, removes the root. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const client of this.clients.splice(0)) client.close();
    await Promise.all(
      this.members.map(async (member) => {
        member.stubs.close();
        const exited = member.exited;
        if (member.process === undefined || exited === undefined) return;
        member.process.kill("SIGKILL");
        await this.awaitExit(member.id, exited);
      }),
    );
    rmSync(this.root, { recursive: true, force: true });
  }

  private member(id: string): ClusterNode {
    const member = this.members.find((candidate) => candidate.id === id);
    if (!member) throw new Error(`no node "${id}" in this cluster (nodes: ${this.members.map((m) => m.id).join(", ")})`);
    return member;
  }

  private async awaitExit(id: string, exited: Promise<NodeExit>): Promise<NodeExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      const fail = (): void => reject(new Error(`node ${id} did not exit within ${EXIT_TIMEOUT_MS} ms\n${this.logTails()}`));
      timer = setTimeout(fail, EXIT_TIMEOUT_MS);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Starts a cluster for the current test and waits for its leader. It is closed when the test ends (passed,
 * failed or timed out); a failed test prints the tail of every node's log first. Call it inside a test.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const cluster = await TestCluster.create(options);
  onTestFinished(async (context) => {
    reportIfFailed(context, cluster);
    await cluster.close();
  });
  await cluster.startAll();
  return cluster;
}

/**
 * One cluster for every test of the enclosing describe block (for tests that cannot disturb each other,
 * e.g. each on its own queues): started before the first test, closed after the last; a failed test prints
 * the logs. Returns a getter for the cluster.
 */
export function useSharedCluster(options: ClusterOptions = {}): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await TestCluster.create(options);
    await cluster.startAll();
  }, STARTUP_TIMEOUT_MS + NODE_READY_TIMEOUT_MS);
  afterEach((context) => {
    if (cluster) reportIfFailed(context, cluster);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  return () => {
    if (!cluster) throw new Error("the shared cluster is not started: use it inside a test, not at describe level");
    return cluster;
  };
}

function reportIfFailed(context: TestContext, cluster: TestCluster): void {
  if (context.task.result?.state !== "fail") return;
  console.error(`node logs for the failed test "${context.task.name}" (data in ${cluster.root}):\n${cluster.logTails()}`);
}

function describeStatus(id: string, status: StatusResponse__Output | undefined): string {
  if (status === undefined) return `${id}: no answer`;
  return `${id}: ${status.role} term ${status.term} leader "${status.leaderId}" commit ${status.commitIndex}`;
}

function describeExit(exit: NodeExit | undefined): string {
  if (exit === undefined) return "still running";
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

