/**
 * The seam between the Raft node driver and the disk: one small interface, one in-memory and one LevelDB
 * implementation, both checked by the same compliance suite. Also the step rules both implementations
 * enforce, so a driver bug is caught at the write instead of surfacing as "corruption" at the next start.
 */
import type { LogPosition } from "../raft/log.js";
import { EntryType, type Entry, type HardState, type PersistedState, type SnapshotMeta } from "../raft/types.js";
import { InvalidPersistStepError } from "./errors.js";

/** What a RaftStorage holds: the hard state and the log after its start. */
export type StoredLog = Pick<PersistedState, "hardState" | "logStart" | "entries">;

/** One persist step: written atomically and durably, or not at all. */
export interface PersistStep {
  /**
   * A snapshot received from the leader, or null: when set, the whole stored log is replaced by an empty
   * log starting after `snapshot.index` before `entries` are written (they then start right after it).
   */
  readonly snapshot?: SnapshotMeta | null;
  /** The new hard state, or null when it is unchanged. */
  readonly hardState: HardState | null;
  /**
   * Contiguous entries; they overwrite the log from entries[0].index on (any existing entries at
   * >= entries[0].index are deleted first). Empty when the log is unchanged.
   */
  readonly entries: readonly Entry[];
}

/** Durable home of one node's Raft hard state and log. */
export interface RaftStorage {
  /** What was persisted; the log is contiguous from logStart.index + 1 (empty log allowed). */
  load(): Promise<StoredLog>;
  /**
   * Applies one step atomically and durably (fsync) before resolving. Rejects with
   * InvalidPersistStepError, writing nothing, if the step breaks the rules of `validateStep`.
   */
  save(step: PersistStep): Promise<void>;
  /**
   * Deletes the log through `position.index` (which must be committed and covered by the durably
   * persisted state machine) and records `position` as the new log start, durably.
   */
  compact(position: LogPosition): Promise<void>;
  /** Releases the storage; no call may follow except on the in-memory storage (see its docs). */
  close(): Promise<void>;
}

/** Most entries one step may carry; a driver batching more is unbounded, not busy. */
export const MAX_STEP_ENTRIES = 65_536;
/** Largest payload of a single entry. */
export const MAX_ENTRY_DATA_BYTES = 16 * 1024 * 1024;
/** Largest total payload of one step, so one fsync'd batch stays a sane size. */
export const MAX_STEP_DATA_BYTES = 64 * 1024 * 1024;
/** Longest vote (node id) in UTF-8 bytes; the record stores its length in one byte. */
export const MAX_VOTE_BYTES = 255;

/** What a storage knows about its current state, enough to judge the next step. */
export interface LogTip {
  readonly logStart: LogPosition;
  readonly lastIndex: number;
  readonly hardState: HardState;
  /** The term of the entry just before the step's first entry (0 if that is index 0). */
  readonly termBeforeStep: number;
}

/** The state a valid step leaves behind. */
export interface StepEffect {
  readonly logStart: LogPosition;
  readonly lastIndex: number;
  readonly hardState: HardState;
}

/**
 * Checks `step` against the current tip and returns the resulting tip. Beyond the shape rules (contiguous
 * entries, no gap after the log, bounded sizes) it asserts Raft invariants a persisted state must never
 * break: term and commit never move back, a vote cast in a term is never changed, entry terms never
 * decrease along the log, and commit never points past the last entry (so no committed entry is cut off).
 */
export function validateStep(step: PersistStep, tipBefore: LogTip): StepEffect {
  const tip = step.snapshot ? tipAfterSnapshot(step.snapshot, tipBefore) : tipBefore;
  const hardState = step.hardState === null ? tip.hardState : validateHardState(step.hardState, tip.hardState);
  const lastIndex = step.entries.length === 0 ? tip.lastIndex : validateEntries(step.entries, tip);
  if (step.snapshot && hardState.commit < step.snapshot.index) {
    throw new InvalidPersistStepError(`a snapshot at ${step.snapshot.index} needs a hard state committing it (commit is ${hardState.commit})`);
  }
  if (hardState.commit > lastIndex) {
    throw new InvalidPersistStepError(
      `commit ${hardState.commit} would point past the last log index ${lastIndex}; ` +
        "commit may lag the log but never run ahead of it, and committed entries are never truncated",
    );
  }
  return { logStart: tip.logStart, lastIndex, hardState };
}

/** The tip right after a snapshot replaced the log. */
function tipAfterSnapshot(snapshot: SnapshotMeta, tip: LogTip): LogTip {
  if (!isCount(snapshot.index) || !isCount(snapshot.term) || snapshot.index < 1) {
    throw new InvalidPersistStepError(`snapshot position ${snapshot.index}/${snapshot.term} is not a pair of safe integers`);
  }
  if (snapshot.index <= tip.hardState.commit) {
    throw new InvalidPersistStepError(`snapshot at ${snapshot.index} is not beyond the stored commit ${tip.hardState.commit}`);
  }
  const logStart = { index: snapshot.index, term: snapshot.term };
  return { logStart, lastIndex: snapshot.index, hardState: tip.hardState, termBeforeStep: snapshot.term };
}

/**
 * Checks a compaction against the tip: never beyond the log. Whether the entries are applied is the
 * driver's to know (the persisted commit may lag: it is written lazily).
 */
