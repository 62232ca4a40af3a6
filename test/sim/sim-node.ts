/**
 * One simulated node: a RaftCore, its MemoryRaftStorage ("disk") and the state machine it applies to. Its
 * driver follows the Ready contract exactly: persist hard state and entries in one atomic step, then send
 * the messages, then apply the committed entries in order, then advance. Like the real node's LevelDB
 * state machine, the state machine is persisted with its applied index after every apply, so a restart
 * replays only the log after it, and the log before it may be compacted away; a follower that needs
 * compacted entries receives the leader's state machine with a Snapshot message. A crash drops the core
 * and all it had not persisted. Writes may take simulated time (like the real node's awaited LevelDB
 * save): the core keeps taking inputs meanwhile, and the next Ready waits for advance().
 */
import { RaftCore, type MembershipChangeResult, type ProposeResult, type ReadIndexResult, type TransferResult } from "../../src/raft/core.js";
import type { RaftConfig } from "../../src/raft/config.js";
import { bootstrapEntry, decodeMembership, type MembershipChange } from "../../src/raft/membership.js";
import {
  EMPTY_MEMBERSHIP,
  EntryType,
  MessageType,
  type Membership,
  type Message,
  type NodeId,
  type RaftStatus,
  type Ready,
  type SnapshotMessage,
} from "../../src/raft/types.js";
import { MemoryRaftStorage } from "../../src/storage/memory-raft-storage.js";
import type { SafetyChecker } from "./checker.js";
import type { ProposalLedger } from "./ledger.js";
import { describeEntry, entryPayload } from "./payload.js";

/**
 * Readies one drain may handle. A restarted node re-applies its whole log in maxEntriesPerApply batches,
 * so this is generous; a core still producing work after this many is livelocked.
 */
export const MAX_READIES_PER_DRAIN = 10_000;

/** What a node needs from the cluster around it. */
export interface SimNodeEnv {
  readonly checker: SafetyChecker;
  readonly ledger: ProposalLedger;
  /** Adds a trace line at the current tick. */
  trace(line: string | (() => string)): void;
  /** Hands a message to the network. */
  send(message: Message): void;
  /** Asked once per Ready that has messages: crash at the fault point of the driver now? */
  crashInsideReady(id: NodeId): boolean;
  /** How long the write of the next Ready takes; 0 writes it synchronously. */
  persistDelayTicks(id: NodeId): number;
  /** Simulated time. */
  now(): number;
}

/** Driver variants; the default is the correct driver. */
export interface SimNodeOptions {
  /**
   * TEST ONLY, deliberately broken: send a Ready's messages before persisting it, with the crash fault
   * point between the two. A vote or an acknowledgement can then outlive the state it promised, which
   * the checker must catch.
   */
  readonly unsafeSendBeforePersist: boolean;
}

/** Counters for the run summary. */
export interface SimNodeStats {
  readies: number;
  applied: number;
  crashes: number;
  midReadyCrashes: number;
  compactions: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
}

/** The simulated state machine as persisted: every payload applied, in index order, and the membership. */
interface StateMachineDisk {
  readonly payloads: readonly string[];
  readonly membership: Membership;
}

/** A Snapshot message as the simulated network carries it: the sender's state machine rides along. */
export interface SimSnapshotMessage extends SnapshotMessage {
  readonly state: StateMachineDisk;
}

export class SimNode {
  readonly id: NodeId;
  /** The node's disk: it survives crashes. */
  readonly storage = new MemoryRaftStorage();
  readonly stats: SimNodeStats = { readies: 0, applied: 0, crashes: 0, midReadyCrashes: 0, compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0 };
  /** The state machine's disk: it survives crashes, and is written after every applied batch. */
  private stateDisk: StateMachineDisk = { payloads: [], membership: EMPTY_MEMBERSHIP };
  /** States received with Snapshot messages, by index, until the core installs one (a newer one may come meanwhile). */
  private readonly stagedStates = new Map<number, StateMachineDisk>();
  /** The membership of the state machine in this life (follows applied Membership entries). */
  private membership: Membership = EMPTY_MEMBERSHIP;
  private core: RaftCore | null;
  /** A Ready whose write is still under way (only with a persist delay); lost if the node crashes. */
  private writing: { readonly ready: Ready; readonly doneTick: number } | null = null;
  /** The state machine: the payload of every entry applied in this life, in index order (`noop` for no-ops). */
  private appliedLog: string[] = [];
  /** Counts the node's lives, so answers to a crashed life are not mistaken for answers to this one. */
  private life = 1;

