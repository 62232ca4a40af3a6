/**
 * The safety checker: watches every Ready, persist step, sent message, apply and status of every node and
 * throws SafetyViolation the moment a Raft safety property breaks. Checks are incremental (O(changed
 * entries) per event), so it can run after every step of a long randomized run.
 *
 * How Log Matching is checked without comparing whole logs: each (index, term) ever seen is recorded once
 * with its payload and the term of the entry before it. Every node's new entries (in memory at Ready time,
 * on "disk" at persist time) must agree with that record. By induction on the index, two logs that hold the
 * same (index, term) then hold the same entries up to it. Proposal payloads are unique per run, so a
 * payload also names its entry; a no-op is named by its (index, term).
 */
import type { LogPosition } from "../../src/raft/log.js";
import {
  MessageType,
  NO_NODE,
  Role,
  type Entry,
  type Message,
  type NodeId,
  type PersistedState,
  type RaftStatus,
  type ReadState,
  type Ready,
  type SnapshotMeta,
} from "../../src/raft/types.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";
import { describeEntry, entryPayload, isProposal } from "./payload.js";

/** A broken Raft safety property: the name of the property and what was seen. */
export class SafetyViolation extends Error {
  readonly code = "SAFETY_VIOLATION";

  constructor(
    readonly property: string,
    readonly details: string,
  ) {
    super(`${property} violated: ${details}`);
    this.name = "SafetyViolation";
  }
}

/** True when `error` is a SafetyViolation (also across module copies). */
export function isSafetyViolation(error: unknown): error is SafetyViolation {
  return error instanceof Error && (error as Partial<SafetyViolation>).code === "SAFETY_VIOLATION";
}

/** The read-only face of a consensus core the checker inspects; RaftCore fits it. */
export interface CoreView {
  status(): RaftStatus;
  entry(index: number): Entry | undefined;
  /** The term at `index`, known from the log start (the last compacted index) on. */
  termAt(index: number): number | undefined;
  lastIndex(): number;
  hasReady(): boolean;
}

/** Which checks run; all by default. */
export interface CheckerOptions {
  /**
   * Check at each send that the message promises only what its sender has persisted. Turned off only to
   * show that the end-to-end properties also catch a driver that breaks persist-before-send.
   */
  readonly checkDurablePromises: boolean;
}

/** An entry as the checker remembers it. */
interface EntryId {
  readonly term: number;
  readonly payload: string;
}

/** What is recorded per (index, term) for Log Matching. */
interface LogRecord {
  readonly payload: string;
  readonly prevTerm: number;
}

/** What the checker knows about one node. */
interface NodeView {
  alive: boolean;
  /**
   * The node's persisted log as written through persist steps: disk[i - 1] is index i. Compaction keeps
   * it whole (the compacted entries are committed and live on in the state machine), and an installed
   * snapshot puts the committed prefix there, so Log Matching checks see the logical log.
   */
  disk: EntryId[];
  persistedTerm: number;
  persistedVote: NodeId;
  persistedCommit: number;
  /** Last observed in-memory state, reset on restart. */
  term: number;
  vote: NodeId;
  commitIndex: number;
  /** The term in which the node was last seen as leader (0: not since its last start). */
  leaderTerm: number;
  /** Readies with entries handed out since it became leader of leaderTerm. */
  readiesAsLeader: number;
  /** Entries applied by the node's state machine since its last start (indexes 1..appliedIndex). */
  appliedIndex: number;
}

/** Follows every node of one run and throws SafetyViolation as soon as a property breaks. */
export class SafetyChecker {
  private readonly views = new Map<NodeId, NodeView>();
  /** Election Safety: the one leader of each term, ever. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /**
   * The log of each term's leader while it led, as the term of each entry (index i at [i - 1]). A leader
   * only appends, so this is fixed per index; it is what a follower's acknowledgement in that term claims
   * to hold.
   */
  private readonly leaderLogTerms = new Map<number, number[]>();
  /** Log Matching: byIndex[i] maps a term to the entry recorded at (i, term). */
  private readonly byIndex: Map<number, LogRecord>[] = [];
  /** Proposal payloads are unique: where each one lives (`index/term`). */
  private readonly payloadHome = new Map<string, string>();
  /** The committed prefix, committed[i - 1] for index i: the highest commit any node reported. */
  private readonly committed: EntryId[] = [];
  /** For Leader Completeness: (term of the reporting node, highest index it made known committed), in order. */
  private readonly commitFrontier: { readonly term: number; readonly index: number }[] = [];
  /** State Machine Safety: the entry applied at each index by whichever node applied it first. */
  private readonly applied: EntryId[] = [];
  /** ReadIndex requests in flight: key → the committed index when the read began. */
  private readonly readFloors = new Map<string, number>();
  /** ReadIndex requests answered (and checked). */
  readsServed = 0;