export function validateCompaction(position: LogPosition, tip: LogTip, storedTerm: number): void {
  if (!isCount(position.index) || !isCount(position.term)) {
    throw new InvalidPersistStepError(`compaction position ${position.index}/${position.term} is not a pair of safe integers`);
  }
  if (position.index > tip.lastIndex) {
    throw new InvalidPersistStepError(`cannot compact through ${position.index}: the log ends at ${tip.lastIndex}`);
  }
  if (position.index > tip.logStart.index && storedTerm !== position.term) {
    throw new InvalidPersistStepError(`cannot compact through ${position.index}/${position.term}: the entry stored there has term ${storedTerm}`);
  }
}

/** The index whose stored term validateCompaction needs, or 0 when it needs none. */
export function indexToCompact(position: LogPosition, tip: Pick<LogTip, "logStart" | "lastIndex">): number {
  return position.index > tip.logStart.index && position.index <= tip.lastIndex ? position.index : 0;
}

/** The index whose term `validateStep` needs as `termBeforeStep`, or 0 when the step needs none. */
export function indexBeforeStep(step: PersistStep, lastIndex: number): number {
  const first = step.entries[0];
  if (first === undefined || step.snapshot) return 0;
  const before = first.index - 1;
  // An out-of-range first index gets 0 here and a clear rejection from validateStep.
  return Number.isSafeInteger(before) && before >= 1 && before <= lastIndex ? before : 0;
}

function validateHardState(next: HardState, prev: HardState): HardState {
  if (!isCount(next.term)) throw new InvalidPersistStepError(`hard state term ${next.term} is not a non-negative safe integer`);
  if (!isCount(next.commit)) throw new InvalidPersistStepError(`hard state commit ${next.commit} is not a non-negative safe integer`);
  if (typeof next.vote !== "string") throw new InvalidPersistStepError("hard state vote is not a string");
  const voteBytes = Buffer.byteLength(next.vote, "utf8");
  if (voteBytes > MAX_VOTE_BYTES) {
    throw new InvalidPersistStepError(`vote is ${voteBytes} UTF-8 bytes, over the ${MAX_VOTE_BYTES}-byte limit for a node id`);
  }
  if (next.term < prev.term) throw new InvalidPersistStepError(`hard state term moves back from ${prev.term} to ${next.term}`);
  if (next.term === prev.term && prev.vote !== "" && next.vote !== prev.vote) {
    throw new InvalidPersistStepError(
      `vote in term ${next.term} changes from "${prev.vote}" to "${next.vote}"; a node votes at most once per term`,
    );
  }
  if (next.commit < prev.commit) throw new InvalidPersistStepError(`hard state commit moves back from ${prev.commit} to ${next.commit}`);
  return { term: next.term, vote: next.vote, commit: next.commit };
}

/** Returns the new last index. */
function validateEntries(entries: readonly Entry[], tip: LogTip): number {
  if (entries.length > MAX_STEP_ENTRIES) {
    throw new InvalidPersistStepError(`${entries.length} entries in one step, over the limit of ${MAX_STEP_ENTRIES}; split the step`);
  }
  let dataBytes = 0;
  let expectedIndex = 0;
  let prevTerm = tip.termBeforeStep;
  for (const [position, entry] of entries.entries()) {
    if (!isCount(entry.index) || entry.index < 1) throw new InvalidPersistStepError(`entry index ${entry.index} is not a positive safe integer`);
    if (position === 0) {
      if (entry.index > tip.lastIndex + 1) {
        throw new InvalidPersistStepError(`first entry index ${entry.index} leaves a gap after the last log index ${tip.lastIndex}`);
      }
      if (entry.index <= tip.logStart.index) {
        throw new InvalidPersistStepError(`entry ${entry.index} would overwrite the compacted log (it starts after ${tip.logStart.index})`);
      }
    } else if (entry.index !== expectedIndex) {
      throw new InvalidPersistStepError(`entries are not contiguous: index ${entry.index} follows ${expectedIndex - 1}`);
    }
    if (!isCount(entry.term)) throw new InvalidPersistStepError(`entry ${entry.index} term ${entry.term} is not a non-negative safe integer`);
    if (entry.term < prevTerm) {
      throw new InvalidPersistStepError(`entry ${entry.index} has term ${entry.term}, below the term ${prevTerm} of the entry before it`);
    }
    if (!isEntryType(entry.type)) throw new InvalidPersistStepError(`entry ${entry.index} has unknown type ${String(entry.type)}`);
    if (!(entry.data instanceof Uint8Array)) throw new InvalidPersistStepError(`entry ${entry.index} data is not a Uint8Array`);
    if (entry.data.byteLength > MAX_ENTRY_DATA_BYTES) {
      throw new InvalidPersistStepError(`entry ${entry.index} carries ${entry.data.byteLength} bytes, over the ${MAX_ENTRY_DATA_BYTES}-byte limit`);
    }
    dataBytes += entry.data.byteLength;
    if (dataBytes > MAX_STEP_DATA_BYTES) {
      throw new InvalidPersistStepError(`step carries over ${MAX_STEP_DATA_BYTES} bytes of entry data; split the step`);
    }
    expectedIndex = entry.index + 1;
    prevTerm = entry.term;
  }
  return expectedIndex - 1;
}

/** True for the entry types this build knows how to store. */
export function isEntryType(value: unknown): value is EntryType {
  return value === EntryType.Noop || value === EntryType.Normal || value === EntryType.Membership;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
