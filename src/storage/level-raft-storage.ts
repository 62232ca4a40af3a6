/**
 * RaftStorage on LevelDB (via `level`). Every save is one synchronous (fsync'd) batch, so a crash leaves
 * either the whole step or none of it; every load re-verifies every record, so a torn or damaged record is
 * reported, never replayed. The layout and record format live in level-records.ts.
 */
import type { AbstractBatchOperation, AbstractChainedBatch } from "abstract-level";
import { Level } from "level";
import type { LogPosition } from "../raft/log.js";
import type { Entry, HardState } from "../raft/types.js";
import { EMPTY_HARD_STATE } from "../raft/types.js";
import { StorageClosedError, StorageCorruptionError, StorageVersionError } from "./errors.js";
import {
  ENTRY_KEYS_END,
  ENTRY_KEYS_START,
  FORMAT_VERSION,
  FORMAT_VERSION_KEY,
  HARD_STATE_KEY,
  LOG_START_KEY,
  decodeEntry,
  decodeEntryKey,
  decodeEntryTerm,
  decodeFormatVersion,
  decodeHardState,
  decodeLogStart,
  encodeEntry,
  encodeLogStart,
  encodeFormatVersion,
  encodeHardState,
  entryKey,
} from "./level-records.js";
import {
  indexBeforeStep,
  indexToCompact,
  validateCompaction,
  validateStep,
  type PersistStep,
  type RaftStorage,
  type StoredLog,
} from "./raft-storage.js";

/**
 * The root database a node opens once per data directory (newRootLevel). Each component keeps its keys in
 * its own sublevel with its own encodings. The root's own encodings (string keys, byte values) matter
 * only to writes that address it directly with keys already prefixed (queue-write-buffer.ts).
 */
export type RootLevel = Level<string, Uint8Array>;

/**
 * A write of another component on the same root (e.g. installing a received state machine snapshot)
 * that must land in the same atomic batch as a Raft step.
 */
// Each component's sublevel has its own key and value types; the root batch accepts any of them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CompanionOperation = AbstractBatchOperation<RootLevel, any, any>;

/** A chained batch on the root database: how a node writes a Raft step and its state machine's changes at once. */
export type RootBatch = AbstractChainedBatch<RootLevel, string, Uint8Array>;

/** Adds another component's writes to the batch of a Raft step. */
export type StageWrites = (batch: RootBatch) => void;

/** Name of the sublevel holding the Raft keys; other components must pick another name. */
export const RAFT_SUBLEVEL = "raft";

type RaftSublevel = ReturnType<typeof raftSublevel>;
type RaftBatchOperation =
  | { type: "put"; key: Uint8Array; value: Uint8Array; sublevel: RaftSublevel }
  | { type: "del"; key: Uint8Array; sublevel: RaftSublevel };

/** What is known about the stored state without reading the whole log. */
interface Tip {
  readonly logStart: LogPosition;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly hardState: HardState;
}

