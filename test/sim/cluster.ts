/**
 * SimCluster: N simulated nodes on a simulated network, driven one tick at a time, with the safety checker
 * watching every event. Scenario tests read as scripts against it: elect, propose, crash, partition, heal,
 * run until something holds. Everything random comes from one seed, so every run replays exactly.
 */
import { defaultRaftConfig, type RaftConfig } from "../../src/raft/config.js";
import type { ProposeResult, ReadIndexResult, TransferResult } from "../../src/raft/core.js";
import { votersMembership, type MembershipChange } from "../../src/raft/membership.js";
import { MessageType, Role, type Message, type NodeId, type RaftStatus } from "../../src/raft/types.js";
import { SafetyChecker, SafetyViolation, type CheckerOptions } from "./checker.js";
import { ProposalLedger } from "./ledger.js";
import { SimNetwork, type NetworkConditions } from "./network.js";
import { asciiText } from "./payload.js";
import { Prng } from "../../src/chaos/prng.js";
import { SimNode } from "./sim-node.js";
import { Trace } from "./trace.js";

/** The raft knobs a scenario may change (identity, voters, randomness and tracing belong to the cluster). */
export type SimRaftConfig = Omit<RaftConfig, "id" | "random" | "trace">;

/**
 * The simulator's defaults: the production election timing, but tiny batches, pipelining windows and
 * apply batches, so batching, pipelining and flow control are exercised by a few dozen proposals.
 */
export const SIM_RAFT_CONFIG: Partial<SimRaftConfig> = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  maxEntriesPerAppend: 4,
  maxInflightAppends: 4,
  maxEntriesPerApply: 16,
  maxUncommittedEntries: 10_000,
};

export interface SimClusterOptions {
  /** Founding members, nodes n1..nN, all voters; default 3. */
  readonly nodes?: number;
  /** Extra nodes after the founders, started empty: they take part once added as members; default 0. */
  readonly spares?: number;
  /** Seed of every random choice (network, faults, each node's election timer); default 1. */
  readonly seed?: number;
  /** Raft settings over SIM_RAFT_CONFIG. */
  readonly config?: Partial<SimRaftConfig>;
  /** TEST ONLY: the broken driver that sends before persisting (see SimNodeOptions). */
  readonly unsafeSendBeforePersist?: boolean;
  /** Trace lines kept for failure reports. */
  readonly traceCapacity?: number;
  /** Receives every trace line as it happens (replays). */
  readonly echo?: (line: string) => void;
  /** Checker switches (see CheckerOptions); all checks by default. */
  readonly checker?: CheckerOptions;
  /** Full in-memory vs persisted log audit of every live node this often; 0 turns it off. */
  readonly auditEveryTicks?: number;
}

/** Most nodes a simulated cluster may have. */
export const MAX_SIM_NODES = 9;
/** How often the O(log) in-memory vs persisted log audit runs by default. */
export const DEFAULT_AUDIT_EVERY_TICKS = 250;
/** Trace lines appended to an error thrown while stepping. */
export const FAILURE_TRACE_LINES = 60;

/** Counters for run summaries. */
export interface ClusterStats {
  crashes: number;
  restarts: number;
  partitions: number;
  transfers: number;
  campaigns: number;
  reads: number;
  membershipChanges: number;
}

export class SimCluster {
  /** Every node, founders first, then spares. */
  readonly ids: readonly NodeId[];
  readonly founders: readonly NodeId[];
  readonly network: SimNetwork;
  readonly checker: SafetyChecker;
  readonly ledger = new ProposalLedger();
  readonly trace: Trace;
  /** Drives the network and fault decisions; nodes have their own streams. */
  readonly prng: Prng;
  readonly stats: ClusterStats = { crashes: 0, restarts: 0, partitions: 0, transfers: 0, campaigns: 0, reads: 0, membershipChanges: 0 };
  /** The nodes' base election timeout (liveness bounds are counted in these). */
  readonly electionTimeoutTicks: number;
  /** Probability that a Ready with messages hits a crash at the driver's fault point. */
  midReadyCrashRate = 0;
  /**
   * A Ready's write takes 0..this many ticks (uniform), during which the node keeps taking inputs, as
   * a driver with an asynchronous disk does; 0 (the default) writes every Ready at once.
   */
  maxPersistDelayTicks = 0;
  private readonly nodes = new Map<NodeId, SimNode>();
  /** Per-node write delays set by scenarios; they override maxPersistDelayTicks. */
  private readonly fixedPersistDelayTicks = new Map<NodeId, number>();
  private readonly auditEveryTicks: number;
  private tickCount = 0;
  private lastReportedCommit = 0;

