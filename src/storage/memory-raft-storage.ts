/**
 * RaftStorage held in memory: the "disk" of the deterministic simulator and of unit tests. Every step is
 * applied whole or not at all, like the LevelDB storage, and nothing the caller holds aliases what is stored.
 */
import type { LogPosition } from "../raft/log.js";
import { EMPTY_HARD_STATE, type Entry, type HardState } from "../raft/types.js";
import {
  indexBeforeStep,
  validateCompaction,
  validateStep,
  type LogTip,
  type PersistStep,
  type RaftStorage,
  type StoredLog,
} from "./raft-storage.js";

/** In-memory RaftStorage with synchronous twins of load/save/compact for the simulator. */
export class MemoryRaftStorage implements RaftStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private logStart: LogPosition = { index: 0, term: 0 };
  /** entries[i] holds index logStart.index + 1 + i. */
  private entries: Entry[] = [];

  /** Synchronous `load`: a deep copy of what is stored. */
  loadSync(): StoredLog {
    return { hardState: { ...this.hardState }, logStart: { ...this.logStart }, entries: this.entries.map(copyEntry) };
  }

  /** Synchronous `save`: validates the whole step first, then applies it, so a rejected step changes nothing. */
  saveSync(step: PersistStep): void {
    const tip = this.tip();
    const before = indexBeforeStep(step, tip.lastIndex);
    const effect = validateStep(step, { ...tip, termBeforeStep: this.termAt(before) });
    if (step.snapshot) {
      this.entries = [];
      this.logStart = { index: step.snapshot.index, term: step.snapshot.term };
    }
    const first = step.entries[0];
    if (first !== undefined) {
      this.entries.length = first.index - this.logStart.index - 1;
      for (const entry of step.entries) this.entries.push(copyEntry(entry));
    }
    this.hardState = effect.hardState;
  }

  /** Synchronous `compact`. */
  compactSync(position: LogPosition): void {
    validateCompaction(position, { ...this.tip(), termBeforeStep: 0 }, this.termAt(position.index));
    if (position.index <= this.logStart.index) return;
    this.entries = this.entries.slice(position.index - this.logStart.index);
    this.logStart = { ...position };
  }

  /** A deep copy of what is stored. */
  async load(): Promise<StoredLog> {
    return this.loadSync();
  }

  /** Applies one step atomically; "durable" means it survives the node object that wrote it. */
  async save(step: PersistStep): Promise<void> {
    this.saveSync(step);
  }

  async compact(position: LogPosition): Promise<void> {
    this.compactSync(position);
  }

  /**
   * Does nothing on purpose: like a disk, the stored state outlives the node that used it, so the
   * simulator can "restart" a node by loading the same instance again.
   */
  async close(): Promise<void> {}

  private tip(): Omit<LogTip, "termBeforeStep"> {
    return { logStart: this.logStart, lastIndex: this.logStart.index + this.entries.length, hardState: this.hardState };
  }

  private termAt(index: number): number {
    if (index <= this.logStart.index) return this.logStart.term;
    return this.entries[index - this.logStart.index - 1]?.term ?? 0;
  }
}

/** A deep copy as a plain Uint8Array (Buffer#slice would share memory, so never slice). */
function copyEntry(entry: Entry): Entry {
  return { index: entry.index, term: entry.term, type: entry.type, data: new Uint8Array(entry.data) };
}
