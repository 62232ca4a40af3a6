import { assert } from "./assert.js";
import { validateRaftConfig, type RaftConfig } from "./config.js";
import { RaftLog } from "./log.js";
import {
  changeMembership,
  decodeMembership,
  encodeMembership,
  sameMembership,
  isMemberOf,
  isVoterIn,
  votersOf,
  type MembershipChange,
} from "./membership.js";
import { Progress, ReplicationState } from "./progress.js";
import { majorityValue, tallyVotes, VoteOutcome } from "./quorum.js";
import {
  EntryType,
  MessageType,
  NO_NODE,
  Role,
  type AppendRequest,
  type AppendResponse,
  type Entry,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type Membership,
  type Message,
  type NodeId,
  type PersistedState,
  type RaftStatus,
  type ReadState,
  type Ready,
  type SnapshotMessage,
  type SnapshotMeta,
  type VoteRequest,
  type VoteResponse,
} from "./types.js";

export type ProposeResult =
  | { readonly ok: true; readonly term: number; readonly firstIndex: number }
  | { readonly ok: false; readonly reason: "not-leader" | "transferring" | "overloaded"; readonly leader: NodeId };

export type ReadIndexResult =
  | { readonly ok: true; readonly requestId: number }
  | { readonly ok: false; readonly reason: "not-leader" | "transferring"; readonly leader: NodeId };

export type TransferResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type MembershipChangeResult =
  | { readonly ok: true; readonly term: number; readonly index: number }
  | { readonly ok: false; readonly reason: "not-leader" | "transferring"; readonly leader: NodeId }
  | { readonly ok: false; readonly reason: "pending" | "invalid"; readonly leader: NodeId; readonly detail: string };

const EMPTY_DATA = new Uint8Array(0);

/** A ReadIndex request waiting for a heartbeat round to confirm leadership. */
interface PendingRead {
  readonly requestId: number;
  /** The commit index to read at; null until the leader has committed an entry in its term. */
  index: number | null;
  /** The heartbeat round whose majority answer confirms this node was still the leader. */
  round: number;
}

/** A message as the core composes it; `from` and `term` are filled in by send(). */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, "from" | "term"> : never) : never;

/**
 * The Raft consensus core: a deterministic state machine with no I/O, timers or clock.
 * Inputs: tick(), step(message), propose(), campaign(), transferLeadership(), readIndex().
 * Output: Ready batches the driver persists, sends and applies, then acknowledges with advance().
 */
export class RaftCore {
  readonly id: NodeId;
  private readonly config: RaftConfig;
  private readonly log: RaftLog;
  /**
   * The membership in force: that of the newest Membership entry in the log, committed or not (Raft
   * thesis §4.1), else `baseMembership`. It changes as entries are appended, and reverts when they are
   * truncated away.
   */
  private membership: Membership;
  /** The membership at the log start (before every entry the log still holds). */
  private baseMembership: Membership;
  /** Index of the Membership entry `membership` comes from (0: from `baseMembership`). */
  private membershipIndex = 0;
  /** The membership before that entry (the same as `membership` when it comes from the base). */
  private previousMembership: Membership;
  /** The membership as of the applied index: what a snapshot of the state machine carries. */
  private appliedMembership: Membership;
  /**
   * A leader may propose a membership change only once it has applied this index: its own no-op (so an
   * entry of its term is committed) and any change it proposed before. One change at a time.
   */
  private pendingMembershipIndex = 0;
  /** Followers to send a snapshot to at the next ready(). */
  private readonly snapshotsDue = new Set<NodeId>();
  /** A snapshot accepted from the leader that the driver has yet to install (see Ready.snapshot). */
  private pendingSnapshot: SnapshotMeta | null = null;
  /** A snapshot was handed out in a Ready that is not advanced yet: the log is not durable until it is. */
  private snapshotUnpersisted = false;

  private term: number;
  private vote: NodeId;
  private role = Role.Follower;
  private leader: NodeId = NO_NODE;
  private persistedHardState: HardState;

  /** Ticks since the last reset: election timer for followers, CheckQuorum and transfer timer for leaders. */
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;

  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferTarget: NodeId = NO_NODE;

  private messages: Message[] = [];
  /** Leader traffic that may leave before this Ready is persisted (see Ready.eagerMessages). */
  private eagerMessages: Message[] = [];
  /** Followers to send new entries to at the next ready(): many proposals, one Append. */
  private appendPending = false;

  private nextReadRequestId = 1;
  private readRound = 0;
  private readRoundPending = false;
  private pendingReads: PendingRead[] = [];
  private readStates: ReadState[] = [];