  constructor(
    voters: readonly NodeId[],
    private readonly options: CheckerOptions = { checkDurablePromises: true },
  ) {
    for (const id of voters) {
      this.views.set(id, {
        alive: true,
        disk: [],
        persistedTerm: 0,
        persistedVote: NO_NODE,
        persistedCommit: 0,
        term: 0,
        vote: NO_NODE,
        commitIndex: 0,
        leaderTerm: 0,
        readiesAsLeader: 0,
        appliedIndex: 0,
      });
    }
  }

  /** The highest index known committed so far. */
  committedIndex(): number {
    return this.committed.length;
  }

  /** Every term that had a leader, with it. */
  leaders(): ReadonlyMap<number, NodeId> {
    return this.leaderOfTerm;
  }

  // ---- events -------------------------------------------------------------------------------

  /** A node handed out `ready` (before the driver acts on it): checks its new in-memory entries. */
  onReady(id: NodeId, ready: Ready, core: CoreView): void {
    this.onStatus(id, core);
    const view = this.view(id);
    const first = ready.entries[0];
    if (first === undefined) return;
    // The first Ready of a leadership may still carry what the node wrote as a follower (a truncation,
    // when its disk was busy through the election); every later one only appends.
    const leading = view.leaderTerm !== 0 && view.leaderTerm === view.term;
    if (leading && view.readiesAsLeader++ > 0 && first.index !== view.disk.length + 1) {
      this.fail("Leader Append-Only", `${id}, leader of term ${view.term}, rewrites its log from index ${first.index} (persisted last index ${view.disk.length})`);
    }
    for (const entry of ready.entries) {
      // A leader's own entries may reach a Ready only after it stepped down (written while it waited for
      // its disk), so they are recognised by their term, not by the node's current role.
      if (this.leaderOfTerm.get(entry.term) !== id) continue;
      const leaderLog = this.leaderLogTerms.get(entry.term);
      if (leaderLog && entry.index === leaderLog.length + 1) leaderLog.push(entry.term);
    }
    let prevTerm = first.index === 1 ? 0 : core.termAt(first.index - 1);
    if (prevTerm === undefined) this.fail("Log Matching", `${id} hands out entry ${first.index} but holds no entry ${first.index - 1}`);
    for (const entry of ready.entries) {
      this.matchLog(id, "in-memory log", entry, prevTerm);
      prevTerm = entry.term;
    }
  }

  /** A node is about to persist `step` (before the storage sees it). */
  onPersist(id: NodeId, step: PersistStep): void {
    const view = this.view(id);
    const hs = step.hardState;
    if (hs) {
      if (hs.term < view.persistedTerm) this.fail("Persisted Term Monotonicity", `${id} persists term ${hs.term} after term ${view.persistedTerm}`);
      if (hs.term === view.persistedTerm && view.persistedVote !== NO_NODE && hs.vote !== view.persistedVote) {
        this.fail("Vote Stability", `${id} changes its persisted vote in term ${hs.term} from ${view.persistedVote} to ${hs.vote}`);
      }
      if (hs.commit < view.persistedCommit) this.fail("Persisted Commit Monotonicity", `${id} persists commit ${hs.commit} after ${view.persistedCommit}`);
    }
    if (step.snapshot) this.persistSnapshot(id, view, step.snapshot);
    const first = step.entries[0];
    if (first !== undefined) {
      if (first.index > view.disk.length + 1) this.fail("Log Contiguity", `${id} persists entry ${first.index} after last index ${view.disk.length}`);
      this.checkCommittedNotRemoved(id, view, step.entries);
      let prevTerm = first.index === 1 ? 0 : view.disk[first.index - 2]!.term;
      view.disk.length = first.index - 1;
      for (const entry of step.entries) {
        this.matchLog(id, "persisted log", entry, prevTerm);
        view.disk.push({ term: entry.term, payload: entryPayload(entry) });
        prevTerm = entry.term;
      }
    }
    if (hs) {
      if (hs.commit > view.disk.length) this.fail("Persisted Commit Bound", `${id} persists commit ${hs.commit} beyond its persisted last index ${view.disk.length}`);
      view.persistedTerm = hs.term;
      view.persistedVote = hs.vote;
      view.persistedCommit = hs.commit;
    }
  }