  /** `founders` bootstraps a new cluster (the same on every founder); null starts an empty node that joins later. */
  constructor(
    private readonly config: RaftConfig,
    private readonly env: SimNodeEnv,
    private readonly options: SimNodeOptions,
    founders: Membership | null,
  ) {
    this.id = config.id;
    if (founders) this.storage.saveSync({ hardState: { term: 0, vote: "", commit: 1 }, entries: [bootstrapEntry(founders)] });
    this.core = new RaftCore(config, this.persistedState());
    if (founders) env.checker.onPersist(this.id, { hardState: { term: 0, vote: "", commit: 1 }, entries: [bootstrapEntry(founders)] });
  }

  /** What a new life starts from: the Raft storage and the state machine's disk. */
  private persistedState() {
    return { ...this.storage.loadSync(), applied: this.stateDisk.payloads.length, membership: this.stateDisk.membership };
  }

  get alive(): boolean {
    return this.core !== null;
  }

  get incarnation(): number {
    return this.life;
  }

  /** The live core; throws when the node is down (a scenario bug). */
  raft(): RaftCore {
    if (!this.core) throw new Error(`node ${this.id} is down`);
    return this.core;
  }

  /** What this life of the node applied: applied()[i - 1] is the payload at index i. */
  applied(): readonly string[] {
    return this.appliedLog;
  }

  /** The node's status, or null while it is down. */
  status(): RaftStatus | null {
    return this.core?.status() ?? null;
  }

  tick(): void {
    this.raft().tick();
    this.drain();
  }

  /** Delivers a message; a down node loses it. */
  deliver(message: Message): void {
    if (!this.core) return;
    // The real driver stages the whole state before handing the message to the core.
    if (message.type === MessageType.Snapshot) this.stagedStates.set(message.snapshot.index, (message as SimSnapshotMessage).state);
    this.core.step(message);
    this.drain();
  }

  propose(payloads: readonly Uint8Array[]): ProposeResult {
    const result = this.raft().propose(payloads);
    if (result.ok) this.env.ledger.onAccepted(this.id, this.life, result.term, result.firstIndex, payloads);
    this.drain();
    return result;
  }

  campaign(): void {
    this.raft().campaign();
    this.drain();
  }

  proposeMembershipChange(change: MembershipChange): MembershipChangeResult {
    const result = this.raft().proposeMembershipChange(change);
    this.drain();
    return result;
  }

  /**
   * Takes a snapshot the way the real node does: the state machine on disk already covers the applied
   * index, so the log through `applied - keepEntries` is deleted (storage first, then the core).
   */
  compact(keepEntries: number): void {
    const core = this.raft();
    const status = core.status();
    const through = Math.min(status.appliedIndex, this.stateDisk.payloads.length) - keepEntries;
    if (through < status.firstIndex) return;
    const position = { index: through, term: core.termAt(through)! };
    this.storage.compactSync(position);
    core.compact(through);
    this.env.checker.onCompact(this.id, position);
    this.stats.compactions++;
    this.env.trace(`${this.id} compacts its log through ${through}`);
    this.drain();
  }

  transferLeadership(target: NodeId): TransferResult {
    const result = this.raft().transferLeadership(target);
    this.drain();
    return result;
  }

  /** Tells the core its driver saw the connection to `peer` (its leader) break. */
  peerUnreachable(peer: NodeId): void {
    this.raft().peerUnreachable(peer);
    this.drain();
  }

  readIndex(): ReadIndexResult {
    const result = this.raft().readIndex();
    if (result.ok) this.env.checker.onReadIssued(this.readKey(result.requestId));
    this.drain();
    return result;
  }