  constructor(config: RaftConfig, persisted: PersistedState) {
    validateRaftConfig(config);
    this.config = config;
    this.id = config.id;
    this.log = new RaftLog(persisted.logStart, persisted.entries, persisted.hardState.commit, persisted.applied);
    // The persisted membership is the one at the applied index; the log between its start and the
    // applied index holds no newer Membership entry if it is also the one at the log start, and when it
    // does hold one, the scan below finds the newest anyway.
    this.baseMembership = persisted.membership;
    this.appliedMembership = persisted.membership;
    this.membership = persisted.membership;
    this.previousMembership = persisted.membership;
    this.refreshMembership();
    this.term = persisted.hardState.term;
    this.vote = persisted.hardState.vote;
    this.persistedHardState = persisted.hardState;
    this.resetElectionTimer();
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** Advances logical time by one tick. */
  tick(): void {
    this.electionElapsedTicks++;
    if (this.role === Role.Leader) {
      this.tickLeader();
    } else if (this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks && this.mayCampaign()) {
      this.electionElapsedTicks = 0;
      this.trace(`election timeout after ${this.randomizedElectionTimeoutTicks} ticks`);
      this.startElection(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsedTicks++;
    if (this.electionElapsedTicks >= this.config.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      if (this.config.checkQuorum && !this.quorumRecentlyActive()) {
        this.trace(`steps down: no majority heard from for ${this.config.electionTimeoutTicks} ticks (CheckQuorum)`);
        this.becomeFollower(this.term, NO_NODE);
        return;
      }
      if (this.transferTarget !== NO_NODE) {
        this.trace(`leadership transfer to ${this.transferTarget} timed out`);
        this.transferTarget = NO_NODE;
      }
    }
    if (this.heartbeatElapsedTicks >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsedTicks = 0;
      this.broadcastHeartbeat();
    }
  }

  /**
   * The driver saw its connection to `peer` break (reset or refused), which a dead node causes at once,
   * long before an election timeout.
   * - A follower whose leader it is forgets the leader, so it grants votes, and campaigns after a short
   *   random delay (so the followers do not split the vote). Pre-Vote keeps this harmless when only
   *   this one link broke: the others still hear the leader and refuse.
   * - A leader handing over to it gives the transfer up at once instead of after an election timeout
   *   (a whole cluster stopping together: the target is gone), and takes proposals again.
   */
  peerUnreachable(peer: NodeId): void {
    if (this.role === Role.Leader && this.transferTarget === peer) {
      this.trace(`gave up the leadership transfer to ${peer}: its connection broke`);
      this.transferTarget = NO_NODE;
      return;
    }
    if (this.role !== Role.Follower || this.leader !== peer) return;
    this.trace(`lost its connection to leader ${peer}`);
    this.leader = NO_NODE;
    this.electionElapsedTicks = 0;
    this.randomizedElectionTimeoutTicks = 1 + Math.floor(this.config.random() * Math.ceil(this.config.electionTimeoutTicks / 2));
  }

  /** Starts an election now (pre-vote first when enabled); a no-op on a leader. */
  campaign(): void {
    if (this.role !== Role.Leader && this.mayCampaign()) this.startElection(false);
  }

  /** Appends client data as one batch of entries. Leader only. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    if (this.role !== Role.Leader) return { ok: false, reason: "not-leader", leader: this.leader };
    if (this.transferTarget !== NO_NODE) return { ok: false, reason: "transferring", leader: this.leader };
    const uncommitted = this.log.lastIndex() - this.log.commitIndex();
    if (data.length > this.config.maxUncommittedEntries || uncommitted + data.length > this.config.maxUncommittedEntries) {
      return { ok: false, reason: "overloaded", leader: this.leader };
    }
    const firstIndex = this.log.lastIndex() + 1;
    data.forEach((bytes, offset) => {
      this.log.push({ index: firstIndex + offset, term: this.term, type: EntryType.Normal, data: bytes });
    });
    this.appendPending = true;
    return { ok: true, term: this.term, firstIndex };
  }

  /**
   * Appends a membership change, which takes effect on each node when it applies it. Leader only, one
   * change at a time, and not before this leader has applied its own first entry (see membership.ts).
   */
  proposeMembershipChange(change: MembershipChange): MembershipChangeResult {
    if (this.role !== Role.Leader) return { ok: false, reason: "not-leader", leader: this.leader };
    if (this.transferTarget !== NO_NODE) return { ok: false, reason: "transferring", leader: this.leader };
    if (!this.canChangeMembership()) {
      return { ok: false, reason: "pending", leader: this.leader, detail: "another membership change is still in progress; retry once it is applied" };
    }
    const next = changeMembership(this.membership, change);
    if (typeof next === "string") return { ok: false, reason: "invalid", leader: this.leader, detail: next };
    const index = this.log.lastIndex() + 1;
    this.log.push({ index, term: this.term, type: EntryType.Membership, data: encodeMembership(next) });
    this.pendingMembershipIndex = index;
    this.appendPending = true;
    this.trace(`proposes membership change at ${index}: ${change.kind} ${change.id}`);
    this.refreshMembership();
    return { ok: true, term: this.term, index };
  }

  private canChangeMembership(): boolean {
    return this.log.appliedIndex() >= this.pendingMembershipIndex;
  }

  /**
   * The driver's transfer of a snapshot to `peer` ended: delivered (`ok`) or failed. Either way the
   * leader probes the follower again after its next heartbeat answer, and sends a fresh snapshot if the
   * follower still needs one.
   */
  snapshotStatus(peer: NodeId, ok: boolean): void {
    const progress = this.role === Role.Leader ? this.progress.get(peer) : undefined;
    if (progress?.state !== ReplicationState.Snapshot) return;
    this.trace(`snapshot transfer to ${peer} ${ok ? "done" : "failed"}`);
    progress.becomeProbe(ok ? progress.pendingSnapshotIndex + 1 : progress.matchIndex + 1);
    progress.probeSent = true;
  }

  /**
   * Forgets log entries through `index` (at most the applied index): the driver has persisted a state
   * machine that covers them and deleted them from its storage. A follower that needs them gets a snapshot.
   */
  compact(index: number): void {
    const through = Math.min(index, this.log.appliedIndex());
    // The base moves to the new log start: the newest Membership entry compacted away, if any.
    for (let at = through; at >= this.log.firstIndex(); at--) {
      const entry = this.log.entry(at)!;
      if (entry.type === EntryType.Membership) {
        this.baseMembership = decodeMembership(entry.data);
        break;
      }
    }
    this.log.compact(through);
  }

  /** Hands leadership to `target` once it has caught up. Leader only. */
  transferLeadership(target: NodeId): TransferResult {
    if (this.role !== Role.Leader) return { ok: false, reason: `node ${this.id} is not the leader` };
    if (target === this.id) return { ok: false, reason: `node ${this.id} is already the leader` };
    const progress = this.progress.get(target);
    if (!progress || !this.isVoter(target)) return { ok: false, reason: `node ${target} is not a voting member` };
    this.transferTarget = target;
    this.electionElapsedTicks = 0;
    this.trace(`transferring leadership to ${target} (match ${progress.matchIndex}, last ${this.log.lastIndex()})`);
    if (progress.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
    return { ok: true };
  }

  /**
   * Starts a linearizable read (Raft thesis §6.4). The answer is a ReadState in a later Ready: once the
   * node has applied its index, the read reflects every write committed before readIndex() was called.
   */
  readIndex(): ReadIndexResult {
    if (this.role !== Role.Leader) return { ok: false, reason: "not-leader", leader: this.leader };
    if (this.transferTarget !== NO_NODE) return { ok: false, reason: "transferring", leader: this.leader };
    const requestId = this.nextReadRequestId++;
    const read: PendingRead = { requestId, index: null, round: 0 };
    this.pendingReads.push(read);
    if (this.committedInCurrentTerm()) this.scheduleReadRound(read);
    return { ok: true, requestId };
  }

  /** Handles one message addressed to this node. */
  step(message: Message): void {
    // Messages from non-members are handled too: a node that joins learns the membership from its leader.
    if (message.to !== this.id || message.from === this.id) return;
    if (message.term > this.term) {
      if (!this.acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    switch (message.type) {
      case MessageType.PreVote:
      case MessageType.Vote:
        this.handleVoteRequest(message);
        return;
      case MessageType.PreVoteResponse:
      case MessageType.VoteResponse:
        this.handleVoteResponse(message);
        return;
      case MessageType.Append:
        this.followLeader(message.from);
        this.handleAppend(message);
        return;
      case MessageType.Heartbeat:
        this.followLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case MessageType.Snapshot:
        this.followLeader(message.from);
        this.handleSnapshot(message);
        return;
      case MessageType.AppendResponse:
        this.handleAppendResponse(message);
        return;
      case MessageType.HeartbeatResponse:
        this.handleHeartbeatResponse(message);
        return;
      case MessageType.TimeoutNow:
        if (this.role !== Role.Leader && this.mayCampaign()) {
          this.trace(`received TimeoutNow from ${message.from}: campaigning at once`);
          this.startElection(true);
        }
        return;
    }
  }

  /**
   * A message from a higher term. Returns whether to go on handling it in the (possibly new) term.
   * Vote requests inside a leader lease are ignored, which is what makes CheckQuorum and Pre-Vote
   * stop a rejoining node from deposing a healthy leader.
   */
  private acceptHigherTerm(message: Message): boolean {
    const isVoteRequest = message.type === MessageType.PreVote || message.type === MessageType.Vote;
    if (isVoteRequest && !message.transfer && this.inLeaderLease()) {
      this.trace(`ignores ${MessageType[message.type]} from ${message.from} for term ${message.term}: leader ${this.leader} is alive`);
      return false;
    }
    if (message.type === MessageType.PreVote) return true;
    if (message.type === MessageType.PreVoteResponse && message.granted) return true;
    const leader = isLeaderTraffic(message) ? message.from : NO_NODE;
    this.becomeFollower(message.term, leader);
    return true;
  }

  private stepLowerTerm(message: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && isLeaderTraffic(message)) {
      // A stale leader (or a node that lost an election at a higher term) learns our term and steps down.
      this.send({
        type: MessageType.AppendResponse,
        to: message.from,
        success: false,
        matchIndex: 0,
        rejectedIndex: 0,
        conflictTerm: 0,
        conflictIndex: 0,
      });
    } else if (message.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResponse, to: message.from, granted: false });
    }
  }

  // ---- elections ----------------------------------------------------------------------------

  private startElection(transfer: boolean): void {
    if (this.config.preVote && !transfer) this.becomePreCandidate();
    else this.becomeCandidate(transfer);
  }

  private becomePreCandidate(): void {
    this.role = Role.PreCandidate;
    this.leader = NO_NODE;
    this.resetElectionTimer();
    this.votes = new Map([[this.id, true]]);
    this.trace(`starts pre-vote for term ${this.term + 1}`);
    this.requestVotes(MessageType.PreVote, this.term + 1, false);
    this.checkElectionOutcome();
  }

  private becomeCandidate(transfer: boolean): void {
    this.term++;
    this.vote = this.id;
    this.role = Role.Candidate;
    this.leader = NO_NODE;
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer();
    this.trace(`starts election for term ${this.term}${transfer ? " (leadership transfer)" : ""}`);
    this.requestVotes(MessageType.Vote, this.term, transfer);
    this.checkElectionOutcome();
  }

  private requestVotes(type: MessageType.PreVote | MessageType.Vote, term: number, transfer: boolean): void {
    for (const peer of this.otherVoters()) {
      this.queue({
        type,
        from: this.id,
        to: peer,
        term,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        transfer,
      });
    }
  }

  private handleVoteRequest(message: VoteRequest): void {
    const isPreVote = message.type === MessageType.PreVote;
    const canVote =
      this.vote === message.from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (isPreVote && message.term > this.term);
    const granted = canVote && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    if (granted && !isPreVote) {
      this.vote = message.from;
      this.electionElapsedTicks = 0;
    }
    if (granted && isPreVote) this.yieldToPreVote(message.from);
    const type = isPreVote ? MessageType.PreVoteResponse : MessageType.VoteResponse;
    // A granted pre-vote answers in the prospective term; a rejection tells the candidate our term.
    this.queue({ type, from: this.id, to: message.from, term: granted && isPreVote ? message.term : this.term, granted });
  }

  /**
   * Someone with a log as good as ours is about to campaign: let it, rather than campaigning too and
   * splitting the vote (two followers that both saw the leader's connection break, for instance). When
   * two pre-votes cross, the lower node id goes on and the other steps back. Liveness only: pre-votes
   * change no term and no vote.
   */
  private yieldToPreVote(candidate: NodeId): void {
    if (this.role === Role.Follower && this.leader === NO_NODE) this.resetElectionTimer();
    else if (this.role === Role.PreCandidate && candidate < this.id) {
      this.trace(`steps back from its pre-vote for ${candidate}, whose pre-vote crossed ours`);
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private handleVoteResponse(message: VoteResponse): void {
    const expected = this.role === Role.PreCandidate ? MessageType.PreVoteResponse : MessageType.VoteResponse;
    if (message.type !== expected || (this.role !== Role.PreCandidate && this.role !== Role.Candidate)) return;
    if (!this.isVoter(message.from)) return;
    this.votes.set(message.from, message.granted);
    this.checkElectionOutcome();
  }

  private checkElectionOutcome(): void {
    const voters = votersOf(this.membership);
    const votes = new Map([...this.votes].filter(([voter]) => voters.includes(voter)));
    const outcome = tallyVotes(votes, voters.length);
    if (outcome === VoteOutcome.Won) {
      if (this.role === Role.PreCandidate) this.becomeCandidate(false);
      else this.becomeLeader();
    } else if (outcome === VoteOutcome.Lost) {
      this.trace(`lost the ${this.role === Role.PreCandidate ? "pre-vote" : "election"} for term ${this.role === Role.PreCandidate ? this.term + 1 : this.term}`);
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private becomeLeader(): void {
    this.role = Role.Leader;
    this.leader = this.id;
    this.transferTarget = NO_NODE;
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.progress = new Map(this.otherMembers().map((peer) => [peer, this.newProgress()]));
    this.trace(`became leader for term ${this.term}`);
    // The no-op lets the leader learn which earlier entries are committed (Raft §5.4.2, §8).
    this.log.push({ index: this.log.lastIndex() + 1, term: this.term, type: EntryType.Noop, data: EMPTY_DATA });
    this.pendingMembershipIndex = this.log.lastIndex();
    this.appendPending = true;
  }

  private becomeFollower(term: number, leader: NodeId): void {
    assert(term >= this.term, `term must never decrease (${this.term} → ${term})`);
    const wasLeader = this.role === Role.Leader;
    if (term > this.term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.role = Role.Follower;
    this.leader = leader;
    this.transferTarget = NO_NODE;
    this.appendPending = false;
    this.snapshotsDue.clear();
    this.progress.clear();
    this.resetElectionTimer();
    if (wasLeader) this.dropPendingReads();
    if (leader !== NO_NODE) this.trace(`follows leader ${leader} in term ${term}`);
  }

  /** Called on every Append/Heartbeat of the current term: the sender is the leader. */
  private followLeader(leader: NodeId): void {
    if (this.role !== Role.Follower || this.leader !== leader) this.becomeFollower(this.term, leader);
    this.electionElapsedTicks = 0;
  }

  private resetElectionTimer(): void {
    this.electionElapsedTicks = 0;
    const timeout = this.config.electionTimeoutTicks;
    this.randomizedElectionTimeoutTicks = timeout + Math.floor(this.config.random() * timeout);
  }

  /** With CheckQuorum, a follower that heard from its leader within an election timeout trusts it. */
  private inLeaderLease(): boolean {
    return this.config.checkQuorum && this.leader !== NO_NODE && this.electionElapsedTicks < this.config.electionTimeoutTicks;
  }

  private quorumRecentlyActive(): boolean {
    let active = this.isVoter(this.id) ? 1 : 0;
    for (const [peer, progress] of this.progress) {
      if (progress.recentActive && this.isVoter(peer)) active++;
      progress.recentActive = false;
    }
    return active * 2 > votersOf(this.membership).length;
  }

  // ---- replication: leader side -------------------------------------------------------------

  private sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    const progress = this.progress.get(to)!;
    if (progress.isPaused()) return;
    const prevLogIndex = progress.nextIndex - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === undefined) {
      this.sendSnapshot(to, progress);
      return;
    }
    const entries = this.log.slice(progress.nextIndex, this.log.lastIndex(), this.config.maxEntriesPerAppend, this.config.maxBytesPerAppend);
    if (entries.length === 0 && !sendIfEmpty && progress.state === ReplicationState.Replicate) return;
    this.send({ type: MessageType.Append, to, prevLogIndex, prevLogTerm, entries, commit: this.log.commitIndex() });
    progress.sent(entries.length > 0 ? entries[entries.length - 1]!.index : prevLogIndex);
  }

  /**
   * The follower needs entries compacted away: send the state machine as of the applied index (the
   * driver streams the state itself) and pause replication to it until the transfer ends.
   */
  private sendSnapshot(to: NodeId, progress: Progress): void {
    this.trace(`will send a snapshot to ${to} (it needs ${progress.nextIndex}, log starts at ${this.log.firstIndex()})`);
    progress.becomeSnapshot(this.log.appliedIndex());
    this.snapshotsDue.add(to);
  }

  /**
   * Snapshot messages are composed at ready(), not when decided: they name the applied index, and the
   * driver reads the state at the moment it takes the Ready, before applying anything more.
   */
  private composeSnapshots(): void {
    for (const to of this.snapshotsDue) {
      const progress = this.progress.get(to);
      if (progress?.state !== ReplicationState.Snapshot) continue;
      const index = this.log.appliedIndex();
      progress.pendingSnapshotIndex = index;
      this.trace(`sends snapshot at ${index} to ${to}`);
      this.send({ type: MessageType.Snapshot, to, snapshot: { index, term: this.log.term(index)!, membership: this.appliedMembership } });
    }
    this.snapshotsDue.clear();
  }

  /** Sends everything not yet sent to every follower that is not paused. */
  private broadcastAppend(): void {
    for (const peer of this.progress.keys()) {
      const progress = this.progress.get(peer)!;
      while (!progress.isPaused() && progress.nextIndex <= this.log.lastIndex()) {
        const before = progress.nextIndex;
        this.sendAppend(peer, false);
        if (progress.state === ReplicationState.Probe || progress.nextIndex === before) break;
      }
    }
  }

  private broadcastHeartbeat(): void {
    for (const peer of this.progress.keys()) {
      const progress = this.progress.get(peer)!;
      const message: Heartbeat = {
        type: MessageType.Heartbeat,
        from: this.id,
        to: peer,
        term: this.term,
        // Never tell a follower to commit past what it is known to hold.
        commit: Math.min(progress.matchIndex, this.log.commitIndex()),
        readRound: this.readRound,
      };
      this.queue(message);
    }
  }

  private handleAppendResponse(message: AppendResponse): void {
    const progress = this.role === Role.Leader ? this.progress.get(message.from) : undefined;
    if (!progress) return;
    progress.recentActive = true;
    if (!message.success) {
      this.handleAppendRejection(progress, message);
      return;
    }
    const wasProbe = progress.state !== ReplicationState.Replicate;
    const advanced = progress.acknowledge(message.matchIndex);
    if (progress.state === ReplicationState.Probe && message.matchIndex >= progress.matchIndex) progress.becomeReplicate();
    if (progress.state === ReplicationState.Snapshot && progress.matchIndex >= progress.pendingSnapshotIndex) progress.becomeReplicate();
    if (advanced) this.maybeCommit();
    if (advanced) this.maybePromote(message.from, progress);
    if (message.from === this.transferTarget && progress.matchIndex === this.log.lastIndex()) {
      this.sendTimeoutNow(message.from);
    }
    if (advanced || wasProbe) {
      while (!progress.isPaused() && progress.nextIndex <= this.log.lastIndex()) {
        const before = progress.nextIndex;
        this.sendAppend(message.from, false);
        if (progress.state === ReplicationState.Probe || progress.nextIndex === before) break;
      }
    }
  }

  /** Fast backtracking: jump over a whole conflicting term per round trip instead of one entry. */
  private handleAppendRejection(progress: Progress, message: AppendResponse): void {
    if (message.rejectedIndex === 0) return; // a term notice from stepLowerTerm, already handled by term
    if (progress.state === ReplicationState.Snapshot) return; // an answer from before the snapshot
    const stale =
      progress.state === ReplicationState.Probe
        ? message.rejectedIndex !== progress.nextIndex - 1
        : message.rejectedIndex <= progress.matchIndex;
    if (stale) return;
    let next = message.conflictIndex;
    if (message.conflictTerm > 0) {
      const ours = this.log.lastIndexOfTerm(message.conflictTerm, message.rejectedIndex);
      if (ours > 0) next = ours + 1;
    }
    progress.becomeProbe(Math.min(next, message.rejectedIndex));
    this.sendAppend(message.from, true);
  }

  private handleHeartbeatResponse(message: HeartbeatResponse): void {
    const progress = this.role === Role.Leader ? this.progress.get(message.from) : undefined;
    if (!progress) return;
    progress.recentActive = true;
    progress.heartbeatAnswered();
    this.maybePromote(message.from, progress);
    if (message.readRound > progress.readRound) {
      progress.readRound = message.readRound;
      this.confirmReads();
    }
    if (progress.matchIndex < this.log.lastIndex()) this.sendAppend(message.from, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.trace(`sends TimeoutNow to ${to}`);
    this.send({ type: MessageType.TimeoutNow, to });
  }

  /** Raft §5.4.2: only an entry of the current term is committed by counting replicas. */
  private maybeCommit(): void {
    const matches = votersOf(this.membership).map((voter) =>
      voter === this.id ? this.log.stableIndex() : (this.progress.get(voter)?.matchIndex ?? 0),
    );
    if (matches.length === 0) return;
    const candidate = majorityValue(matches);
    if (candidate <= this.log.commitIndex() || this.log.term(candidate) !== this.term) return;
    const firstCommitInTerm = !this.committedInCurrentTerm();
    this.log.commitTo(candidate);
    if (firstCommitInTerm) {
      for (const read of this.pendingReads) if (read.index === null) this.scheduleReadRound(read);
    }
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.commitIndex()) === this.term;
  }

  // ---- replication: follower side -----------------------------------------------------------

  private handleAppend(message: AppendRequest): void {
    const reply = (fields: Pick<AppendResponse, "success" | "matchIndex" | "rejectedIndex" | "conflictTerm" | "conflictIndex">) =>
      this.send({ type: MessageType.AppendResponse, to: message.from, ...fields });
    const accepted = { success: true, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0 } as const;
    if (message.prevLogIndex < this.log.commitIndex()) {
      // Everything up to our commit index matches any leader's log; answer with what we know.
      reply({ ...accepted, matchIndex: this.log.commitIndex() });
      return;
    }
    if (!this.log.matchTerm(message.prevLogIndex, message.prevLogTerm)) {
      const ourTerm = this.log.term(message.prevLogIndex);
      if (ourTerm === undefined) {
        reply({ success: false, matchIndex: 0, rejectedIndex: message.prevLogIndex, conflictTerm: 0, conflictIndex: this.log.lastIndex() + 1 });
      } else {
        const conflictIndex = Math.max(this.log.firstIndexOfTerm(message.prevLogIndex), this.log.commitIndex() + 1);
        reply({ success: false, matchIndex: 0, rejectedIndex: message.prevLogIndex, conflictTerm: ourTerm, conflictIndex });
      }
      return;
    }
    const truncatedFrom = this.log.appendFrom(message.prevLogIndex, message.entries);
    if (truncatedFrom !== null) this.withdrawAcknowledgementsFrom(truncatedFrom);
    if (truncatedFrom !== null || message.entries.some((entry) => entry.type === EntryType.Membership)) this.refreshMembership();
    const lastNewIndex = message.prevLogIndex + message.entries.length;
    this.log.commitTo(Math.min(message.commit, lastNewIndex));
    reply({ ...accepted, matchIndex: lastNewIndex });
  }

  /**
   * Entries from `index` on were just replaced before being persisted. Acknowledgements of them still
   * waiting to be sent (queued while an earlier write was in flight) would claim a durable copy that will
   * never exist, and a stale leader could count them toward a commit: withdraw them.
   */
  private withdrawAcknowledgementsFrom(index: number): void {
    this.messages = this.messages.filter(
      (message) => !(message.type === MessageType.AppendResponse && message.success && message.matchIndex >= index),
    );
  }

  /**
   * InstallSnapshot, once the driver holds the whole state. A snapshot this node already has the end of
   * only moves the commit index; otherwise it replaces the log, and the driver installs it (Ready.snapshot)
   * before the acknowledgement leaves.
   */
  private handleSnapshot(message: SnapshotMessage): void {
    const { snapshot } = message;
    const reply = (matchIndex: number) =>
      this.send({ type: MessageType.AppendResponse, to: message.from, success: true, matchIndex, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0 });
    if (snapshot.index <= this.log.commitIndex()) {
      reply(this.log.commitIndex());
      return;
    }
    if (this.log.matchTerm(snapshot.index, snapshot.term)) {
      this.log.commitTo(snapshot.index);
      reply(snapshot.index);
      return;
    }
    this.trace(`restores snapshot at ${snapshot.index}/${snapshot.term} from ${message.from}`);
    this.withdrawAcknowledgementsFrom(snapshot.index + 1);
    this.log.restore({ index: snapshot.index, term: snapshot.term });
    this.baseMembership = snapshot.membership;
    this.appliedMembership = snapshot.membership;
    this.refreshMembership();
    this.pendingSnapshot = snapshot;
    this.snapshotUnpersisted = true;
    reply(snapshot.index);
  }

  private handleHeartbeat(message: Heartbeat): void {
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()));
    this.send({ type: MessageType.HeartbeatResponse, to: message.from, readRound: message.readRound });
  }

  // ---- linearizable reads -------------------------------------------------------------------

  /** Reads at the current commit index once the next heartbeat round (sent at ready()) is confirmed. */
  private scheduleReadRound(read: PendingRead): void {
    read.index = this.log.commitIndex();
    if (this.otherVoters().length === 0) {
      read.round = this.readRound;
      this.confirmReads();
    } else {
      read.round = this.readRound + 1;
      this.readRoundPending = true;
    }
  }

  /** Releases reads whose round a majority (this leader included) has confirmed. */
  private confirmReads(): void {
    const rounds = votersOf(this.membership).map((voter) =>
      voter === this.id ? this.readRound : (this.progress.get(voter)?.readRound ?? 0),
    );
    if (rounds.length === 0) return;
    const confirmed = majorityValue(rounds);
    while (this.pendingReads.length > 0) {
      const read = this.pendingReads[0]!;
      if (read.index === null || read.round > confirmed) break;
      this.pendingReads.shift();
      this.readStates.push({ requestId: read.requestId, index: read.index });
    }
  }

  private dropPendingReads(): void {
    // The caller learns through its own timeout; a new leader must be asked again.
    this.pendingReads = [];
    this.readRoundPending = false;
  }

  // ---- output -------------------------------------------------------------------------------

  private send(message: Outgoing): void {
    this.queue({ ...message, from: this.id, term: this.term } as Message);
  }

  private queue(message: Message): void {
    // A Snapshot is eager too: it names the applied state, which the driver must read before applying more.
    const leaderTraffic = isLeaderTraffic(message) || message.type === MessageType.TimeoutNow;
    // A heartbeat answer only says "I am in your term": it promises nothing about the log, so a follower
    // whose disk is busy still keeps its leader's CheckQuorum satisfied.
    const eager = (leaderTraffic && this.role === Role.Leader) || message.type === MessageType.HeartbeatResponse;
    // A node whose term is not durable yet (a lone voter elects itself at once) waits for its disk.
    if (eager && this.persistedHardState.term === this.term) this.eagerMessages.push(message);
    else this.messages.push(message);
  }

  /**
   * The eager messages queued since the last ready(), for a driver whose disk write is still under way
   * (they may leave before any write: see Ready.eagerMessages). Without this a write that stalls for
   * longer than an election timeout (a shared disk, LevelDB compaction) silences the leader's heartbeats
   * and its followers' answers, and the cluster elects a new leader for nothing.
   */
  takeEagerMessages(): Message[] {
    const messages = this.eagerMessages;
    this.eagerMessages = [];
    return messages;
  }

  /**
   * Term and vote must be durable before any message that depends on them. The commit index is not
   * needed for safety; it rides along for free whenever a hard state or entries are written anyway,
   * so a restarted node can replay its committed log without waiting for a leader.
   */
  private termOrVoteChanged(): boolean {
    return this.term !== this.persistedHardState.term || this.vote !== this.persistedHardState.vote;
  }

  private hasUnstableEntries(): boolean {
    return this.log.stableIndex() < this.log.lastIndex();
  }

  /** Whether ready() has anything for the driver. */
  hasReady(): boolean {
    return (
      this.messages.length > 0 ||
      this.eagerMessages.length > 0 ||
      this.appendPending ||
      this.snapshotsDue.size > 0 ||
      this.readRoundPending ||
      this.readStates.length > 0 ||
      this.pendingSnapshot !== null ||
      this.snapshotUnpersisted ||
      this.termOrVoteChanged() ||
      this.hasUnstableEntries() ||
      this.log.nextToApply(1).length > 0
    );
  }

  /** The next batch of work. The driver must handle it as the Ready contract says, then call advance(). */
  ready(): Ready {
    if (this.role === Role.Leader) {
      if (this.appendPending) this.broadcastAppend();
      this.composeSnapshots();
      if (this.readRoundPending) {
        this.readRound++;
        this.readRoundPending = false;
        this.broadcastHeartbeat();
      }
    }
    this.appendPending = false;
    const writesHardState = this.termOrVoteChanged() || this.hasUnstableEntries() || this.pendingSnapshot !== null;
    const ready: Ready = {
      snapshot: this.pendingSnapshot,
      hardState: writesHardState ? { term: this.term, vote: this.vote, commit: this.log.commitIndex() } : null,
      entries: this.log.unstableEntries(),
      eagerMessages: this.eagerMessages,
      messages: this.messages,
      committedEntries: this.log.nextToApply(this.config.maxEntriesPerApply, this.config.maxBytesPerApply),
      readStates: this.readStates,
    };
    this.messages = [];
    this.eagerMessages = [];
    this.readStates = [];
    this.pendingSnapshot = null;
    return ready;
  }

  /** Acknowledges that `ready` was persisted, sent and applied. */
  advance(ready: Ready): void {
    if (ready.hardState) this.persistedHardState = ready.hardState;
    if (ready.snapshot && this.pendingSnapshot === null) this.snapshotUnpersisted = false;
    const lastPersisted: Entry | undefined = ready.entries[ready.entries.length - 1];
    if (lastPersisted) {
      this.log.stableTo(lastPersisted.index, lastPersisted.term);
      // The leader's own copy counts toward a majority only once it is durable.
      if (this.role === Role.Leader) this.maybeCommit();
    }
    // Entries handed out before a snapshot replaced them were applied, then superseded by the snapshot.
    const fresh = ready.committedEntries.filter((entry) => entry.index > this.log.appliedIndex());
    const lastApplied = fresh[fresh.length - 1];
    if (lastApplied) this.log.appliedTo(lastApplied.index);
    for (const entry of fresh) if (entry.type === EntryType.Membership) this.appliedMembership = decodeMembership(entry.data);
    this.maybeLeaveLeadership();
    // A learner that caught up while another change was pending is promoted once that change is applied.
    if (this.role === Role.Leader && fresh.length > 0) for (const [peer, progress] of this.progress) this.maybePromote(peer, progress);
  }

  /**
   * Recomputes the membership from the newest Membership entry in the log (after an append, truncation,
   * compaction or snapshot) and adapts to a change: who votes and what a majority is, which members a
   * leader replicates to.
   */
  private refreshMembership(): void {
    const index = this.membershipEntryBefore(this.log.lastIndex() + 1);
    const membership = index === 0 ? this.baseMembership : decodeMembership(this.log.entry(index)!.data);
    if (index === this.membershipIndex && membership === this.membership) return;
    this.membershipIndex = index;
    const previousIndex = index === 0 ? 0 : this.membershipEntryBefore(index);
    this.previousMembership = previousIndex === 0 ? this.baseMembership : decodeMembership(this.log.entry(previousIndex)!.data);
    if (sameMembership(membership, this.membership)) {
      this.membership = membership;
      return;
    }
    this.membership = membership;
    const learners = membership.members.filter((member) => !member.voter).map((member) => member.id);
    this.trace(`membership now voters [${votersOf(membership).join(", ")}] learners [${learners.join(", ")}]`);
    if (this.role === Role.PreCandidate || this.role === Role.Candidate) {
      if (this.mayCampaign()) this.checkElectionOutcome();
      else this.becomeFollower(this.term, NO_NODE);
      return;
    }
    if (this.role !== Role.Leader) return;
    for (const peer of this.otherMembers()) if (!this.progress.has(peer)) this.progress.set(peer, this.newProgress());
    for (const peer of [...this.progress.keys()]) if (!isMemberOf(membership, peer)) this.progress.delete(peer);
    if (this.transferTarget !== NO_NODE && !this.isVoter(this.transferTarget)) this.transferTarget = NO_NODE;
    this.maybeCommit();
    this.confirmReads();
    this.appendPending = true;
  }

  /** The index of the newest Membership entry before `index` still in the log, or 0. */
  private membershipEntryBefore(index: number): number {
    for (let at = index - 1; at >= this.log.firstIndex(); at--) {
      if (this.log.entry(at)!.type === EntryType.Membership) return at;
    }
    return 0;
  }

  /**
   * Whether this node may start an election: a voter of the membership in force may; so may a voter of
   * the one before while the newest (which removes it) is not known committed. Otherwise a removal whose
   * leader stepped down early could leave the remaining voters unable to elect anyone: they may still
   * need this node's vote, which it only gives to logs as complete as its own (hashicorp/raft campaigns
   * in the same case). Votes are counted by the newest membership, where this node's own does not count.
   */
  private mayCampaign(): boolean {
    if (this.isVoter(this.id)) return true;
    return this.log.commitIndex() < this.membershipIndex && isVoterIn(this.previousMembership, this.id);
  }

  /**
   * A leader that is not a voter of the membership in force (it removed itself) manages the cluster
   * until that membership is committed (thesis §4.2.2) and applied here, then hands over to its most
   * caught-up voter and steps down.
   */
  private maybeLeaveLeadership(): void {
    // Applied, not just committed: the driver answers the change's proposer when it applies it, before
    // this node steps down and fails whatever is still pending.
    if (this.role !== Role.Leader || this.isVoter(this.id) || this.log.appliedIndex() < this.membershipIndex) return;
    const successor = this.mostCaughtUpVoter();
    if (successor !== NO_NODE) this.sendTimeoutNow(successor);
    this.trace("steps down: no longer a voting member");
    this.becomeFollower(this.term, NO_NODE);
  }

  /** A learner that has caught up with the leader becomes a voter (a second change, proposed here). */
  private maybePromote(peer: NodeId, progress: Progress): void {
    if (this.isVoter(peer) || progress.state !== ReplicationState.Replicate) return;
    if (this.log.lastIndex() - progress.matchIndex > this.config.maxEntriesPerAppend) return;
    if (this.transferTarget !== NO_NODE || !this.canChangeMembership()) return;
    this.proposeMembershipChange({ kind: "promote", id: peer });
  }

  private mostCaughtUpVoter(): NodeId {
    let best: NodeId = NO_NODE;
    let bestMatch = -1;
    for (const [peer, progress] of this.progress) {
      if (this.isVoter(peer) && progress.matchIndex > bestMatch) {
        best = peer;
        bestMatch = progress.matchIndex;
      }
    }
    return best;
  }

  private newProgress(): Progress {
    return new Progress(this.log.lastIndex(), this.config.maxInflightAppends);
  }

  /** Every member but this node, voters and learners: the nodes a leader replicates to. */
  private otherMembers(): NodeId[] {
    return this.membership.members.map((member) => member.id).filter((id) => id !== this.id);
  }

  private otherVoters(): NodeId[] {
    return votersOf(this.membership).filter((id) => id !== this.id);
  }

  // ---- introspection ------------------------------------------------------------------------

  status(): RaftStatus {
    const matchIndex = new Map<NodeId, number>();
    if (this.role === Role.Leader) {
      matchIndex.set(this.id, this.log.stableIndex());
      for (const [peer, progress] of this.progress) matchIndex.set(peer, progress.matchIndex);
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commitIndex: this.log.commitIndex(),
      appliedIndex: this.log.appliedIndex(),
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      membership: this.membership,
      matchIndex,
      transferTarget: this.transferTarget,
    };
  }

  /** Whether a snapshot accepted from the leader is still to be installed or persisted by the driver. */
  installingSnapshot(): boolean {
    return this.pendingSnapshot !== null || this.snapshotUnpersisted;
  }

  /** The term at `index`, known from the log start on; undefined elsewhere. */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  entry(index: number): Entry | undefined {
    return this.log.entry(index);
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  private isVoter(id: NodeId): boolean {
    return isVoterIn(this.membership, id);
  }

  private trace(line: string): void {
    this.config.trace?.(line);
  }
}

/** Messages only a leader sends, which make the receiver follow it. */
function isLeaderTraffic(message: Message): boolean {
  return message.type === MessageType.Append || message.type === MessageType.Heartbeat || message.type === MessageType.Snapshot;
}
