import type { Logger } from "pino";
import type { RaftConfig } from "../raft/config.js";
import { RaftCore } from "../raft/core.js";
import { bootstrapEntry, decodeMembership, sameMembership, type MembershipChange } from "../raft/membership.js";
import {
  EMPTY_MEMBERSHIP,
  EntryType,
  MessageType,
  Role,
  type Membership,
  type Message,
  type NodeId,
  type RaftStatus,
  type Ready,
} from "../raft/types.js";
import type { CompanionOperation, RootBatch } from "../storage/level-raft-storage.js";
import type { PersistStep, RaftStorage, StoredLog } from "../storage/raft-storage.js";
import type { PeerTransport } from "../transport/peer-transport.js";
import { cycleTrace, indexRange } from "./cycle-trace.js";
import { leadershipLost, NodeError, NodeErrorCode, notLeader } from "./errors.js";
import type { ReplicatedStateMachine, StateSnapshotReader, StateSnapshotWriter } from "./state-machine.js";

export type { ReplicatedStateMachine } from "./state-machine.js";

/** The storage the node needs: RaftStorage whose steps can carry another component's writes. */
export interface NodeStorage extends RaftStorage {
  save(step: PersistStep, companions?: readonly CompanionOperation[], stage?: (batch: RootBatch) => void): Promise<void>;
}

/**
 * When the node takes a snapshot: the state machine on disk always covers the applied index, so a
 * snapshot is just deleting the log it covers. It happens once this many entries or bytes were applied
 * since the last one, keeping a tail of the newest entries (at most `retainEntries`, at most
 * `retainBytes`) so a slightly lagging follower catches up from the log instead of a full state transfer.
 * The log (on disk, and in memory) thus stays below about everyEntries + retainEntries entries and
 * everyBytes + retainBytes bytes, whatever the history.
 */
export interface CompactionPolicy {
  readonly everyEntries: number;
  readonly everyBytes: number;
  readonly retainEntries: number;
  readonly retainBytes: number;
}

export const DEFAULT_COMPACTION: CompactionPolicy = {
  everyEntries: 20_000,
  everyBytes: 16 * 1024 * 1024,
  retainEntries: 5_000,
  retainBytes: 4 * 1024 * 1024,
};

/** A Ready taking longer than this is traced at debug level. */
const SLOW_READY_MS = 50;

export interface RaftNodeOptions<Result> {
  readonly config: RaftConfig;
  readonly storage: NodeStorage;
  readonly stateMachine: ReplicatedStateMachine<Result>;
  /** Where the persisted state machine stands (read when it was opened). */
  readonly applied: { readonly appliedIndex: number; readonly membership: Membership | null };
  /**
   * The founding members when this node starts a new cluster (empty storage): the first log entry.
   * Null for a node that joins an existing cluster: it waits for a leader to replicate to it.
   */
  readonly founders: Membership | null;
  readonly compaction?: CompactionPolicy;
  readonly logger: Logger;
  /** Wall-clock length of one Raft tick. */
  readonly tickMs: number;
}

interface PendingProposal<Result> {
  readonly term: number;
  readonly resolve: (result: Result | undefined) => void;
  readonly reject: (error: Error) => void;
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** Known once the leader confirmed the read round; then the read waits for the apply. */
  index: number | null;
}

/** Role and leader as last seen, to notice changes after every input. */
interface Leadership {
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: number;
}

/**
 * Drives one RaftCore against real time, storage and network: ticks on a timer, and runs the Ready
 * loop (persist → send → apply → advance). Proposals that arrive while a persist is in flight all
 * go into the next batch: one storage write and one fsync for many of them (group commit).
 */
export class RaftNode<Result> {
  private readonly core: RaftCore;
  private readonly pendingProposals = new Map<number, PendingProposal<Result>>();
  private readonly pendingReads = new Map<number, PendingRead>();
  private readonly appliedListeners = new Set<() => void>();
  private readonly leadershipListeners = new Set<(leadership: Leadership) => void>();
  private readonly membershipListeners = new Set<(membership: Membership) => void>();
  private readonly proposalSources = new Set<() => void>();
  private readonly compaction: CompactionPolicy;
  /** The membership as last reported to listeners. */
  private knownMembership: Membership;
  /** The membership as of the applied index (what the persisted state machine records). */
  private appliedMembership: Membership;
  /** Bytes applied since the last compaction. */
  private bytesSinceCompaction = 0;
  private transport: PeerTransport | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private driving = false;
  private driveScheduled = false;
  private stopped = false;
  private leadership: Leadership;
  private appliedIndex = 0;
  /** Resolves when the Ready loop is idle; stop() waits on it so the last batch reaches disk. */
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;

