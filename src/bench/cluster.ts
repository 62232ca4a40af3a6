/**
 * The cluster under benchmark: 3 `raftq serve` processes on free 127.0.0.1 ports, fresh data directories
 * under the run's temp directory, clients dialling the nodes directly (no proxies). A node can be stopped
 * gracefully and restarted, and a new one can join with --join. Every wait polls Cluster.Status with a
 * deadline; `close()` SIGKILLs every node.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeProcess, type ProcessExit } from "../chaos/node-process.js";
import { connect, type NodeStatus, type RaftqClient } from "../client/index.js";
import { formatPeers } from "../server/peers.js";

/** Longest wait for a started node to answer, and for the nodes to agree on a leader. */
const READY_TIMEOUT_MS = 30_000;
/** Longest wait for a SIGKILLed node to be reaped. */
const KILL_EXIT_TIMEOUT_MS = 5_000;
/** Longest wait for a SIGTERMed node to stop (it may hand over leadership and drain calls first). */
const STOP_EXIT_TIMEOUT_MS = 30_000;
/** Deadline of one Status call. */
const STATUS_TIMEOUT_MS = 1_000;
const POLL_INTERVAL_MS = 50;

/** A leader every running node agrees on, and its term. */
export interface Leadership {
  readonly leaderId: string;
  readonly term: number;
}

/** How to start a bench cluster. */
export interface BenchClusterOptions {
  /** One node per port, n1..nN. */
  readonly ports: readonly number[];
  /** The run's temp directory: data in <root>/data/<id>, output in <root>/logs/<id>.log. */
  readonly root: string;
  /** The built CLI entry point the nodes run. */
  readonly cliMain: string;
  /** Extra `raftq serve` flags for every node (including ones that join later), e.g. ["--snapshot-entries", "500"]. */
  readonly extraArgs?: readonly string[];
  /** The nodes' --log-level (default "warn"; "info" also logs elections, compactions and snapshots). */
  readonly logLevel?: string;
}

/** A running 3-node (or n-node) cluster. */
export class BenchCluster {
  private readonly statusClient: RaftqClient;