/** RaftStorage over LevelDB: atomic fsync'd steps, checksummed records, verified loads. */
export class LevelRaftStorage implements RaftStorage {
  /** Serializes operations: each step is judged against the state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly root: RootLevel,
    private readonly raft: RaftSublevel,
    /** The root was opened by `open` and so is closed by `close`; an attached root belongs to its owner. */
    private readonly ownsRoot: boolean,
    private tip: Tip,
  ) {}

  /** Opens (creating if needed) the LevelDB database in `dataDir` and the Raft state inside it. */
  static async open(dataDir: string): Promise<LevelRaftStorage> {
    const root = await openRootLevel(dataDir);
    try {
      return await LevelRaftStorage.start(root, true);
    } catch (err) {
      await root.close();
      throw err;
    }
  }

  /**
   * Uses an already opened root database, shared with other components (e.g. the queue state machine)
   * that keep their keys in other sublevels. `close()` then leaves the root open for its owner.
   */
  static attach(root: RootLevel): Promise<LevelRaftStorage> {
    return LevelRaftStorage.start(root, false);
  }

  private static async start(root: RootLevel, ownsRoot: boolean): Promise<LevelRaftStorage> {
    const raft = raftSublevel(root);
    const dataDir = root.location;
    try {
      await checkFormatVersion(raft, dataDir);
      const tip = await readTip(raft, dataDir);
      return new LevelRaftStorage(root, raft, ownsRoot, tip);
    } catch (err) {
      throw asCorruption(err, dataDir, "open");
    }
  }

  /** The directory of the underlying database, for messages. */
  get dataDir(): string {
    return this.root.location;
  }

  /** Reads and verifies the whole persisted state; rejects with StorageCorruptionError on any damage. */
  load(): Promise<StoredLog> {
    return this.serialize("load", async () => {
      try {
        const hardState = await readHardState(this.raft, this.dataDir);
        const logStart = await readLogStart(this.raft, this.dataDir);
        const entries = await readLog(this.raft, this.dataDir, logStart);
        const last = entries[entries.length - 1];
        const lastIndex = last?.index ?? logStart.index;
        if (hardState.commit > lastIndex) {
          throw new StorageCorruptionError(
            this.dataDir,
            "the hard state",
            `commit ${hardState.commit} points past the last log index ${lastIndex}: committed entries are missing`,
            lastIndex + 1,
          );
        }
        this.tip = { logStart, lastIndex, lastTerm: last?.term ?? logStart.term, hardState };
        return { hardState, logStart, entries };
      } catch (err) {
        throw asCorruption(err, this.dataDir, "load");
      }
    });
  }

  /**
   * Writes one step as a single batch, deleting any overwritten suffix in the same batch, together with
   * `companions` and what `stage` adds (another component's writes that must be atomic with this step).
   * The batch is fsync'd when the step must be durable before anything is sent (mustSync) or carries
   * companions; otherwise (a commit index that moved, the state machine's writes) it is written without
   * an fsync: the log on disk still holds what they describe, and LevelDB loses only a suffix of its
   * unsynced writes, so what is on disk stays consistent.
   */
  save(step: PersistStep, companions: readonly CompanionOperation[] = [], stage?: StageWrites): Promise<void> {
    return this.serialize("save", async () => {
      const tip = this.tip;
      const before = indexBeforeStep(step, tip.lastIndex);
      const effect = validateStep(step, {
        logStart: tip.logStart,
        lastIndex: tip.lastIndex,
        hardState: tip.hardState,
        termBeforeStep: before === tip.lastIndex ? tip.lastTerm : await this.readTerm(before),
      });
      const raftOperations = this.batchOperations(step, effect.lastIndex);
      if (raftOperations.length === 0 && companions.length === 0 && stage === undefined) return;
      // A chained batch gathers the operations in native memory rather than one JS object each.
      const batch = this.root.batch();
      try {
        for (const operation of [...companions, ...raftOperations]) {
          const options = { sublevel: operation.sublevel } as Parameters<RootBatch["put"]>[2];
          if (operation.type === "put") batch.put(operation.key, operation.value, options);
          else batch.del(operation.key, options);
        }
        stage?.(batch);
        await batch.write({ sync: mustSync(step, tip.hardState) || companions.length > 0 });
      } catch (error) {
        await batch.close().catch(() => undefined);
        throw error;
      }
      const last = step.entries[step.entries.length - 1];
      const lastTerm = last?.term ?? (step.snapshot ? step.snapshot.term : tip.lastTerm);
      this.tip = { logStart: effect.logStart, lastIndex: effect.lastIndex, lastTerm, hardState: effect.hardState };
    });
  }

  /** Deletes the log through `position.index` and moves the log start there, in one fsync'd batch. */
  compact(position: LogPosition): Promise<void> {
    return this.serialize("compact", async () => {
      const tip = this.tip;
      const at = indexToCompact(position, tip);
      const storedTerm = at === 0 ? 0 : at === tip.lastIndex ? tip.lastTerm : await this.readTerm(at);
      validateCompaction(position, { ...tip, termBeforeStep: 0 }, storedTerm);
      if (position.index <= tip.logStart.index) return;
      const raft = this.raft;
      const operations: RaftBatchOperation[] = [];
      for (let index = tip.logStart.index + 1; index <= Math.min(position.index, tip.lastIndex); index++) {
        operations.push({ type: "del", key: entryKey(index), sublevel: raft });
      }
      operations.push({ type: "put", key: LOG_START_KEY, value: encodeLogStart(position), sublevel: raft });
      await this.root.batch<Uint8Array, Uint8Array>(operations, { sync: true });
      const lastIndex = Math.max(tip.lastIndex, position.index);
      this.tip = { ...tip, logStart: { ...position }, lastIndex, lastTerm: lastIndex === position.index ? position.term : tip.lastTerm };
    });
  }

  /** Waits for pending operations, then closes the database if this storage opened it. */
  close(): Promise<void> {
    return this.serialize("close", async () => {
      this.closed = true;
      if (this.ownsRoot) await this.root.close();
    });
  }

  /** The operations of one validated step; `newLastIndex` is where the log ends after it. */
  private batchOperations(step: PersistStep, newLastIndex: number): RaftBatchOperation[] {
    const raft = this.raft;
    const operations: RaftBatchOperation[] = [];
    if (step.snapshot) {
      // The received snapshot replaces the whole log: every stored entry goes.
      for (let index = this.tip.logStart.index + 1; index <= this.tip.lastIndex; index++) {
        operations.push({ type: "del", key: entryKey(index), sublevel: raft });
      }
      const { index, term } = step.snapshot;
      operations.push({ type: "put", key: LOG_START_KEY, value: encodeLogStart({ index, term }), sublevel: raft });
    } else if (step.entries.length > 0) {
      // Puts replace the keys up to newLastIndex; anything the old log had beyond it must go.
      for (let index = newLastIndex + 1; index <= this.tip.lastIndex; index++) {
        operations.push({ type: "del", key: entryKey(index), sublevel: raft });
      }
    }
    // After the deletes, so an entry a snapshot step writes over a deleted key survives (the batch applies in order).
    for (const entry of step.entries) {
      operations.push({ type: "put", key: entryKey(entry.index), value: encodeEntry(entry), sublevel: raft });
    }
    if (step.hardState !== null) {
      operations.push({ type: "put", key: HARD_STATE_KEY, value: encodeHardState(step.hardState), sublevel: raft });
    }
    return operations;
  }

  private async readTerm(index: number): Promise<number> {
    if (index <= this.tip.logStart.index) return this.tip.logStart.term;
    const record = await this.raft.get(entryKey(index));
    const term = record === undefined ? null : decodeEntryTerm(record);
    if (term === null) {
      throw new StorageCorruptionError(this.dataDir, `log index ${index}`, "the entry is missing or fails its checksum", index);
    }
    return term;
  }

  private serialize<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.closed) throw new StorageClosedError(operation);
      return run();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/**
 * Whether a step must reach the disk before the node answers anyone: new or overwritten entries, a
 * received snapshot, a new term or vote. The commit index alone need not (etcd's MustSync rule): after a
 * crash a node may restart with an older commit index and learn the newer one from the leader again, and
 * what it answered was committed on a majority of disks already.
 */
