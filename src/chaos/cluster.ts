/**
 * A cluster of real raftq node processes for chaos runs: N nodes (n1..nN) on free 127.0.0.1 ports, fresh
 * data directories under the run directory, and one fault-injecting proxy per directed link (node i's
 * `--dial` for node j is the proxy i→j). Clients and the status sampler talk to the nodes directly; only
 * node-to-node traffic crosses the proxies. Processes are killed, stopped, paused and restarted with
 * signals; every wait polls with a deadline. `close()` kills every process and proxy.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { connect, type NodeStatus, type RaftqClient } from "../client/index.js";
import { NodeProcess, type NodeSpec, type NodeState, type ProcessExit } from "./node-process.js";
import { allLinks, linkKey, type DirectedLink } from "./partitions.js";
import { freePorts } from "./ports.js";
import type { Prng } from "./prng.js";
import { LinkProxy, PASS, type LinkMode, type ProxyStats } from "./proxy.js";
import { sleep, withTimeout } from "./timing.js";
import { formatPeers } from "../server/peers.js";

/** How to build a cluster. */
export interface ClusterOptions {
  /** Number of nodes (3 or 5 make sense; 1..9 allowed). */
  readonly nodes: number;
  /** Data directories and logs go under it. */
  readonly runDir: string;
  /** The built CLI entry point every node runs. */
  readonly cliMain: string;
  /** Draws the proxies' lossy rolls. */
  readonly prng: Prng;
  /** Start every node with --unsafe-ack-before-commit (the deliberate bug the checker must catch). */
  readonly unsafeAckBeforeCommit?: boolean;
  /** --tick-ms of every node (default 50). */
  readonly tickMs?: number;
  /** --election-ticks of every node (default 10). */
  readonly electionTicks?: number;
  /** --log-level of every node (default "info"). */
  readonly logLevel?: string;
  /** Told when a node process starts or exits, e.g. to record it in the history. */
  readonly onNodeEvent?: (event: NodeLifeEvent) => void;
}

/** A node process starting or ending. */
export type NodeLifeEvent =
  | { readonly event: "started"; readonly node: string; readonly incarnation: number; readonly pid: number | undefined }
  | { readonly event: "exited"; readonly node: string; readonly incarnation: number; readonly exit: ProcessExit; readonly requested: boolean };

/** A node's Status answer with the incarnation that gave it. */
export interface StatusSample {
  readonly status: NodeStatus;
  readonly incarnation: number;
}

/** Longest wait for a started node to answer Cluster.Status. */
const NODE_READY_TIMEOUT_MS = 20_000;
/** Longest wait for a SIGTERMed node to stop by itself (it hands over leadership and drains calls first). */
const GRACEFUL_EXIT_TIMEOUT_MS = 20_000;
/** Longest wait for a SIGKILLed node to be reaped. */
const KILL_EXIT_TIMEOUT_MS = 5_000;
/** How often waits poll. */
const POLL_INTERVAL_MS = 100;
/** Deadline of one Status call. */
const STATUS_TIMEOUT_MS = 1_000;

export const MAX_NODES = 9;

/** A running chaos cluster. */
export class ChaosCluster {
  private readonly statusClient: RaftqClient;
  private closed = false;