  /** Loses everything not persisted: the core, its unsent messages, the applied state machine. */
  crash(reason: string): void {
    if (!this.core) return;
    this.core = null;
    this.writing = null;
    this.stagedStates.clear();
    this.appliedLog = [];
    this.stats.crashes++;
    this.env.checker.onCrash(this.id);
    this.env.trace(`${this.id} crashed (${reason})`);
  }

  /** Starts a new life from exactly what the storage holds. */
  restart(): void {
    if (this.core) throw new Error(`node ${this.id} is already running`);
    const persisted = this.persistedState();
    this.life++;
    this.core = new RaftCore(this.config, persisted);
    this.appliedLog = [...this.stateDisk.payloads];
    this.membership = this.stateDisk.membership;
    const hs = persisted.hardState;
    this.env.trace(`${this.id} restarted: term=${hs.term} vote=${hs.vote || "-"} commit=${hs.commit} applied=${persisted.applied} log=${persisted.logStart.index + 1}..${persisted.logStart.index + persisted.entries.length}`);
    this.env.checker.onRestart(this.id, persisted, this.core);
    this.drain();
  }

  /**
   * Handles Readies until the core has none (bounded), then reports the node's state to the checker.
   * With a persist delay a Ready that writes takes that many ticks: the node keeps taking inputs
   * meanwhile, and the next Ready waits until this one has been persisted, sent, applied and advanced.
   */
  drain(): void {
    for (let round = 0; this.core; round++) {
      if (round >= MAX_READIES_PER_DRAIN) throw new Error(`${this.id} still has a Ready after ${MAX_READIES_PER_DRAIN} in a row: livelock`);
      const core = this.core;
      if (this.writing) {
        if (this.env.now() < this.writing.doneTick) {
          // Like the real driver: heartbeats and their answers do not wait for the disk.
          this.sendAll(core.takeEagerMessages());
          break;
        }
        const ready = this.writing.ready;
        this.writing = null;
        this.env.trace(`${this.id} write done: sending, applying, advancing`);
        this.finishReady(core, ready);
        continue;
      }
      if (!core.hasReady()) break;
      const ready = this.startReady(core);
      if (!this.core) break; // crashed at the fault point
      const writes = ready.snapshot !== null || ready.hardState !== null || ready.entries.length > 0;
      const delayTicks = writes ? this.env.persistDelayTicks(this.id) : 0;
      if (delayTicks > 0) {
        this.writing = { ready, doneTick: this.env.now() + delayTicks };
        this.env.trace(`${this.id} write takes ${delayTicks} ticks`);
      } else {
        this.finishReady(core, ready);
      }
    }
    if (this.core) {
      this.env.checker.onStatus(this.id, this.core);
      if (!this.writing) this.env.checker.onQuiescent(this.id, this.core);
    }
  }

  /** Takes the next Ready; the broken driver sends its messages right away. */
  private startReady(core: RaftCore): Ready {
    const ready = core.ready();
    this.stats.readies++;
    this.env.checker.onReady(this.id, ready, core);
    // Messages get their own trace lines; a Ready that only sends is not worth a line.
    if (ready.hardState || ready.entries.length > 0 || ready.committedEntries.length > 0 || ready.readStates.length > 0) {
      this.env.trace(() => describeReady(this.id, ready));
    }
    if (this.options.unsafeSendBeforePersist) {
      this.send(ready);
      this.crashesHere(ready, "after sending, before persisting");
    } else {
      this.sendAll(ready.eagerMessages);
    }
    return ready;
  }

  /** A leader's Snapshot carries its state machine as of the snapshot (which is what it has applied). */
  private withState(message: Message): Message {
    if (message.type !== MessageType.Snapshot) return message;
    if (this.appliedLog.length !== message.snapshot.index) {
      throw new Error(`${this.id} sends a snapshot at ${message.snapshot.index} but its state machine is at ${this.appliedLog.length}`);
    }
    this.stats.snapshotsSent++;
    const state: StateMachineDisk = { payloads: [...this.appliedLog], membership: this.membership };
    return { ...message, state } as SimSnapshotMessage;
  }