  /**
   * A snapshot replaces the node's log: it must name a committed entry, and the node's disk then holds
   * the committed prefix through it (what its state machine holds).
   */
  private persistSnapshot(id: NodeId, view: NodeView, snapshot: SnapshotMeta): void {
    const committed = this.committed[snapshot.index - 1];
    if (!committed || committed.term !== snapshot.term) {
      this.fail("Snapshot Is Committed", `${id} installs a snapshot at ${snapshot.index}/${snapshot.term} but ${committed ? `${snapshot.index}/${committed.term} is committed there` : `only ${this.committed.length} entries are committed`}`);
    }
    view.disk = this.committed.slice(0, snapshot.index);
  }

  /** The node deleted its log through `position` (its persisted state machine covers it). */
  onCompact(id: NodeId, position: LogPosition): void {
    const view = this.view(id);
    const committed = this.committed[position.index - 1];
    if (!committed || committed.term !== position.term) {
      this.fail("Compaction Of Committed Entries Only", `${id} compacts through ${position.index}/${position.term}, committed through ${this.committed.length}`);
    }
    if (position.index > view.appliedIndex) this.fail("Compaction Of Applied Entries Only", `${id} compacts through ${position.index} with ${view.appliedIndex} applied`);
  }

  /** The node's state machine was replaced by a snapshot holding `payloads`: it must be the committed prefix. */
  onSnapshotInstalled(id: NodeId, snapshot: SnapshotMeta, payloads: readonly string[]): void {
    const view = this.view(id);
    if (payloads.length !== snapshot.index) this.fail("Snapshot Content", `${id} installs a snapshot at ${snapshot.index} holding ${payloads.length} entries`);
    payloads.forEach((payload, offset) => {
      const applied = this.applied[offset];
      if (!applied || applied.payload !== payload) {
        this.fail("State Machine Safety", `${id} installs a snapshot whose entry ${offset + 1} is ${payload}, applied elsewhere as ${applied?.payload ?? "nothing"}`);
      }
    });
    view.appliedIndex = snapshot.index;
  }

  /** A node sent `message`: Append, Heartbeat, Snapshot and TimeoutNow are only ever sent by the leader of their term. */
  onSend(message: Message): void {
    const leaderOnly = [MessageType.Append, MessageType.Heartbeat, MessageType.Snapshot, MessageType.TimeoutNow];
    if (leaderOnly.includes(message.type)) {
      this.claimLeadership(message.term, message.from, `it sent ${MessageType[message.type]} to ${message.to}`);
    }
    // A leader may send entries before a Ready hands them to its disk (while a write is under way).
    if (message.type === MessageType.Append) {
      const leaderLog = this.leaderLogTerms.get(message.term);
      for (const entry of message.entries) if (leaderLog && entry.index === leaderLog.length + 1) leaderLog.push(entry.term);
    }
    if (this.options.checkDurablePromises) this.checkDurablePromise(message);
  }

  /**
   * Persist before send: a message may only promise what the sender's disk holds when it leaves.
   * - Its term (pre-vote traffic excepted: it speaks of a prospective term).
   * - A vote (granted, or a candidate's own): the disk records that vote in that term, or a later term
   *   (a node never acts in a term it has durably left, so it cannot vote twice in it).
   * - An acknowledgement in term T through index m: the disk holds, at m, the entry the leader of T has
   *   there (and so, by Log Matching, the whole prefix). An acknowledgement queued before the node
   *   moved to a newer term, where a new leader replaced those entries, would break this.
   */
  private checkDurablePromise(message: Message): void {
    const view = this.view(message.from);
    const prospective = message.type === MessageType.PreVote || message.type === MessageType.PreVoteResponse;
    if (!prospective && message.term > view.persistedTerm) {
      this.fail("Durable Promise", `${message.from} sends ${MessageType[message.type]} in term ${message.term} with only term ${view.persistedTerm} persisted`);
    }
    const vote =
      message.type === MessageType.VoteResponse && message.granted ? message.to : message.type === MessageType.Vote ? message.from : null;
    if (vote !== null && view.persistedTerm === message.term && view.persistedVote !== vote) {
      this.fail("Durable Promise", `${message.from} sends ${MessageType[message.type]} for ${vote} in term ${message.term} with vote ${view.persistedVote || "-"} persisted in that term`);
    }
    if (message.type === MessageType.AppendResponse && message.success && message.matchIndex > 0) {
      const leaderLog = this.leaderLogTerms.get(message.term);
      const index = message.matchIndex;
      const held = view.disk[index - 1];
      if (leaderLog && (held === undefined || held.term !== leaderLog[index - 1])) {
        this.fail(
          "Durable Promise",
          `${message.from} acknowledges entries through ${index} to the leader of term ${message.term} (which has term ${leaderLog[index - 1]} there) ` +
            `but its disk holds ${held ? `${index}/${held.term}:${held.payload}` : `only ${view.disk.length} entries`} (persisted term ${view.persistedTerm})`,
        );
      }
    }
  }

