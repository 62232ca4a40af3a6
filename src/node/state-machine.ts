/**
 * The seam between the Raft node driver and the replicated application (the queue state machine on
 * LevelDB). The application's state is durable on its own: every batch of applied entries is written
 * together with the applied index and the membership in force, so the persisted state *is* a snapshot
 * at `appliedIndex`. That lets the log before it be deleted, lets a restart replay only the log after
 * it, and lets a leader stream it to a follower that is too far behind.
 */
import type { Entry, Membership, SnapshotMeta } from "../raft/types.js";
import type { CompanionOperation, RootBatch } from "../storage/level-raft-storage.js";

export type { CompanionOperation, RootBatch } from "../storage/level-raft-storage.js";

/** Where the persisted application state stands (read once at start, before the log is replayed). */
export interface AppliedState {
  /** The last log index whose effect the persisted state holds (0 for a new node). */
  readonly appliedIndex: number;
  /** The membership in force at `appliedIndex`, or null before the first membership entry was applied. */
  readonly membership: Membership | null;
}

/** A consistent, read-only view of the persisted state, taken at one instant, read in chunks. */
export interface StateSnapshotReader {
  /** What the view holds: the state after `appliedIndex`, with that index's membership. */
  readonly appliedIndex: number;
  readonly membership: Membership | null;
  /** The next chunk (an opaque byte string of bounded size), or null once the whole state was read. */
  next(): Promise<Uint8Array | null>;
  /** Releases the view; safe to call more than once and before the end. */
  close(): Promise<void>;
}

/** Stages a state received from a leader, chunk by chunk, without touching the current state. */
export interface StateSnapshotWriter {
  /** Stores one chunk produced by a StateSnapshotReader, in order. */
  write(chunk: Uint8Array): Promise<void>;
  /** Drops everything staged (a failed or superseded transfer). */
  abort(): Promise<void>;
}

/**
 * The replicated application as the node driver sees it. Calls never overlap: the driver awaits each
 * promise before the next call, except that snapshot readers live on in the background.
 */
export interface ReplicatedStateMachine<Result> {
  /** Applies one committed Normal entry, deterministically; must not throw. Its writes stay buffered. */
  apply(entry: Entry): Result;
  /**
   * Adds everything applied since the last call, with `appliedIndex` and `membership`, to `batch`: the
   * node writes it together with its Raft step, one LevelDB batch per Ready.
   */
  stageWrites(batch: RootBatch, appliedIndex: number, membership: Membership): void;
  /** The batch that held the last staged writes is on disk: what it holds is no longer pending. */
  writesDone(): void;
  /** A view of the state as last persisted; created synchronously so it matches the core's applied index. */
  openSnapshot(): StateSnapshotReader;
  /** Starts staging a received state; a second call aborts the first staging. */
  startRestore(): StateSnapshotWriter;
  /**
   * The operations that make the fully staged state current, at `meta.index` with `meta.membership`; the
   * driver writes them in the same batch as the Raft log reset. Throws if nothing complete is staged.
   */
  installOperations(meta: SnapshotMeta): readonly CompanionOperation[];
  /** After the install batch is written: rebuild everything held in memory from the new current state. */
  reload(): Promise<void>;
}