  /** The rest of the Ready contract once the write is done: (persist,) send, apply, advance. */
  private finishReady(core: RaftCore, ready: Ready): void {
    this.persist(ready);
    if (!this.options.unsafeSendBeforePersist) {
      if (this.crashesHere(ready, "after persisting, before sending")) return;
      this.send(ready);
    }
    for (const entry of ready.committedEntries) {
      // Handed out before a snapshot replaced them: the snapshot holds them already.
      if (entry.index <= this.appliedLog.length) continue;
      this.env.checker.onApply(this.id, entry);
      this.env.ledger.onApplied(this.id, this.life, entry);
      this.appliedLog.push(entryPayload(entry));
      if (entry.type === EntryType.Membership) this.membership = decodeMembership(entry.data);
      this.stats.applied++;
    }
    this.stateDisk = { payloads: [...this.appliedLog], membership: this.membership };
    for (const state of ready.readStates) this.env.checker.onReadState(this.readKey(state.requestId), state);
    core.advance(ready);
    this.env.checker.onStatus(this.id, core);
  }

  /** Installs the staged state for the snapshot the core accepted (in the same step as the log reset). */
  private installSnapshot(ready: Ready): void {
    const snapshot = ready.snapshot!;
    const staged = this.stagedStates.get(snapshot.index);
    if (!staged || staged.payloads.length !== snapshot.index) {
      throw new Error(`${this.id} must install a snapshot at ${snapshot.index} but has ${staged ? `a state at ${staged.payloads.length}` : "nothing"} staged`);
    }
    for (const index of [...this.stagedStates.keys()]) if (index <= snapshot.index) this.stagedStates.delete(index);
    this.appliedLog = [...staged.payloads];
    this.membership = staged.membership;
    this.stateDisk = staged;
    this.stats.snapshotsInstalled++;
    this.env.checker.onSnapshotInstalled(this.id, snapshot, staged.payloads);
  }

  /** The storage write: one atomic step, checked first so a violation names the property. */
  private persist(ready: Ready): void {
    if (ready.snapshot === null && ready.hardState === null && ready.entries.length === 0) return;
    const step = { snapshot: ready.snapshot, hardState: ready.hardState, entries: ready.entries };
    this.env.checker.onPersist(this.id, step);
    this.storage.saveSync(step);
    if (ready.snapshot) this.installSnapshot(ready);
  }

  /** Sends the Ready's messages; the eager ones too, for the broken driver that sends everything first. */
  private send(ready: Ready): void {
    if (this.options.unsafeSendBeforePersist) this.sendAll(ready.eagerMessages);
    this.sendAll(ready.messages);
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      this.env.checker.onSend(message);
      this.env.send(this.withState(message));
      if (message.type === MessageType.Snapshot) {
        // Like a real transport that finished streaming: the leader probes the follower again.
        this.core?.snapshotStatus(message.to, true);
      }
    }
  }

  private crashesHere(ready: Ready, where: string): boolean {
    if (ready.messages.length === 0 || !this.env.crashInsideReady(this.id)) return false;
    this.stats.midReadyCrashes++;
    this.crash(where);
    return true;
  }

  private readKey(requestId: number): string {
    return `${this.id}#${this.life}:${requestId}`;
  }
}

/** `n1 ready: hs=3/n1/5 persist=6..8 send=4 apply=5..6 reads=1` (only the parts present). */
function describeReady(id: NodeId, ready: Ready): string {
  const parts = [`${id} ready:`];
  if (ready.hardState) parts.push(`hs=${ready.hardState.term}/${ready.hardState.vote || "-"}/${ready.hardState.commit}`);
  const range = (entries: Ready["entries"]): string => {
    const first = entries[0]!;
    return entries.length === 1 ? describeEntry(first) : `${describeEntry(first)}..${describeEntry(entries[entries.length - 1]!)}`;
  };
  if (ready.entries.length > 0) parts.push(`persist=${range(ready.entries)}`);
  if (ready.eagerMessages.length > 0) parts.push(`send-early=${ready.eagerMessages.length}`);
  if (ready.messages.length > 0) parts.push(`send=${ready.messages.length}`);
  if (ready.committedEntries.length > 0) parts.push(`apply=${range(ready.committedEntries)}`);
  if (ready.readStates.length > 0) parts.push(`reads=${ready.readStates.map((r) => `#${r.requestId}@${r.index}`).join(",")}`);
  return parts.join(" ");
}