  /** A node's state machine applied `entry`. */
  onApply(id: NodeId, entry: Entry): void {
    const view = this.view(id);
    if (entry.index !== view.appliedIndex + 1) {
      this.fail("In-Order Apply", `${id} applies ${describeEntry(entry)} after index ${view.appliedIndex}`);
    }
    if (entry.index > view.commitIndex) {
      this.fail("Apply Only Committed", `${id} applies ${describeEntry(entry)} with commit index ${view.commitIndex}`);
    }
    const seen: EntryId = { term: entry.term, payload: entryPayload(entry) };
    const earlier = this.applied[entry.index - 1];
    if (earlier === undefined) {
      this.applied.push(seen);
    } else if (earlier.term !== seen.term || earlier.payload !== seen.payload) {
      this.fail("State Machine Safety", `${id} applies ${describeEntry(entry)} but index ${entry.index} was applied elsewhere as ${earlier.term}:${earlier.payload}`);
    }
    const committed = this.committed[entry.index - 1];
    if (committed && (committed.term !== seen.term || committed.payload !== seen.payload)) {
      this.fail("State Machine Safety", `${id} applies ${describeEntry(entry)} but ${entry.index}/${committed.term}:${committed.payload} is committed`);
    }
    view.appliedIndex = entry.index;
  }

  /** Observes a node's role, term, vote and commit index; call after every input and Ready. */
  onStatus(id: NodeId, core: CoreView): void {
    const view = this.view(id);
    const status = core.status();
    if (status.term < view.term) this.fail("Term Monotonicity", `${id} moves from term ${view.term} back to ${status.term}`);
    if (status.term === view.term && view.vote !== NO_NODE && status.vote !== view.vote) {
      this.fail("Vote Stability", `${id} changes its vote in term ${status.term} from ${view.vote} to ${status.vote}`);
    }
    if (status.commitIndex < view.commitIndex) this.fail("Commit Monotonicity", `${id} moves its commit index back from ${view.commitIndex} to ${status.commitIndex}`);
    if (status.commitIndex > status.lastIndex) this.fail("Commit Bound", `${id} has commit index ${status.commitIndex} beyond its last index ${status.lastIndex}`);
    if (status.appliedIndex > status.commitIndex) this.fail("Applied ≤ Committed", `${id} applied ${status.appliedIndex} with commit index ${status.commitIndex}`);
    view.term = status.term;
    view.vote = status.vote;
    if (status.role === Role.Leader) {
      if (status.leader !== id) this.fail("Leader Identity", `${id} is leader of term ${status.term} but names ${status.leader || "nobody"} as leader`);
      if (view.leaderTerm !== status.term) {
        this.claimLeadership(status.term, id, "its status says so");
        this.checkLeaderCompleteness(id, status.term, core);
        view.leaderTerm = status.term;
        view.readiesAsLeader = 0;
        const terms: number[] = [];
        // Compacted entries are committed: their terms are the committed ones.
        for (let index = 1; index <= status.lastIndex; index++) terms.push(core.termAt(index) ?? this.committed[index - 1]!.term);
        this.leaderLogTerms.set(status.term, terms);
      }
    }
    if (status.commitIndex !== view.commitIndex) {
      this.observeCommit(id, status.commitIndex, status.term, core);
      view.commitIndex = status.commitIndex;
    }
  }

  /** Nothing is pending at the node: its in-memory log must be exactly what it persisted. */
  onQuiescent(id: NodeId, core: CoreView): void {
    const view = this.view(id);
    const lastIndex = core.lastIndex();
    if (lastIndex !== view.disk.length || (lastIndex > 0 && core.termAt(lastIndex) !== view.disk[lastIndex - 1]!.term)) {
      this.fail("Persisted = In-Memory Log", `${id} has nothing to persist but its log ends at ${lastIndex}/${core.termAt(lastIndex)} while its disk ends at ${view.disk.length}/${view.disk[view.disk.length - 1]?.term}`);
    }
  }