  private constructor(
    private readonly options: RaftNodeOptions<Result>,
    stored: StoredLog,
  ) {
    const membership = options.applied.membership ?? EMPTY_MEMBERSHIP;
    this.core = new RaftCore(options.config, { ...stored, applied: options.applied.appliedIndex, membership });
    this.appliedIndex = options.applied.appliedIndex;
    this.appliedMembership = membership;
    this.knownMembership = this.core.status().membership;
    this.compaction = options.compaction ?? DEFAULT_COMPACTION;
    this.leadership = this.currentLeadership();
  }

  /**
   * Restores a node from its storage, or starts a new one: a founder writes the founding membership as
   * the first log entry; a joining node starts empty. Call start() once the transport is ready.
   */
  static async open<Result>(options: RaftNodeOptions<Result>): Promise<RaftNode<Result>> {
    let stored = await options.storage.load();
    const empty = stored.entries.length === 0 && stored.logStart.index === 0 && options.applied.appliedIndex === 0;
    if (empty && options.founders) {
      await options.storage.save({ hardState: { term: 0, vote: "", commit: 1 }, entries: [bootstrapEntry(options.founders)] });
      stored = await options.storage.load();
    }
    return new RaftNode(options, stored);
  }

  get id(): NodeId {
    return this.core.id;
  }

  /** Begins ticking and sending. */
  start(transport: PeerTransport): void {
    this.transport = transport;
    let lastTickAt = performance.now();
    this.ticker = setInterval(() => {
      const now = performance.now();
      this.warnIfStalled(now - lastTickAt);
      lastTickAt = now;
      this.core.tick();
      this.afterInput();
    }, this.options.tickMs);
    this.afterInput();
  }

  /**
   * A tick that comes this late means the event loop was blocked (or starved of CPU): nothing was sent
   * meanwhile, so followers may have campaigned. Said once per stall, so an operator can tell a slow
   * machine from a network fault.
   */
  private warnIfStalled(sinceLastTickMs: number): void {
    const lateMs = sinceLastTickMs - this.options.tickMs;
    const electionTimeoutMs = this.options.config.electionTimeoutTicks * this.options.tickMs;
    if (lateMs < electionTimeoutMs / 2) return;
    this.options.logger.warn(
      { lateMs: Math.round(lateMs), electionTimeoutMs },
      "the event loop was blocked: a tick came late, so heartbeats were late too (an overloaded machine?)",
    );
  }

  /** The longest a follower waits without hearing from a leader before it campaigns (the randomized timeout's top). */
  electionTimeoutMaxMs(): number {
    return 2 * this.options.config.electionTimeoutTicks * this.options.tickMs;
  }

  /** Feeds a message received from a peer (a Snapshot once its whole state is staged). */
  receive(message: Message): void {
    if (this.stopped) return;
    if (cycleTrace) traceReceived(message);
    this.core.step(message);
    this.afterInput();
  }

  /**
   * What the transport reads a snapshot from and stages a received one into. Staging is refused while a
   * received snapshot waits to be installed, so a second transfer cannot overwrite it (the leader
   * retries later).
   */
  snapshotStore(): { openSnapshot(): StateSnapshotReader; startRestore(): StateSnapshotWriter } {
    const stateMachine = this.options.stateMachine;
    return {
      openSnapshot: () => stateMachine.openSnapshot(),
      startRestore: () => {
        if (this.core.installingSnapshot()) throw new Error(`node ${this.id} is still installing a snapshot; retry the transfer later`);
        return stateMachine.startRestore();
      },
    };
  }

  /** The transfer of a snapshot to `peer` ended; either way the leader probes it again before going on. */
  snapshotDone(peer: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.core.snapshotStatus(peer, ok);
    this.afterInput();
  }

  /** The membership in force on this node (its newest membership entry, committed or not). */
  membership(): Membership {
    return this.core.status().membership;
  }

  /** Called whenever the membership in force changes. */
  onMembershipChange(listener: (membership: Membership) => void): () => void {
    this.membershipListeners.add(listener);
    return () => this.membershipListeners.delete(listener);
  }