  private constructor(
    private readonly nodes: ReadonlyMap<string, NodeProcess>,
    private readonly proxies: ReadonlyMap<string, LinkProxy>,
    private readonly onNodeEvent: (event: NodeLifeEvent) => void,
  ) {
    this.statusClient = connect({
      addresses: this.addresses,
      timeoutMs: STATUS_TIMEOUT_MS,
      attemptTimeoutMs: STATUS_TIMEOUT_MS,
      // A restarted node must be seen at once, not after grpc-js's default reconnect backoff (up to 120 s).
      channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 },
    });
  }

  /** Allocates ports, starts the proxies, then every node; resolves once a leader is agreed on. */
  static async start(options: ClusterOptions): Promise<ChaosCluster> {
    const count = options.nodes;
    if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new Error(`a chaos cluster has 1..${MAX_NODES} nodes, got ${count}`);
    const ids = Array.from({ length: count }, (_, index) => `n${index + 1}`);
    // Every port at once, nodes' and proxies' alike: a proxy binding port 0 after the nodes' ports were
    // released could be handed one of them, and that node would then fail with EADDRINUSE.
    const links = allLinks(ids);
    const ports = await freePorts(count + links.length);
    const addressOf = new Map(ids.map((id, index) => [id, `127.0.0.1:${ports[index]}`]));
    const proxies = await startProxies(links, addressOf, ports.slice(count), options.prng);
    mkdirSync(join(options.runDir, "logs"), { recursive: true });
    const nodes = new Map(ids.map((id) => [id, new NodeProcess(nodeSpec(id, addressOf, proxies, options))]));
    const cluster = new ChaosCluster(nodes, proxies, options.onNodeEvent ?? (() => {}));
    try {
      await Promise.all(ids.map((id) => cluster.restart(id)));
      await cluster.waitStable(NODE_READY_TIMEOUT_MS);
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

  /** A node's process state. */
  state(id: string): NodeState {
    return this.node(id).state;
  }

  /** The incarnation (start count) of a node. */
  incarnation(id: string): number {
    return this.node(id).incarnation;
  }

  /** Ids of nodes whose process runs and is not paused. */
  runningIds(): string[] {
    return this.ids.filter((id) => this.state(id) === "running");
  }

  /** Where a node writes its output. */
  logFile(id: string): string {
    return this.node(id).spec.logFile;
  }

  /** Starts a node that is down, with its old port and data; resolves once it answers Cluster.Status. */
  async restart(id: string): Promise<void> {
    const node = this.node(id);
    node.start((exit, incarnation, requested) => this.onNodeEvent({ event: "exited", node: id, incarnation, exit, requested }));
    const incarnation = node.incarnation;
    this.onNodeEvent({ event: "started", node: id, incarnation, pid: node.pid });
    await this.poll(NODE_READY_TIMEOUT_MS, `node ${id} to answer Cluster.Status after starting (see ${node.spec.logFile})`, async () => {
      if (node.incarnation !== incarnation || node.state === "down") {
        throw new Error(`node ${id} exited while starting (${describeExit(node.lastExit)}); see ${node.spec.logFile}`);
      }
      return (await this.statusOf(id)) !== undefined;
    });
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill(id: string): Promise<ProcessExit | undefined> {
    const node = this.node(id);
    if (!node.signal("SIGKILL")) return node.lastExit;
    return node.exited(KILL_EXIT_TIMEOUT_MS);
  }

  /**
   * SIGTERM: a graceful stop (a leader hands over first). Resolves with how it exited; a node that does not
   * stop in time is SIGKILLed and `graceful` is false.
   */
  async terminate(id: string): Promise<{ exit: ProcessExit | undefined; graceful: boolean }> {
    const node = this.node(id);
    if (node.state === "paused") node.signal("SIGCONT");
    if (!node.signal("SIGTERM")) return { exit: node.lastExit, graceful: true };
    try {
      return { exit: await node.exited(GRACEFUL_EXIT_TIMEOUT_MS), graceful: true };
    } catch {
      return { exit: await this.kill(id), graceful: false };
    }
  }

  /** SIGSTOP: the process freezes (a long GC pause, a stalled VM); its sockets stay open. */
  pause(id: string): boolean {
    return this.node(id).signal("SIGSTOP");
  }

  /** SIGCONT: a paused process goes on where it stopped. */
  resume(id: string): boolean {
    return this.node(id).signal("SIGCONT");
  }

  /** Sets the mode of each given link; every other link is left as it is. */
  setLinks(links: readonly DirectedLink[], mode: LinkMode): void {
    for (const link of links) this.proxy(link).setMode(mode);
  }

  /** Every link back to pass. */
  healNetwork(): void {
    for (const proxy of this.proxies.values()) proxy.setMode(PASS);
  }

  /** Links not in pass mode, as "n1→n2: drop" strings. */
  faultyLinks(): string[] {
    return [...this.proxies.values()].filter((proxy) => proxy.mode.kind !== "pass").map((proxy) => `${proxy.name}: ${proxy.mode.kind}`);
  }

  /** Counters of every proxy, by link. */
  proxyStats(): Record<string, ProxyStats> {
    return Object.fromEntries([...this.proxies.values()].map((proxy) => [proxy.name, proxy.stats()]));
  }

  /**
   * Undoes every fault: links healed, paused nodes resumed, down nodes restarted; then waits until every
   * node runs and all agree on one leader, whose id it returns.
   */
  async healAll(timeoutMs: number): Promise<string> {
    this.healNetwork();
    for (const id of this.ids) if (this.state(id) === "paused") this.resume(id);
    await Promise.all(this.ids.filter((id) => this.state(id) === "down").map((id) => this.restart(id)));
    return this.waitStable(timeoutMs);
  }

  /** One node's own view (one attempt), with the incarnation that answered; undefined if it did not answer. */
  async sample(id: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<StatusSample | undefined> {
    const node = this.node(id);
    const incarnation = node.incarnation;
    if (node.state === "down") return undefined;
    try {
      const status = await withTimeout(this.statusClient.status(node.spec.address), timeoutMs, `Status of ${id}`);
      // A node restarted while the call was out: the answer belongs to neither incarnation for sure.
      return node.incarnation === incarnation ? { status, incarnation } : undefined;
    } catch {
      return undefined;
    }
  }

  /** One node's Status, or undefined if it did not answer in time. */
  async statusOf(id: string): Promise<NodeStatus | undefined> {
    return (await this.sample(id))?.status;
  }

  /** The node that reports itself leader with the highest term among running nodes, polled until `timeoutMs`. */
  async leader(timeoutMs: number): Promise<string | undefined> {
    try {
      return await this.poll(timeoutMs, "a leader", async () => {
        const statuses = await Promise.all(this.runningIds().map((id) => this.statusOf(id)));
        const leaders = statuses.filter((status): status is NodeStatus => status?.role === "leader");
        leaders.sort((a, b) => b.term - a.term);
        return leaders[0]?.nodeId;
      });
    } catch {
      return undefined;
    }
  }

  /** Waits until every node runs, answers, and names the same leader, which says it leads. */
  async waitStable(timeoutMs: number): Promise<string> {
    let last = "no answers yet";
    return this.poll(timeoutMs, () => `every node to agree on one leader (last seen: ${last})`, async () => {
      const statuses = await Promise.all(this.ids.map((id) => this.statusOf(id)));
      last = statuses.map((status, index) => (status ? `${status.nodeId} ${status.role} t${status.term} leader=${status.leaderId || "-"}` : `${this.ids[index]} no answer`)).join("; ");
      const leaderId = statuses[0]?.leaderId;
      if (!leaderId || !statuses.every((status) => status?.leaderId === leaderId)) return undefined;
      return statuses.find((status) => status?.nodeId === leaderId)?.role === "leader" ? leaderId : undefined;
    });
  }

  /** SIGKILLs every process (paused ones too), closes every proxy and the status client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.statusClient.close();
    await Promise.all(
      [...this.nodes.values()].map(async (node) => {
        if (node.signal("SIGKILL")) await node.exited(KILL_EXIT_TIMEOUT_MS).catch(() => undefined);
      }),
    );
    await Promise.all([...this.proxies.values()].map((proxy) => proxy.close()));
  }

  private node(id: string): NodeProcess {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node "${id}" in this cluster (nodes: ${this.ids.join(", ")})`);
    return node;
  }

  private proxy(link: DirectedLink): LinkProxy {
    const proxy = this.proxies.get(linkKey(link));
    if (!proxy) throw new Error(`no proxy for link ${linkKey(link)} (nodes: ${this.ids.join(", ")})`);
    return proxy;
  }

  /** Polls `probe` until it returns something other than undefined/false; a throw ends the wait at once. */
  private async poll<T>(timeoutMs: number, what: string | (() => string), probe: () => Promise<T | undefined | false>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) throw new Error(`the cluster was closed while waiting for ${typeof what === "string" ? what : what()}`);
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
      await sleep(POLL_INTERVAL_MS);
    }
  }
}

/** One proxy per directed link on the given ports, keyed by linkKey; all closed again if one fails to start. */
async function startProxies(
  links: readonly DirectedLink[],
  addressOf: ReadonlyMap<string, string>,
  ports: readonly number[],
  prng: Prng,
): Promise<Map<string, LinkProxy>> {
  const proxies = new Map<string, LinkProxy>();
  try {
    for (const [index, link] of links.entries()) {
      const proxy = await LinkProxy.start({ name: linkKey(link), target: addressOf.get(link.to)!, prng: prng.fork(), port: ports[index] });
      proxies.set(linkKey(link), proxy);
    }
    return proxies;
  } catch (error) {
    await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
    throw error;
  }
}

/** How node `id` is started: its peers' client addresses, and the proxies it dials them through. */
function nodeSpec(id: string, addressOf: ReadonlyMap<string, string>, proxies: ReadonlyMap<string, LinkProxy>, options: ClusterOptions): NodeSpec {
  const ids = [...addressOf.keys()];
  const peers = formatPeers(addressOf);
  const dial = formatPeers(
    new Map(ids.filter((peer) => peer !== id).map((peer) => [peer, proxies.get(linkKey({ from: id, to: peer }))!.address])),
  );
  const dataDir = join(options.runDir, "data", id);
  const args = [
    "--id", id,
    "--listen", addressOf.get(id)!,
    "--peers", peers,
    "--data-dir", dataDir,
    ...(dial === "" ? [] : ["--dial", dial]),
    "--tick-ms", String(options.tickMs ?? 50),
    "--election-ticks", String(options.electionTicks ?? 10),
    "--log-level", options.logLevel ?? "info",
    ...(options.unsafeAckBeforeCommit ? ["--unsafe-ack-before-commit"] : []),
  ];
  return { id, address: addressOf.get(id)!, dataDir, logFile: join(options.runDir, "logs", `${id}.log`), cliMain: options.cliMain, args };
}

function describeExit(exit: ProcessExit | undefined): string {
  if (exit === undefined) return "no exit status";
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