  /** Compares a node's whole in-memory log with its persisted log (O(log): call now and then). */
  audit(id: NodeId, core: CoreView): void {
    const view = this.view(id);
    if (core.hasReady()) return;
    this.onQuiescent(id, core);
    for (let index = core.status().firstIndex; index <= view.disk.length; index++) {
      const entry = core.entry(index);
      const stored = view.disk[index - 1]!;
      if (!entry || entry.term !== stored.term || entryPayload(entry) !== stored.payload) {
        this.fail("Persisted = In-Memory Log", `${id} holds ${entry ? describeEntry(entry) : "nothing"} at index ${index} in memory but ${index}/${stored.term}:${stored.payload} on disk`);
      }
    }
  }

  /** The node crashed: everything not persisted is gone. */
  onCrash(id: NodeId): void {
    const view = this.view(id);
    view.alive = false;
    view.leaderTerm = 0;
  }

  /** The node restarted from `persisted`: it must come back exactly as it was persisted. */
  onRestart(id: NodeId, persisted: PersistedState, core: CoreView): void {
    const view = this.view(id);
    const hs = persisted.hardState;
    if (hs.term !== view.persistedTerm || hs.vote !== view.persistedVote || hs.commit !== view.persistedCommit) {
      this.fail("Restart Fidelity", `${id} loads hard state ${hs.term}/${hs.vote || "-"}/${hs.commit}, persisted ${view.persistedTerm}/${view.persistedVote || "-"}/${view.persistedCommit}`);
    }
    const start = persisted.logStart;
    const persistedLast = start.index + persisted.entries.length;
    if (persistedLast !== view.disk.length) {
      this.fail("Restart Fidelity", `${id} loads a log ending at ${persistedLast}, persisted ${view.disk.length}`);
    }
    if (start.index > 0 && view.disk[start.index - 1]?.term !== start.term) {
      this.fail("Restart Fidelity", `${id} loads log start ${start.index}/${start.term}, persisted term ${view.disk[start.index - 1]?.term} there`);
    }
    persisted.entries.forEach((entry, offset) => {
      const index = start.index + offset + 1;
      const stored = view.disk[index - 1]!;
      if (entry.index !== index || entry.term !== stored.term || entryPayload(entry) !== stored.payload) {
        this.fail("Restart Fidelity", `${id} loads ${describeEntry(entry)} where ${index}/${stored.term}:${stored.payload} was persisted`);
      }
    });
    const status = core.status();
    if (status.term !== hs.term || status.vote !== hs.vote || status.lastIndex !== persistedLast) {
      this.fail("Restart Fidelity", `${id} restarts at term ${status.term}, vote ${status.vote || "-"}, last index ${status.lastIndex} from persisted ${hs.term}/${hs.vote || "-"}/${persistedLast}`);
    }
    Object.assign(view, { alive: true, term: status.term, vote: status.vote, commitIndex: 0, leaderTerm: 0, appliedIndex: persisted.applied });
    this.onStatus(id, core);
  }

  /** A ReadIndex request `key` was accepted: its answer must cover every entry committed by now. */
  onReadIssued(key: string): void {
    this.readFloors.set(key, this.committed.length);
  }

  /** A ReadIndex request `key` was answered with `state`. */
  onReadState(key: string, state: ReadState): void {
    const floor = this.readFloors.get(key);
    if (floor === undefined) this.fail("Read Linearizability", `read ${key} answered but never issued (or answered twice)`);
    this.readFloors.delete(key);
    this.readsServed++;
    if (state.index < floor) {
      this.fail("Read Linearizability", `read ${key} is served at index ${state.index} but index ${floor} was committed before it began`);
    }
  }

  /** Entry `index` as applied anywhere, `term:payload`, or undefined. */
  appliedAt(index: number): string | undefined {
    const entry = this.applied[index - 1];
    return entry && `${entry.term}:${entry.payload}`;
  }

  // ---- properties ---------------------------------------------------------------------------

  private claimLeadership(term: number, id: NodeId, evidence: string): void {
    const leader = this.leaderOfTerm.get(term);
    if (leader === undefined) this.leaderOfTerm.set(term, id);
    else if (leader !== id) this.fail("Election Safety", `${id} acts as leader of term ${term} (${evidence}) but ${leader} was elected leader of term ${term}`);
  }