  /**
   * Proposes a membership change and resolves once it is committed and applied here. A learner added
   * this way is promoted to voter by the leader once it has caught up.
   */
  proposeMembershipChange(change: MembershipChange): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const result = this.core.proposeMembershipChange(change);
    if (!result.ok) {
      switch (result.reason) {
        case "pending":
          return Promise.reject(new NodeError(NodeErrorCode.MembershipChangePending, result.detail, result.leader));
        case "invalid":
          return Promise.reject(new NodeError(NodeErrorCode.InvalidMembershipChange, result.detail, result.leader));
        default:
          return Promise.reject(notLeader(this.id, result.reason === "transferring" ? "" : result.leader));
      }
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.pendingProposals.set(result.index, { term: result.term, resolve: () => resolve(), reject });
    });
    this.afterInput();
    return promise;
  }

  /** The link to `peer` broke: a follower of it elects a new leader without waiting a full timeout; a leader handing over to it gives up. */
  peerUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.core.peerUnreachable(peer);
    this.afterInput();
  }

  /**
   * Adds a holder of proposals gathered for joining (a coalescer): `flush` proposes what it holds, and is
   * called right before every Ready is taken, so those proposals join that Ready.
   */
  addProposalSource(flush: () => void): () => void {
    this.proposalSources.add(flush);
    return () => this.proposalSources.delete(flush);
  }

  /** Replicates `data` and resolves with the state machine's result once it is committed and applied here. */
  propose(data: Uint8Array): Promise<Result> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const result = this.core.propose([data]);
    if (!result.ok) {
      if (result.reason === "overloaded") {
        return Promise.reject(
          new NodeError(NodeErrorCode.Overloaded, `node ${this.id} has too many uncommitted entries; slow down and retry`, this.id),
        );
      }
      return Promise.reject(notLeader(this.id, result.reason === "transferring" ? "" : result.leader));
    }
    const promise = new Promise<Result>((resolve, reject) => {
      this.pendingProposals.set(result.firstIndex, { term: result.term, resolve: (value) => resolve(value as Result), reject });
    });
    this.scheduleDrive();
    return promise;
  }

  /**
   * A linearizable read barrier (ReadIndex): resolves once this leader has confirmed it is still the
   * leader and has applied everything committed before the call, so local state may be read.
   */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const result = this.core.readIndex();
    if (!result.ok) return Promise.reject(notLeader(this.id, result.reason === "transferring" ? "" : result.leader));
    const promise = new Promise<void>((resolve, reject) => {
      this.pendingReads.set(result.requestId, { resolve, reject, index: null });
    });
    this.scheduleDrive();
    return promise;
  }

  /** Asks the leader (this node) to hand over to `target`. */
  transferLeadership(target: NodeId): { ok: true } | { ok: false; reason: string } {
    const result = this.core.transferLeadership(target);
    this.afterInput();
    return result;
  }

  status(): RaftStatus {
    return this.core.status();
  }

  isLeader(): boolean {
    return this.leadership.role === Role.Leader;
  }

  leaderId(): NodeId {
    return this.leadership.leader;
  }

  /** Called after every batch of applied entries (for long polls waiting on new messages). */
  onApplied(listener: () => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /** Called whenever the role, leader or term changes. */
  onLeadershipChange(listener: (leadership: Leadership) => void): () => void {
    this.leadershipListeners.add(listener);
    return () => this.leadershipListeners.delete(listener);
  }

  /** Stops ticking, fails what is pending, lets the last batch reach disk and closes the transport. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.idle;
    this.failPending(this.stoppedError());
    this.transport?.close();
  }

  // ---- the Ready loop -----------------------------------------------------------------------

  private afterInput(): void {
    // While a Ready is being written, heartbeats (and their answers) leave at once: a write that stalls
    // must not look like a dead leader.
    if (this.driving) {
      const eager = this.core.takeEagerMessages();
      if (eager.length > 0) this.transport?.send(eager);
    }
    this.noticeLeadershipChange();
    this.noticeMembershipChange();
    this.scheduleDrive();
  }

  /** Runs the loop on the next turn of the event loop, so everything arriving in this turn shares a batch. */
  private scheduleDrive(): void {
    if (this.driving || this.driveScheduled || this.stopped) return;
    this.driveScheduled = true;
    setImmediate(() => {
      this.driveScheduled = false;
      void this.drive();
    });
  }

  private async drive(): Promise<void> {
    if (this.driving) return;
    this.driving = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    try {
      for (;;) {
        for (const flush of this.proposalSources) flush();
        if (!this.core.hasReady()) break;
        const startedAt = performance.now();
        const ready = this.core.ready();
        cycleTrace?.record("ready", indexRange(ready.entries), indexRange(ready.committedEntries));
        // The leader's replication traffic goes out at once, so followers write while we write. A
        // Snapshot among it is read from the state machine now, at the applied index it names.
        this.transport?.send(ready.eagerMessages);
        // The committed entries are durable already (the core hands out only persisted ones): apply them
        // now, so their state changes go into this Ready's one LevelDB batch.
        const results = this.applyCommitted(ready);
        const appliedAt = performance.now();
        // Clients are answered once their entries are committed (on a majority of disks, ours included)
        // and applied, without waiting for the state machine's writes: a restart applies the log again
        // from the applied index on disk, and until those writes land the state machine's storage
        // serves the bodies they hold from memory (queue-write-buffer.ts).
        this.answer(ready, results);
        cycleTrace?.record("answered");
        // Persist before send: a vote or an acknowledgement must never outrun the disk.
        cycleTrace?.record("persist-start");
        await this.persist(ready, ready.committedEntries.length > 0);
        cycleTrace?.record("persist-end");
        this.traceSlowReady(ready, appliedAt - startedAt, performance.now() - appliedAt);
        this.transport?.send(ready.messages);
        this.core.advance(ready);
        await this.maybeCompact();
        this.noticeLeadershipChange();
        this.noticeMembershipChange();
      }
    } catch (error) {
      // A failed fsync leaves the node unsure what is on disk: continuing could break safety.
      this.options.logger.fatal({ err: error }, "storage write failed; the node must stop to stay safe");
      process.exitCode = 70;
      this.stopped = true;
      if (this.ticker) clearInterval(this.ticker);
      this.failPending(this.stoppedError());
    } finally {
      this.driving = false;
      this.markIdle();
    }
  }

  /**
   * The Raft step and the state machine's changes since the last Ready (`applied`), or with a received
   * snapshot the state machine's switch to it, in one atomic LevelDB write: one batch per Ready.
   */
  private async persist(ready: Ready, applied: boolean): Promise<void> {
    const { snapshot } = ready;
    const stateMachine = this.options.stateMachine;
    const stage = applied ? (batch: RootBatch) => stateMachine.stageWrites(batch, this.appliedIndex, this.appliedMembership) : undefined;
    if (snapshot) {
      const companions = stateMachine.installOperations(snapshot);
      await this.options.storage.save(ready, companions);
      await stateMachine.reload();
      this.appliedIndex = snapshot.index;
      this.appliedMembership = snapshot.membership;
      this.bytesSinceCompaction = 0;
      this.options.logger.info({ index: snapshot.index, term: snapshot.term }, "installed a snapshot from the leader");
    } else if (ready.hardState || ready.entries.length > 0 || stage) {
      await this.options.storage.save(ready, [], stage);
      if (stage) stateMachine.writesDone();
    }
  }

  /** At debug level, says where a slow Ready's time went (applying blocks the event loop; writing does not). */
  private traceSlowReady(ready: Ready, applyMs: number, writeMs: number): void {
    if (applyMs + writeMs < SLOW_READY_MS || !this.options.logger.isLevelEnabled("debug")) return;
    this.options.logger.debug(
      { applyMs: Math.round(applyMs), writeMs: Math.round(writeMs), entries: ready.entries.length, applied: ready.committedEntries.length },
      "slow Ready",
    );
  }

  /** Applies the committed entries (skipping any a snapshot already covers); returns results by index. */
  private applyCommitted(ready: Ready): Map<number, { term: number; result: Result | undefined }> {
    const results = new Map<number, { term: number; result: Result | undefined }>();
    for (const entry of ready.committedEntries) {
      if (entry.index <= this.appliedIndex) continue;
      let result: Result | undefined;
      if (entry.type === EntryType.Normal) result = this.options.stateMachine.apply(entry);
      else if (entry.type === EntryType.Membership) this.appliedMembership = decodeMembership(entry.data);
      this.appliedIndex = entry.index;
      this.bytesSinceCompaction += entry.data.byteLength;
      if (this.pendingProposals.has(entry.index)) results.set(entry.index, { term: entry.term, result });
    }
    return results;
  }

  /** Answers proposals and reads once their entries are committed and applied. */
  private answer(ready: Ready, results: ReadonlyMap<number, { term: number; result: Result | undefined }>): void {
    for (const [index, { term, result }] of results) {
      const pending = this.pendingProposals.get(index);
      if (!pending) continue;
      this.pendingProposals.delete(index);
      // Another leader's entry at our index means ours was overwritten: it never committed.
      if (term === pending.term) pending.resolve(result);
      else pending.reject(leadershipLost(this.id));
    }
    for (const readState of ready.readStates) {
      const read = this.pendingReads.get(readState.requestId);
      if (read) read.index = readState.index;
    }
    for (const [requestId, read] of this.pendingReads) {
      if (read.index !== null && read.index <= this.appliedIndex) {
        this.pendingReads.delete(requestId);
        read.resolve();
      }
    }
    if (ready.committedEntries.length > 0) for (const listener of this.appliedListeners) listener();
  }

  /**
   * Takes a snapshot when enough was applied since the last: deletes the log through the applied index
   * minus the retained tail. The state machine's batches are already in LevelDB (not necessarily synced),
   * and this synced write makes them durable first: LevelDB writes reach the disk in order.
   */
  private async maybeCompact(): Promise<void> {
    const status = this.core.status();
    const since = this.appliedIndex - status.firstIndex + 1;
    if (since < this.compaction.everyEntries + this.compaction.retainEntries && this.bytesSinceCompaction < this.compaction.everyBytes) return;
    const through = this.appliedIndex - this.retainedTail();
    const term = this.core.termAt(through);
    if (through < status.firstIndex || term === undefined) return;
    await this.options.storage.compact({ index: through, term });
    this.core.compact(through);
    this.bytesSinceCompaction = 0;
    this.options.logger.info({ through, applied: this.appliedIndex }, "compacted the log: the state machine on disk covers it");
  }

  /** How many applied entries to keep behind a snapshot: the newest, within both retain limits. */
  private retainedTail(): number {
    const { retainEntries, retainBytes } = this.compaction;
    let entries = 0;
    let bytes = 0;
    for (let index = this.appliedIndex; entries < retainEntries; index--) {
      const entry = this.core.entry(index);
      if (entry === undefined) break;
      bytes += entry.data.byteLength;
      if (bytes > retainBytes) break;
      entries++;
    }
    return entries;
  }

  private noticeMembershipChange(): void {
    const now = this.core.status().membership;
    if (sameMembership(now, this.knownMembership)) return;
    this.knownMembership = now;
    this.options.logger.info({ members: now.members }, "membership changed");
    for (const listener of this.membershipListeners) listener(now);
  }

  private currentLeadership(): Leadership {
    const status = this.core.status();
    return { role: status.role, leader: status.leader, term: status.term };
  }

  private noticeLeadershipChange(): void {
    const now = this.currentLeadership();
    const before = this.leadership;
    if (now.role === before.role && now.leader === before.leader && now.term === before.term) return;
    this.leadership = now;
    if (before.role === Role.Leader && now.role !== Role.Leader) this.failPending(leadershipLost(this.id));
    this.options.logger.info({ role: now.role, term: now.term, leader: now.leader || null }, "leadership changed");
    for (const listener of this.leadershipListeners) listener(now);
  }

  /** Proposals and reads in flight when leadership is lost have an unknown outcome for the caller. */
  private failPending(error: Error): void {
    for (const pending of this.pendingProposals.values()) pending.reject(error);
    this.pendingProposals.clear();
    for (const read of this.pendingReads.values()) read.reject(error);
    this.pendingReads.clear();
  }

  private stoppedError(): NodeError {
    return new NodeError(NodeErrorCode.Stopped, `node ${this.id} is shutting down; retry on another node`);
  }
}

/** The `recv-append` and `recv-ack` events of the cycle trace (cycle-trace.ts). */
function traceReceived(message: Message): void {
  if (message.type === MessageType.Append && message.entries.length > 0) {
    cycleTrace?.record("recv-append", message.entries[0]!.index, message.entries[message.entries.length - 1]!.index);
  } else if (message.type === MessageType.AppendResponse && message.success) {
    cycleTrace?.record("recv-ack", message.from, message.matchIndex);
  }
}