  constructor(options: SimClusterOptions = {}) {
    const size = options.nodes ?? 3;
    const spares = options.spares ?? 0;
    if (!(Number.isInteger(size) && size >= 1 && size + spares <= MAX_SIM_NODES)) {
      throw new Error(`cluster size ${size} plus ${spares} spares must be 1..${MAX_SIM_NODES}`);
    }
    this.ids = Array.from({ length: size + spares }, (_, i) => `n${i + 1}`);
    this.founders = this.ids.slice(0, size);
    const founding = votersMembership(this.founders.map((id) => ({ id, address: `sim:${id}` })));
    this.prng = new Prng(options.seed ?? 1);
    this.trace = new Trace(options.traceCapacity, options.echo);
    this.network = new SimNetwork(this.prng.fork(), this.trace);
    this.checker = new SafetyChecker(this.ids, options.checker);
    this.auditEveryTicks = options.auditEveryTicks ?? DEFAULT_AUDIT_EVERY_TICKS;
    this.electionTimeoutTicks = options.config?.electionTimeoutTicks ?? SIM_RAFT_CONFIG.electionTimeoutTicks!;
    const env = {
      checker: this.checker,
      ledger: this.ledger,
      trace: (line: string | (() => string)) => this.trace.add(this.tickCount, line),
      send: (message: Message) => this.network.send(message, this.tickCount),
      crashInsideReady: () => this.midReadyCrashRate > 0 && this.prng.chance(this.midReadyCrashRate),
      persistDelayTicks: (id: NodeId) => this.fixedPersistDelayTicks.get(id) ?? (this.maxPersistDelayTicks > 0 ? this.prng.int(0, this.maxPersistDelayTicks) : 0),
      now: () => this.tickCount,
    };
    for (const id of this.ids) {
      const random = this.prng.fork();
      const config: RaftConfig = {
        ...defaultRaftConfig(id, () => random.next()),
        ...SIM_RAFT_CONFIG,
        ...options.config,
        trace: (line) => this.trace.add(this.tickCount, `${id} ${line}`),
      };
      const founder = this.founders.includes(id) ? founding : null;
      this.nodes.set(id, new SimNode(config, env, { unsafeSendBeforePersist: options.unsafeSendBeforePersist ?? false }, founder));
    }
  }