  /** Records (index, term) on first sight; afterwards every copy must carry the same payload and previous term. */
  private matchLog(id: NodeId, where: string, entry: Entry, prevTerm: number): void {
    const payload = entryPayload(entry);
    let terms = this.byIndex[entry.index - 1];
    if (!terms) {
      // Indexes are created in order: a node cannot hold index i without i - 1.
      while (this.byIndex.length < entry.index) this.byIndex.push(new Map());
      terms = this.byIndex[entry.index - 1]!;
    }
    const record = terms.get(entry.term);
    if (record === undefined) {
      if (entry.term < prevTerm) this.fail("Log Term Order", `${id}'s ${where} has ${describeEntry(entry)} after an entry of term ${prevTerm}`);
      terms.set(entry.term, { payload, prevTerm });
      if (isProposal(payload)) {
        const home = this.payloadHome.get(payload);
        const here = `${entry.index}/${entry.term}`;
        if (home !== undefined && home !== here) this.fail("Entry Uniqueness", `${id}'s ${where} has proposal ${payload} at ${here}, already at ${home}`);
        this.payloadHome.set(payload, here);
      }
    } else if (record.payload !== payload || record.prevTerm !== prevTerm) {
      this.fail(
        "Log Matching",
        `${id}'s ${where} has ${describeEntry(entry)} after an entry of term ${prevTerm}, another log has ${entry.index}/${entry.term}:${record.payload} after an entry of term ${record.prevTerm}`,
      );
    }
  }

  /** A persist step may overwrite a suffix of the disk log; a committed entry held there must survive it. */
  private checkCommittedNotRemoved(id: NodeId, view: NodeView, entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    const last = Math.min(view.disk.length, this.committed.length);
    for (let index = first; index <= last; index++) {
      const held = view.disk[index - 1]!;
      const committed = this.committed[index - 1]!;
      if (held.term !== committed.term || held.payload !== committed.payload) continue;
      const replacement = entries[index - first];
      if (!replacement || replacement.term !== committed.term) {
        this.fail("Committed Entries Are Never Removed", `${id} overwrites committed entry ${index}/${committed.term}:${committed.payload} with ${replacement ? describeEntry(replacement) : "nothing (truncated)"}`);
      }
    }
  }

  /** A node reports commit index `commitIndex` while in `term`: its log up to there is the committed prefix. */
  private observeCommit(id: NodeId, commitIndex: number, term: number, core: CoreView): void {
    if (commitIndex === 0) return;
    const known = this.committed.length;
    const checkAt = Math.min(commitIndex, known);
    if (checkAt > 0) this.expectCommitted(id, checkAt, core, "Committed Prefix Agreement");
    for (let index = known + 1; index <= commitIndex; index++) {
      const entry = core.entry(index);
      if (!entry) this.fail("Commit Bound", `${id} reports commit ${commitIndex} but holds no entry ${index}`);
      this.committed.push({ term: entry.term, payload: entryPayload(entry) });
    }
    if (commitIndex > known) this.commitFrontier.push({ term, index: commitIndex });
  }

  /** Raft §5.4: a leader of `term` holds every entry committed in earlier terms. */
  private checkLeaderCompleteness(id: NodeId, term: number, core: CoreView): void {
    let index = 0;
    for (const mark of this.commitFrontier) if (mark.term < term) index = Math.max(index, mark.index);
    if (index > 0) this.expectCommitted(id, index, core, "Leader Completeness");
  }

  /** The node's entry at `index` is the committed one (and by Log Matching so is everything before it). */
  private expectCommitted(id: NodeId, index: number, core: CoreView, property: string): void {
    const committed = this.committed[index - 1]!;
    const logStart = core.status().firstIndex - 1;
    if (index < logStart) return; // compacted: the state machine holds it, checked when it was installed or applied
    if (index === logStart) {
      if (core.termAt(index) !== committed.term) this.fail(property, `${id}'s log starts after ${index}/${core.termAt(index)}, committed is ${index}/${committed.term}`);
      return;
    }
    const entry = core.entry(index);
    if (!entry || entry.term !== committed.term || entryPayload(entry) !== committed.payload) {
      this.fail(property, `${id} holds ${entry ? describeEntry(entry) : "nothing"} at index ${index}, committed is ${index}/${committed.term}:${committed.payload}`);
    }
  }

  private view(id: NodeId): NodeView {
    const view = this.views.get(id);
    if (!view) throw new Error(`checker knows no node ${id}`);
    return view;
  }

  private fail(property: string, details: string): never {
    throw new SafetyViolation(property, details);
  }
}