export function mustSync(step: PersistStep, before: HardState): boolean {
  if (step.snapshot || step.entries.length > 0) return true;
  const after = step.hardState;
  return after !== null && (after.term !== before.term || after.vote !== before.vote);
}

/** Opens (creating if needed) a node's root database, with an error that says what to do if it cannot. */
export async function openRootLevel(dataDir: string): Promise<RootLevel> {
  const root = newRootLevel(dataDir);
  try {
    await root.open();
  } catch (err) {
    throw openError(dataDir, err);
  }
  return root;
}

/** A node's root database in `dataDir`, not opened yet: string keys, values as byte views. */
export function newRootLevel(dataDir: string): RootLevel {
  return new Level<string, Uint8Array>(dataDir, { keyEncoding: "utf8", valueEncoding: "view" });
}

/** Whether `root` has the encodings of newRootLevel, which writes with prefixed keys rely on. */
export function hasRootEncodings(root: RootLevel): boolean {
  return root.keyEncoding().name === "utf8" && root.valueEncoding().name === "view";
}

function raftSublevel(root: RootLevel) {
  return root.sublevel<Uint8Array, Uint8Array>(RAFT_SUBLEVEL, { keyEncoding: "view", valueEncoding: "view" });
}

/** Accepts the known version, stamps a fresh store, refuses anything else. */
async function checkFormatVersion(raft: RaftSublevel, dataDir: string): Promise<void> {
  const record = await raft.get(FORMAT_VERSION_KEY);
  if (record === undefined) {
    const anyKey = await raft.keys({ limit: 1 }).all();
    if (anyKey.length > 0) {
      throw new StorageCorruptionError(dataDir, "the format version key", "it is missing although Raft records exist");
    }
    await raft.db.batch<Uint8Array, Uint8Array>(
      [{ type: "put", key: FORMAT_VERSION_KEY, value: encodeFormatVersion(FORMAT_VERSION), sublevel: raft }],
      { sync: true },
    );
    return;
  }
  const decoded = decodeFormatVersion(record);
  if (!decoded.ok) throw new StorageCorruptionError(dataDir, "the format version key", decoded.problem);
  if (decoded.value !== FORMAT_VERSION) throw new StorageVersionError(dataDir, decoded.value, FORMAT_VERSION);
}

