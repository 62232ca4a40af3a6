import type { Logger } from "pino";
import type { RaftConfig } from "../raft/config.js";
import { RaftCore } from "../raft/core.js";
import { EntryType, Role, type Entry, type Message, type NodeId, type RaftStatus, type Ready } from "../raft/types.js";
import type { RaftStorage } from "../storage/raft-storage.js";
import type { PeerTransport } from "../transport/peer-transport.js";
import { leadershipLost, NodeError, NodeErrorCode, notLeader } from "./errors.js";

/** The replicated application: applies committed entries, deterministically, in log order. */
export interface ReplicatedStateMachine<Result> {
  /** Applies one committed Normal entry and returns what its proposer gets back. Must not throw. */
  apply(entry: Entry): Result;
}

export interface RaftNodeOptions<Result> {
  readonly config: RaftConfig;
  readonly storage: RaftStorage;
  readonly stateMachine: ReplicatedStateMachine<Result>;
  readonly logger: Logger;
  /** Wall-clock length of one Raft tick. */
  readonly tickMs: number;
}

interface PendingProposal<Result> {
  readonly term: number;
  readonly resolve: (result: Result) => void;
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
    persisted: Awaited<ReturnType<RaftStorage["load"]>>,
  ) {
    this.core = new RaftCore(options.config, persisted);
    this.leadership = this.currentLeadership();
  }

  /** Restores a node from its storage. Call start() once the transport is ready. */
  static async open<Result>(options: RaftNodeOptions<Result>): Promise<RaftNode<Result>> {
    return new RaftNode(options, await options.storage.load());
  }

  get id(): NodeId {
    return this.core.id;
  }

  /** Begins ticking and sending. */
  start(transport: PeerTransport): void {
    this.transport = transport;
    this.ticker = setInterval(() => {
      this.core.tick();
      this.afterInput();
    }, this.options.tickMs);
    this.afterInput();
  }

  /** Feeds a message received from a peer. */
  receive(message: Message): void {
    if (this.stopped) return;
    this.core.step(message);
    this.afterInput();
  }

  /** The link to `peer` broke: if it is our leader, elect a new one without waiting a full timeout. */
  peerUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.core.leaderUnreachable(peer);
    this.afterInput();
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
      this.pendingProposals.set(result.firstIndex, { term: result.term, resolve, reject });
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
    this.noticeLeadershipChange();
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
      while (this.core.hasReady()) {
        const ready = this.core.ready();
        // The leader's replication traffic goes out at once, so followers write while we write.
        this.transport?.send(ready.eagerMessages);
        // Persist before send: a vote or an acknowledgement must never outrun the disk.
        if (ready.hardState || ready.entries.length > 0) await this.options.storage.save(ready);
        this.transport?.send(ready.messages);
        this.applyCommitted(ready);
        this.core.advance(ready);
        this.noticeLeadershipChange();
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

  private applyCommitted(ready: Ready): void {
    for (const entry of ready.committedEntries) {
      const result = entry.type === EntryType.Normal ? this.options.stateMachine.apply(entry) : undefined;
      this.appliedIndex = entry.index;
      const pending = this.pendingProposals.get(entry.index);
      if (!pending) continue;
      this.pendingProposals.delete(entry.index);
      // Another leader's entry at our index means ours was overwritten: it never committed.
      if (entry.term === pending.term && result !== undefined) pending.resolve(result);
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
