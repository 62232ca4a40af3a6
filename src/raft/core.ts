import { assert } from "./assert.js";
import { validateRaftConfig, type RaftConfig } from "./config.js";
import { RaftLog } from "./log.js";
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
  type Message,
  type NodeId,
  type PersistedState,
  type RaftStatus,
  type ReadState,
  type Ready,
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
  private readonly peers: readonly NodeId[];
  private readonly log: RaftLog;

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
    this.peers = config.voters.filter((voter) => voter !== config.id);
    this.log = new RaftLog(persisted.entries, persisted.hardState.commit);
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
    } else if (this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks) {
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
   * The driver saw its connection to the leader break (reset or refused), which a dead leader causes
   * at once, long before an election timeout. Forget the leader, so this node grants votes, and
   * campaign after a short random delay (so the followers do not split the vote). Pre-Vote keeps this
   * harmless when only this one link broke: the others still hear the leader and refuse.
   */
  leaderUnreachable(peer: NodeId): void {
    if (this.role !== Role.Follower || this.leader !== peer) return;
    this.trace(`lost its connection to leader ${peer}`);
    this.leader = NO_NODE;
    this.electionElapsedTicks = 0;
    this.randomizedElectionTimeoutTicks = 1 + Math.floor(this.config.random() * Math.ceil(this.config.electionTimeoutTicks / 2));
  }

  /** Starts an election now (pre-vote first when enabled); a no-op on a leader. */
  campaign(): void {
    if (this.role !== Role.Leader) this.startElection(false);
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

  /** Hands leadership to `target` once it has caught up. Leader only. */
  transferLeadership(target: NodeId): TransferResult {
    if (this.role !== Role.Leader) return { ok: false, reason: `node ${this.id} is not the leader` };
    if (target === this.id) return { ok: false, reason: `node ${this.id} is already the leader` };
    const progress = this.progress.get(target);
    if (!progress) return { ok: false, reason: `node ${target} is not a voting member` };
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
    if (message.to !== this.id || !this.isVoter(message.from) || message.from === this.id) return;
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
      case MessageType.AppendResponse:
        this.handleAppendResponse(message);
        return;
      case MessageType.HeartbeatResponse:
        this.handleHeartbeatResponse(message);
        return;
      case MessageType.TimeoutNow:
        if (this.role !== Role.Leader) {
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
    const leader = message.type === MessageType.Append || message.type === MessageType.Heartbeat ? message.from : NO_NODE;
    this.becomeFollower(message.term, leader);
    return true;
  }

  private stepLowerTerm(message: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (message.type === MessageType.Append || message.type === MessageType.Heartbeat)) {
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
    for (const peer of this.peers) {
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
    this.votes.set(message.from, message.granted);
    this.checkElectionOutcome();
  }

  private checkElectionOutcome(): void {
    const outcome = tallyVotes(this.votes, this.config.voters.length);
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
    this.progress = new Map(this.peers.map((peer) => [peer, new Progress(this.log.lastIndex(), this.config.maxInflightAppends)]));
    this.trace(`became leader for term ${this.term}`);
    // The no-op lets the leader learn which earlier entries are committed (Raft §5.4.2, §8).
    this.log.push({ index: this.log.lastIndex() + 1, term: this.term, type: EntryType.Noop, data: EMPTY_DATA });
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
    let active = 1;
    for (const progress of this.progress.values()) {
      if (progress.recentActive) active++;
      progress.recentActive = false;
    }
    return active * 2 > this.config.voters.length;
  }

  // ---- replication: leader side -------------------------------------------------------------

  private sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    const progress = this.progress.get(to)!;
    if (progress.isPaused()) return;
    const prevLogIndex = progress.nextIndex - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    assert(prevLogTerm !== undefined, `no term for prevLogIndex ${prevLogIndex} of ${to}`);
    const entries = this.log.slice(progress.nextIndex, this.log.lastIndex(), this.config.maxEntriesPerAppend, this.config.maxBytesPerAppend);
    if (entries.length === 0 && !sendIfEmpty && progress.state === ReplicationState.Replicate) return;
    this.send({ type: MessageType.Append, to, prevLogIndex, prevLogTerm, entries, commit: this.log.commitIndex() });
    progress.sent(entries.length > 0 ? entries[entries.length - 1]!.index : prevLogIndex);
  }

  /** Sends everything not yet sent to every follower that is not paused. */
  private broadcastAppend(): void {
    for (const peer of this.peers) {
      const progress = this.progress.get(peer)!;
      while (!progress.isPaused() && progress.nextIndex <= this.log.lastIndex()) {
        const before = progress.nextIndex;
        this.sendAppend(peer, false);
        if (progress.state === ReplicationState.Probe || progress.nextIndex === before) break;
      }
    }
  }

  private broadcastHeartbeat(): void {
    for (const peer of this.peers) {
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
    if (this.role !== Role.Leader) return;
    const progress = this.progress.get(message.from)!;
    progress.recentActive = true;
    if (!message.success) {
      this.handleAppendRejection(progress, message);
      return;
    }
    const wasProbe = progress.state === ReplicationState.Probe;
    const advanced = progress.acknowledge(message.matchIndex);
    if (wasProbe && message.matchIndex >= progress.matchIndex) progress.becomeReplicate();
    if (advanced) this.maybeCommit();
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
    if (this.role !== Role.Leader) return;
    const progress = this.progress.get(message.from)!;
    progress.recentActive = true;
    progress.heartbeatAnswered();
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
    const matches = [this.log.stableIndex(), ...[...this.progress.values()].map((progress) => progress.matchIndex)];
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

  private handleHeartbeat(message: Heartbeat): void {
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()));
    this.send({ type: MessageType.HeartbeatResponse, to: message.from, readRound: message.readRound });
  }

  // ---- linearizable reads -------------------------------------------------------------------

  /** Reads at the current commit index once the next heartbeat round (sent at ready()) is confirmed. */
  private scheduleReadRound(read: PendingRead): void {
    read.index = this.log.commitIndex();
    if (this.peers.length === 0) {
      read.round = this.readRound;
      this.confirmReads();
    } else {
      read.round = this.readRound + 1;
      this.readRoundPending = true;
    }
  }

  /** Releases reads whose round a majority (this leader included) has confirmed. */
  private confirmReads(): void {
    const rounds = [this.readRound];
    for (const progress of this.progress.values()) rounds.push(progress.readRound);
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
    const leaderTraffic =
      message.type === MessageType.Append || message.type === MessageType.Heartbeat || message.type === MessageType.TimeoutNow;
    if (leaderTraffic && this.role === Role.Leader) this.eagerMessages.push(message);
    else this.messages.push(message);
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
      this.readRoundPending ||
      this.readStates.length > 0 ||
      this.termOrVoteChanged() ||
      this.hasUnstableEntries() ||
      this.log.nextToApply(1).length > 0
    );
  }

  /** The next batch of work. The driver must handle it as the Ready contract says, then call advance(). */
  ready(): Ready {
    if (this.role === Role.Leader) {
      if (this.appendPending) this.broadcastAppend();
      if (this.readRoundPending) {
        this.readRound++;
        this.readRoundPending = false;
        this.broadcastHeartbeat();
      }
    }
    this.appendPending = false;
    const writesHardState = this.termOrVoteChanged() || this.hasUnstableEntries();
    const ready: Ready = {
      hardState: writesHardState ? { term: this.term, vote: this.vote, commit: this.log.commitIndex() } : null,
      entries: this.log.unstableEntries(),
      eagerMessages: this.eagerMessages,
      messages: this.messages,
      committedEntries: this.log.nextToApply(this.config.maxEntriesPerApply),
      readStates: this.readStates,
    };
    this.messages = [];
    this.eagerMessages = [];
    this.readStates = [];
    return ready;
  }

  /** Acknowledges that `ready` was persisted, sent and applied. */
  advance(ready: Ready): void {
    if (ready.hardState) this.persistedHardState = ready.hardState;
    const lastPersisted: Entry | undefined = ready.entries[ready.entries.length - 1];
    if (lastPersisted) {
      this.log.stableTo(lastPersisted.index, lastPersisted.term);
      // The leader's own copy counts toward a majority only once it is durable.
      if (this.role === Role.Leader) this.maybeCommit();
    }
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied) this.log.appliedTo(lastApplied.index);
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
      matchIndex,
    };
  }

  entry(index: number): Entry | undefined {
    return this.log.entry(index);
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  private isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id);
  }

  private trace(line: string): void {
    this.config.trace?.(line);
  }
}