  private constructor(
    private readonly nodes: Map<string, NodeProcess>,
    private readonly options: BenchClusterOptions,
  ) {
    this.statusClient = connect({
      addresses: this.addresses,
      timeoutMs: STATUS_TIMEOUT_MS,
      attemptTimeoutMs: STATUS_TIMEOUT_MS,
      // A restarted node must be seen at once, not after grpc-js's default reconnect backoff.
      channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 },
    });
  }

  /** Starts one node per port, n1..nN, and resolves once they agree on a leader. */
  static async start(options: BenchClusterOptions): Promise<BenchCluster> {
    const ids = options.ports.map((_, index) => `n${index + 1}`);
    const addressOf = (index: number): string => `127.0.0.1:${options.ports[index]}`;
    const peers = formatPeers(new Map(ids.map((id, index) => [id, addressOf(index)])));
    mkdirSync(join(options.root, "logs"), { recursive: true });
    const nodes = new Map(ids.map((id, index) => [id, nodeProcess(options, id, addressOf(index), ["--peers", peers])]));
    const cluster = new BenchCluster(nodes, options);
    try {
      await Promise.all(ids.map((id) => cluster.restart(id)));
      await cluster.stableLeader();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Node ids, n1..nN. */
  get ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** Every node's client address, in id order. */
  get addresses(): string[] {
    return [...this.nodes.values()].map((node) => node.spec.address);
  }

  /** Where a node writes its output. */
  logFile(id: string): string {
    return this.node(id).spec.logFile;
  }

  /** A node's data directory. */
  dataDir(id: string): string {
    return this.node(id).spec.dataDir;
  }

  /** The process id of a running node; undefined while it is down. */
  pid(id: string): number | undefined {
    return this.node(id).pid;
  }

  /**
   * Adds node `id` on `port` with an empty data directory, started with --join naming every current
   * node, and resolves once it answers Cluster.Status; the cluster then adds it as a learner and promotes it.
   */
  async join(id: string, port: number): Promise<void> {
    if (this.nodes.has(id)) throw new Error(`node "${id}" is already in the bench cluster: pick a new id`);
    const joinAddresses = this.addresses.join(",");
    this.nodes.set(id, nodeProcess(this.options, id, `127.0.0.1:${port}`, ["--join", joinAddresses]));
    await this.restart(id);
  }

  /** Starts a node that is down (same port and data); resolves once it answers Cluster.Status. */
  async restart(id: string): Promise<void> {
    const node = this.node(id);
    node.start(() => {});
    await this.poll(`node ${id} to answer Cluster.Status (see ${node.spec.logFile})`, async () => {
      if (node.state === "down") throw new Error(`node ${id} exited while starting; see ${node.spec.logFile}`);
      return (await this.status(id)) !== undefined;
    });
  }

  /** SIGTERM: a graceful stop. Resolves with how the process exited once it is gone. */
  async stop(id: string): Promise<ProcessExit | undefined> {
    const node = this.node(id);
    return node.signal("SIGTERM") ? node.exited(STOP_EXIT_TIMEOUT_MS) : node.lastExit;
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const node = this.node(id);
    if (node.signal("SIGKILL")) await node.exited(KILL_EXIT_TIMEOUT_MS);
  }

  /** One node's own view, or undefined when it is down or did not answer in time. */
  async status(id: string): Promise<NodeStatus | undefined> {
    const node = this.node(id);
    if (node.state !== "running") return undefined;
    return this.statusClient.status(node.spec.address).catch(() => undefined);
  }

  /** Waits until every running node answers and names the same leader, which says it leads. */
  async stableLeader(): Promise<Leadership> {
    let last = "no answers yet";
    return this.poll(() => `the running nodes to agree on one leader (last seen: ${last})`, async () => {
      const running = this.ids.filter((id) => this.node(id).state === "running");
      const statuses = await Promise.all(running.map((id) => this.status(id)));
      last = statuses.map((s, index) => (s ? `${s.nodeId} ${s.role} t${s.term} leader=${s.leaderId || "-"}` : `${running[index]} no answer`)).join("; ");
      const leaderId = statuses[0]?.leaderId;
      if (!leaderId || !statuses.every((status) => status?.leaderId === leaderId)) return undefined;
      const leader = statuses.find((status) => status?.nodeId === leaderId);
      return leader?.role === "leader" ? { leaderId, term: leader.term } : undefined;
    });
  }

  /** Waits until every running node has applied the leader's commit index; resolves with that index. */
  async allApplied(timeoutMs = READY_TIMEOUT_MS): Promise<number> {
    let last = "no answers yet";
    return this.poll(
      () => `every running node to apply the leader's commit index (last seen: ${last})`,
      async () => {
        const running = this.ids.filter((id) => this.node(id).state === "running");
        const statuses = await Promise.all(running.map((id) => this.status(id)));
        last = statuses.map((s, index) => (s ? `${s.nodeId} ${s.role} applied ${s.appliedIndex}/${s.commitIndex}` : `${running[index]} no answer`)).join("; ");
        const leader = statuses.find((status) => status?.role === "leader");
        if (leader === undefined) return undefined;
        return statuses.every((status) => status !== undefined && status.appliedIndex >= leader.commitIndex) ? leader.commitIndex : undefined;
      },
      timeoutMs,
    );
  }

  /** SIGKILLs every node and closes the status client. */
  async close(): Promise<void> {
    this.statusClient.close();
    await Promise.all(
      [...this.nodes.values()].map(async (node) => {
        if (node.signal("SIGKILL")) await node.exited(KILL_EXIT_TIMEOUT_MS).catch(() => undefined);
      }),
    );
  }

  private node(id: string): NodeProcess {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node "${id}" in the bench cluster (nodes: ${this.ids.join(", ")})`);
    return node;
  }

  /** Polls `probe` every 50 ms until it returns a value (not undefined/false), for at most `timeoutMs`. */
  async poll<T>(what: string | (() => string), probe: () => Promise<T | undefined | false>, timeoutMs = READY_TIMEOUT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
      await sleep(POLL_INTERVAL_MS);
    }
  }
}

/** A node of the cluster: data in <root>/data/<id>, output in <root>/logs/<id>.log; `membership` is --peers or --join. */
function nodeProcess(options: BenchClusterOptions, id: string, address: string, membership: readonly string[]): NodeProcess {
  const dataDir = join(options.root, "data", id);
  const logFile = join(options.root, "logs", `${id}.log`);
  const args = ["--id", id, "--listen", address, ...membership, "--data-dir", dataDir, "--log-level", options.logLevel ?? "warn", ...(options.extraArgs ?? [])];
  return new NodeProcess({ id, address, dataDir, logFile, cliMain: options.cliMain, args });
}
