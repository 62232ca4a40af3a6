/**
 * The vocabulary of the consensus core: log entries, persistent state and the messages peers exchange.
 * Everything here is plain data so the simulator, LevelDB storage and the gRPC transport share one shape.
 */

/** A node's stable identity within the cluster, e.g. "n1". */
export type NodeId = string;

/** The sentinel for "no node" (no vote cast, no known leader). */
export const NO_NODE: NodeId = "";

/** What a log entry carries. */
export enum EntryType {
  /** Appended by every new leader so it can commit entries of earlier terms (Raft §5.4.2). */
  Noop = 0,
  /** Opaque bytes proposed by the application (the queue state machine). */
  Normal = 1,
  /** A new cluster membership (encoded by membership.ts); it takes effect when applied. */
  Membership = 2,
}

/** One member of the cluster. Learners receive the log but neither vote nor count toward a majority. */
export interface Member {
  readonly id: NodeId;
  /** host:port where peers and forwarded client calls reach it; opaque to the core. */
  readonly address: string;
  readonly voter: boolean;
}

/** The cluster's members as of some log index. */
export interface Membership {
  readonly members: readonly Member[];
}

export const EMPTY_MEMBERSHIP: Membership = { members: [] };

/**
 * Describes a state machine snapshot: the state after applying every entry through `index`, whose term
 * is `term`, and the membership in force there. The state itself never passes through the core.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

/** One slot of the replicated log. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The state that must survive a crash before any message depending on it is sent (Raft Figure 2). */
export interface HardState {
  readonly term: number;
  /** Who this node voted for in `term`, or NO_NODE. */
  readonly vote: NodeId;
  /** Highest index known committed. Persisted lazily: it may lag, it never runs ahead of the log. */
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NO_NODE, commit: 0 };

/** Everything a node persisted, handed back to the core when it restarts. */
export interface PersistedState {
  readonly hardState: HardState;
  /** The last compacted log position (index 0, term 0 when the log was never compacted). */
  readonly logStart: { readonly index: number; readonly term: number };
  /** The log after `logStart`, contiguous. */
  readonly entries: readonly Entry[];
  /** How far the persisted state machine is (at least logStart.index), and the membership in force there. */
  readonly applied: number;
  readonly membership: Membership;
}

/** Message kinds, named after the RPCs of the Raft paper plus Pre-Vote, heartbeats and leadership transfer. */
export enum MessageType {
  PreVote = 1,
  PreVoteResponse = 2,
  Vote = 3,
  VoteResponse = 4,
  Append = 5,
  AppendResponse = 6,
  Heartbeat = 7,
  HeartbeatResponse = 8,
  TimeoutNow = 9,
  /** InstallSnapshot: the follower needs entries the leader has compacted away. */
  Snapshot = 10,
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** RequestVote, or its Pre-Vote probe. A Pre-Vote carries the term the candidate *would* use. */
export interface VoteRequest extends MessageBase {
  readonly type: MessageType.PreVote | MessageType.Vote;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set when the election follows a leadership transfer: voters skip the leader-lease check. */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: MessageType.PreVoteResponse | MessageType.VoteResponse;
  readonly granted: boolean;
}

/** AppendEntries carrying log entries. */
export interface AppendRequest extends MessageBase {
  readonly type: MessageType.Append;
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to an Append. On success `matchIndex` is the last index now known to match the leader.
 * On rejection the conflict hint lets the leader skip a whole term per round trip (fast backtracking):
 * `conflictTerm` is the follower's term at `rejectedIndex` (0 if its log is shorter) and `conflictIndex`
 * is the first index the leader should try next from the follower's point of view.
 */
export interface AppendResponse extends MessageBase {
  readonly type: MessageType.AppendResponse;
  readonly success: boolean;
  readonly matchIndex: number;
  readonly rejectedIndex: number;
  readonly conflictTerm: number;
  readonly conflictIndex: number;
}

/** An empty AppendEntries: asserts leadership, advances commit and confirms ReadIndex rounds. */
export interface Heartbeat extends MessageBase {
  readonly type: MessageType.Heartbeat;
  readonly commit: number;
  /** The newest read round the leader wants confirmed (see ReadState). */
  readonly readRound: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: MessageType.HeartbeatResponse;
  readonly readRound: number;
}

/** Sent by a leader handing over leadership: the receiver campaigns at once. */
export interface TimeoutNow extends MessageBase {
  readonly type: MessageType.TimeoutNow;
}

/**
 * InstallSnapshot. The core only names the snapshot; the driver streams the state itself (as of
 * `snapshot.index`) beside the message and hands the message to the receiving core once it has all of it.
 */
export interface SnapshotMessage extends MessageBase {
  readonly type: MessageType.Snapshot;
  readonly snapshot: SnapshotMeta;
}

export type Message =
  | SnapshotMessage
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | TimeoutNow;

/** The node's role in its current term. */
export enum Role {
  Follower = "follower",
  PreCandidate = "pre-candidate",
  Candidate = "candidate",
  Leader = "leader",
}

/** A linearizable read that may now be served once `index` has been applied locally. */
export interface ReadState {
  /** The caller's handle from `RaftCore.readIndex`. */
  readonly requestId: number;
  readonly index: number;
}

/**
 * One batch of work for the driver, in the spirit of etcd-io/raft's Ready. The driver MUST:
 * 1. durably persist `snapshot`, `hardState` (if set) and `entries` in one atomic step (entries may overwrite a
 *    suffix of the log starting at entries[0].index); it MAY send `eagerMessages` before or during it;
 * 2. only then send `messages` (they may depend on the vote, term or entries just persisted);
 * 3. apply `committedEntries` in order, answer `readStates` once their index is applied;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  /**
   * A snapshot received from the leader that replaces the whole log: the driver installs the state it
   * staged for it and resets the stored log to start after `snapshot.index`, atomically with the rest of
   * this Ready's write (the snapshot first, then `entries`).
   */
  readonly snapshot: SnapshotMeta | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  /**
   * A leader's Appends, heartbeats and TimeoutNow, and any node's heartbeat answers: they depend on
   * nothing this Ready persists, only on the sender's term, which is durable already (the leader counts
   * its own copy of new entries only once they are durable), so a leader's disk write and its followers'
   * run in parallel (Raft thesis §10.2.1). Those queued while the driver is writing can leave at once
   * too: see RaftCore.takeEagerMessages.
   */
  readonly eagerMessages: readonly Message[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/** A read snapshot of a node's state for status pages, logs and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The first index still in the log (entries before it were compacted into the state machine). */
  readonly firstIndex: number;
  readonly membership: Membership;
  /** For a leader: each peer's highest index known replicated. */
  readonly matchIndex: ReadonlyMap<NodeId, number>;
  /** For a leader handing over: the node it hands over to; NO_NODE ("") otherwise. */
  readonly transferTarget: NodeId;
}