/** The hard state and the last entry, enough to accept steps before (or without) a full load. */
async function readTip(raft: RaftSublevel, dataDir: string): Promise<Tip> {
  const hardState = await readHardState(raft, dataDir);
  const logStart = await readLogStart(raft, dataDir);
  const [last] = await raft.iterator({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END, reverse: true, limit: 1 }).all();
  if (last === undefined) return { logStart, lastIndex: logStart.index, lastTerm: logStart.term, hardState };
  const entry = verifyEntry(last[0], last[1], dataDir);
  return { logStart, lastIndex: entry.index, lastTerm: entry.term, hardState };
}

async function readLogStart(raft: RaftSublevel, dataDir: string): Promise<LogPosition> {
  const record = await raft.get(LOG_START_KEY);
  if (record === undefined) return { index: 0, term: 0 };
  const decoded = decodeLogStart(record);
  if (!decoded.ok) throw new StorageCorruptionError(dataDir, "the log start", decoded.problem);
  return decoded.value;
}

async function readHardState(raft: RaftSublevel, dataDir: string): Promise<HardState> {
  const record = await raft.get(HARD_STATE_KEY);
  if (record === undefined) return EMPTY_HARD_STATE;
  const decoded = decodeHardState(record);
  if (!decoded.ok) throw new StorageCorruptionError(dataDir, "the hard state", decoded.problem);
  return decoded.value;
}

/** The whole log, checked record by record and against its neighbours. */
async function readLog(raft: RaftSublevel, dataDir: string, logStart: LogPosition): Promise<Entry[]> {
  const entries: Entry[] = [];
  let prevTerm = logStart.term;
  for await (const [key, record] of raft.iterator({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END })) {
    const entry = verifyEntry(key, record, dataDir);
    const expectedIndex = logStart.index + entries.length + 1;
    if (entry.index <= logStart.index) {
      throw new StorageCorruptionError(
        dataDir,
        `log index ${entry.index}`,
        `an entry is stored at or before the log start ${logStart.index}, where the log was compacted away`,
        entry.index,
      );
    }
    if (entry.index !== expectedIndex) {
      throw new StorageCorruptionError(
        dataDir,
        `log index ${expectedIndex}`,
        `the entry is missing (the next stored entry is ${entry.index}): the log has a gap`,
        expectedIndex,
      );
    }
    if (entry.term < prevTerm) {
      throw new StorageCorruptionError(
        dataDir,
        `log index ${entry.index}`,
        `term ${entry.term} is below the term ${prevTerm} of the entry before it`,
        entry.index,
      );
    }
    prevTerm = entry.term;
    entries.push(entry);
  }
  return entries;
}

/** Decodes one stored entry and checks it sits under its own key. */
function verifyEntry(key: Uint8Array, record: Uint8Array, dataDir: string): Entry {
  const keyIndex = decodeEntryKey(key);
  if (!keyIndex.ok) throw new StorageCorruptionError(dataDir, "an entry key", keyIndex.problem);
  const where = `log index ${keyIndex.value}`;
  const decoded = decodeEntry(record);
  if (!decoded.ok) throw new StorageCorruptionError(dataDir, where, decoded.problem, keyIndex.value);
  if (decoded.value.index !== keyIndex.value) {
    throw new StorageCorruptionError(dataDir, where, `the record says it is index ${decoded.value.index}`, keyIndex.value);
  }
  return decoded.value;
}

/** LevelDB's own corruption report is the same situation for the operator as a bad checksum. */
function asCorruption(err: unknown, dataDir: string, operation: string): unknown {
  if (errorCode(err) !== "LEVEL_CORRUPTION") return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StorageCorruptionError(dataDir, `LevelDB (during ${operation})`, message, null, err);
}

function openError(dataDir: string, err: unknown): Error {
  const cause = err instanceof Error ? err.cause : undefined;
  const hint =
    errorCode(cause) === "LEVEL_LOCKED"
      ? "another open database holds its lock: stop the other raftq node using this data directory, or close the first handle"
      : "check that the directory exists, is writable and holds a LevelDB database";
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`cannot open LevelDB in ${dataDir} (${message}): ${hint}`, { cause: err });
}

function errorCode(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
}