  /** Simulated time: ticks since the start. */
  get now(): number {
    return this.tickCount;
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id} in cluster [${this.ids.join(", ")}]`);
    return node;
  }

  /** Every node, up or down. */
  allNodes(): SimNode[] {
    return this.ids.map((id) => this.node(id));
  }

  liveIds(): NodeId[] {
    return this.ids.filter((id) => this.node(id).alive);
  }

  // ---- time ---------------------------------------------------------------------------------

  /**
   * One tick: every live node ticks, then every message due now is delivered (each node handles its
   * Readies after every input), then the checker's periodic audit runs. An error thrown on the way gets
   * the trace tail appended.
   */
  step(): void {
    this.tickCount++;
    try {
      for (const node of this.nodes.values()) if (node.alive) node.tick();
      for (const message of this.network.takeDue(this.tickCount)) {
        if (this.network.admit(message, this.tickCount)) this.node(message.to).deliver(message);
      }
      this.reportCommitProgress();
      if (this.auditEveryTicks > 0 && this.tickCount % this.auditEveryTicks === 0) this.audit();
    } catch (error) {
      throw this.withTrace(error);
    }
  }

  /** Steps `ticks` times. */
  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.step();
  }

  /**
   * Steps until `predicate` holds (checked before each tick too), at most `maxTicks`. Returns the ticks
   * taken; on timeout throws an error naming `what` with the trace tail.
   */
  runUntil(predicate: () => boolean, maxTicks: number, what: string): number {
    for (let ticks = 0; ticks <= maxTicks; ticks++) {
      if (predicate()) return ticks;
      if (ticks < maxTicks) this.step();
    }
    const error = new Error(`timed out after ${maxTicks} ticks (at t=${this.tickCount}) waiting for ${what}\n${this.describe()}`);
    throw this.withTrace(error);
  }

  /** A full in-memory vs persisted log comparison of every live node. */
  audit(): void {
    for (const node of this.nodes.values()) if (node.alive) this.checker.audit(node.id, node.raft());
  }

  // ---- observation --------------------------------------------------------------------------

  /** The live leader with the highest term, or null. */
  leader(): NodeId | null {
    let best: RaftStatus | null = null;
    for (const node of this.nodes.values()) {
      const status = node.status();
      if (status?.role === Role.Leader && (!best || status.term > best.term)) best = status;
    }
    return best?.id ?? null;
  }

  /** The leader once every live node agrees on it and its term (a settled cluster), or null. */
  agreedLeader(): NodeId | null {
    const leader = this.leader();
    if (!leader) return null;
    const term = this.node(leader).raft().status().term;
    for (const node of this.nodes.values()) {
      const status = node.status();
      if (status && (status.term !== term || status.leader !== leader)) return null;
    }
    return leader;
  }

  /** Runs until some live node is leader; returns it. */
  waitLeader(maxTicks = 200): NodeId {
    this.runUntil(() => this.leader() !== null, maxTicks, "a leader");
    return this.leader()!;
  }

  /** Runs until every live node follows one leader in one term; returns it. */
  waitAgreedLeader(maxTicks = 200): NodeId {
    this.runUntil(() => this.agreedLeader() !== null, maxTicks, "every live node to follow one leader");
    return this.agreedLeader()!;
  }

  status(id: NodeId): RaftStatus {
    return this.node(id).raft().status();
  }

  /** Runs until every node in `ids` (default: every live node) has applied through `index`. */
  waitApplied(index: number, ids: readonly NodeId[] = this.liveIds(), maxTicks = 200): void {
    this.runUntil(() => ids.every((id) => (this.node(id).status()?.appliedIndex ?? -1) >= index), maxTicks, `${ids.join(",")} to apply index ${index}`);
  }

  /** One line per node: role, term, leader, commit, applied, last index. */
  describe(): string {
    return this.allNodes()
      .map((node) => {
        const s = node.status();
        if (!s) return `  ${node.id}: down`;
        return `  ${node.id}: ${s.role} term=${s.term} leader=${s.leader || "-"} commit=${s.commitIndex} applied=${s.appliedIndex} last=${s.lastIndex}`;
      })
      .join("\n");
  }

  /** The newest trace lines, oldest first. */
  traceTail(lines = FAILURE_TRACE_LINES): string[] {
    return this.trace.tail(lines);
  }

  // ---- clients ------------------------------------------------------------------------------

  /**
   * Proposes `count` fresh entries (payloads p<seq>) through the current leader, or through `via`.
   * Returns the core's answer and the payloads.
   */
  propose(count = 1, via: NodeId | null = this.leader()): { result: ProposeResult; payloads: string[] } {
    const data = this.ledger.newPayloads(count);
    const payloads = data.map((bytes) => asciiText(bytes));
    if (via === null || !this.node(via).alive) return { result: { ok: false, reason: "not-leader", leader: "" }, payloads };
    const result = this.node(via).propose(data);
    this.trace.add(this.tickCount, () => `client → ${via}: propose ${describePayloads(payloads)}: ${result.ok ? `accepted at ${result.firstIndex}/${result.term}` : `refused (${result.reason})`}`);
    return { result, payloads };
  }

  /** Proposes through the leader and runs until every node in `ids` applied it; returns the entries' first index. */
  proposeAndWait(count = 1, ids: readonly NodeId[] = this.liveIds(), maxTicks = 200): number {
    const { result } = this.propose(count);
    if (!result.ok) throw this.withTrace(new Error(`proposal refused: ${result.reason} (leader ${this.leader() ?? "none"})\n${this.describe()}`));
    this.waitApplied(result.firstIndex + count - 1, ids, maxTicks);
    return result.firstIndex;
  }

  /** Starts a ReadIndex round on `via` (default: the leader). */
  readIndex(via: NodeId | null = this.leader()): ReadIndexResult {
    if (via === null) return { ok: false, reason: "not-leader", leader: "" };
    this.stats.reads++;
    return this.node(via).readIndex();
  }

  /**
   * Durability of acknowledged writes: every proposal a client was told succeeded is applied, as that
   * very entry, by every node. Call once the cluster has settled (every node up and caught up).
   */
  checkAcknowledgedWrites(members: readonly NodeId[] = this.ids): void {
    for (const ack of this.ledger.acknowledged()) {
      const applied = this.checker.appliedAt(ack.index);
      if (applied !== `${ack.term}:${ack.payload}`) {
        throw new SafetyViolation("Durability of Acknowledged Writes", `${ack.payload} was acknowledged at ${ack.index}/${ack.term} but index ${ack.index} is applied as ${applied ?? "nothing"}`);
      }
      for (const node of members.map((id) => this.node(id))) {
        if ((node.status()?.appliedIndex ?? 0) < ack.index) {
          throw new SafetyViolation("Durability of Acknowledged Writes", `${ack.payload} was acknowledged at ${ack.index} but ${node.id} has not applied it`);
        }
      }
    }
  }

  // ---- faults -------------------------------------------------------------------------------

  crash(id: NodeId, reason = "crash"): void {
    if (!this.node(id).alive) return;
    this.stats.crashes++;
    this.node(id).crash(reason);
  }

  restart(id: NodeId): void {
    if (this.node(id).alive) return;
    this.stats.restarts++;
    this.guard(() => this.node(id).restart());
  }

  /** Blocks every link between different groups (both ways); other links keep their state. */
  partition(...groups: NodeId[][]): void {
    this.stats.partitions++;
    this.network.partition(groups);
    this.trace.add(this.tickCount, `partition ${groups.map((g) => `{${g.join(",")}}`).join(" | ")}`);
  }

  /** Cuts `id` off from everyone else, both ways. */
  isolate(id: NodeId): void {
    this.partition([id], this.ids.filter((other) => other !== id));
  }

  /** Blocks the one-way link from → to. */
  blockLink(from: NodeId, to: NodeId): void {
    this.stats.partitions++;
    this.network.block(from, to);
    this.trace.add(this.tickCount, `block link ${from}→${to}`);
  }

  /** Removes every partition and blocked link. */
  heal(): void {
    this.network.heal();
    this.trace.add(this.tickCount, "heal: every link open");
  }

  setLoss(lossRate: number): void {
    this.setNetwork({ lossRate });
  }

  setDup(dupRate: number): void {
    this.setNetwork({ dupRate });
  }

  setDelay(minLatencyTicks: number, maxExtraDelayTicks: number): void {
    this.setNetwork({ minLatencyTicks, maxExtraDelayTicks });
  }

  setNetwork(change: Partial<NetworkConditions>): void {
    this.network.setConditions(change);
    const c = this.network.current();
    this.trace.add(this.tickCount, `network loss=${c.lossRate} dup=${c.dupRate} latency=${c.minLatencyTicks}+0..${c.maxExtraDelayTicks}`);
  }

  /** Asks the leader to change the membership; returns whether it accepted the change. */
  changeMembership(change: MembershipChange, via: NodeId | null = this.leader()): boolean {
    if (via === null) return false;
    this.stats.membershipChanges++;
    const result = this.guard(() => this.node(via).proposeMembershipChange(change));
    this.trace.add(this.tickCount, `operator → ${via}: ${change.kind} ${change.id}: ${result.ok ? `proposed at ${result.index}` : `refused (${result.reason}${"detail" in result ? `: ${result.detail}` : ""})`}`);
    return result.ok;
  }

  /**
   * The members of the cluster as the leader (or else the most advanced live node) applied them: the
   * nodes that must hold every acknowledged write.
   */
  members(): NodeId[] {
    const leader = this.leader();
    const source = leader ?? this.liveIds().sort((a, b) => this.status(b).appliedIndex - this.status(a).appliedIndex)[0];
    if (source === undefined) return [...this.founders];
    return this.status(source).membership.members.map((member) => member.id);
  }

  /** Compacts `id`'s log, keeping `keepEntries` applied entries (see SimNode.compact). */
  compact(id: NodeId, keepEntries: number): void {
    if (!this.node(id).alive) return;
    this.guard(() => this.node(id).compact(keepEntries));
  }

  /** Asks the leader (or `via`) to hand leadership to `target`. */
  transferLeadership(target: NodeId, via: NodeId | null = this.leader()): TransferResult {
    if (via === null) return { ok: false, reason: "no leader" };
    this.stats.transfers++;
    const result = this.guard(() => this.node(via).transferLeadership(target));
    this.trace.add(this.tickCount, `client → ${via}: transfer leadership to ${target}: ${result.ok ? "started" : `refused (${result.reason})`}`);
    return result;
  }

  /** Tells `id` that its connection to `peer` broke (what a real driver sees when a node dies). */
  peerUnreachable(id: NodeId, peer: NodeId): void {
    this.trace.add(this.tickCount, `${id} sees its connection to ${peer} break`);
    this.guard(() => this.node(id).peerUnreachable(peer));
  }

  /** Every write of `id` takes exactly `ticks` (a slow disk); null returns it to the cluster default. */
  setPersistDelay(id: NodeId, ticks: number | null): void {
    if (ticks === null) this.fixedPersistDelayTicks.delete(id);
    else this.fixedPersistDelayTicks.set(id, ticks);
    this.trace.add(this.tickCount, `${id} disk writes take ${ticks ?? "the default"} ticks`);
  }

  /** Makes `id` start an election now. */
  campaign(id: NodeId): void {
    this.stats.campaigns++;
    this.trace.add(this.tickCount, `${id} told to campaign`);
    this.guard(() => this.node(id).campaign());
  }

  /** Counts rejected AppendResponses delivered from now on (how many round trips log repair takes). */
  countRejectedAppends(): { readonly count: number } {
    const counter = { count: 0 };
    this.network.setDeliveryObserver((message) => {
      if (message.type === MessageType.AppendResponse && !message.success && message.rejectedIndex > 0) counter.count++;
    });
    return counter;
  }

  // ---- internals ----------------------------------------------------------------------------

  private reportCommitProgress(): void {
    const committed = this.checker.committedIndex();
    if (committed !== this.lastReportedCommit) {
      this.trace.add(this.tickCount, `committed through index ${committed}`);
      this.lastReportedCommit = committed;
    }
  }

  /** Runs an action outside step() with the same failure reporting. */
  private guard<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      throw this.withTrace(error);
    }
  }

  /** Appends the trace tail to an error's message, once. */
  private withTrace(error: unknown): unknown {
    if (!(error instanceof Error) || (error as { simTraced?: boolean }).simTraced) return error;
    Object.assign(error, { simTraced: true, simTick: this.tickCount });
    error.message += `\n--- last ${FAILURE_TRACE_LINES} trace lines ---\n${this.traceTail().join("\n")}`;
    return error;
  }
}

function describePayloads(payloads: readonly string[]): string {
  return payloads.length === 1 ? payloads[0]! : `${payloads[0]}..${payloads[payloads.length - 1]} (${payloads.length} entries)`;
}
