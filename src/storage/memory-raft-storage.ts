/**
 * RaftStorage held in memory: the "disk" of the deterministic simulator and of unit tests. Every step is
 * applied whole or not at all, like the LevelDB storage, and nothing the caller holds aliases what is stored.
 */
import { EMPTY_HARD_STATE, type Entry, type HardState, type PersistedState } from "../raft/types.js";
import { indexBeforeStep, validateStep, type PersistStep, type RaftStorage } from "./raft-storage.js";

/** In-memory RaftStorage with synchronous twins of load/save for the simulator. */
export class MemoryRaftStorage implements RaftStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  /** entries[i] holds index i + 1. */
  private entries: Entry[] = [];

  /** Synchronous `load`: a deep copy of what is stored. */
  loadSync(): PersistedState {
    return { hardState: { ...this.hardState }, entries: this.entries.map(copyEntry) };
  }

  /** Synchronous `save`: validates the whole step first, then applies it, so a rejected step changes nothing. */
  saveSync(step: PersistStep): void {
    const lastIndex = this.entries.length;
    const before = indexBeforeStep(step, lastIndex);
    const effect = validateStep(step, {
      lastIndex,
      hardState: this.hardState,
      termBeforeStep: before === 0 ? 0 : (this.entries[before - 1]?.term ?? 0),
    });
    const first = step.entries[0];
    if (first !== undefined) {
      this.entries.length = first.index - 1;
      for (const entry of step.entries) this.entries.push(copyEntry(entry));
    }
    this.hardState = effect.hardState;
  }

  /** A deep copy of what is stored. */
  async load(): Promise<PersistedState> {
    return this.loadSync();
  }

  /** Applies one step atomically; "durable" means it survives the node object that wrote it. */
  async save(step: PersistStep): Promise<void> {
    this.saveSync(step);
  }

  /**
   * Does nothing on purpose: like a disk, the stored state outlives the node that used it, so the
   * simulator can "restart" a node by loading the same instance again.
   */
  async close(): Promise<void> {}
}

/** A deep copy as a plain Uint8Array (Buffer#slice would share memory, so never slice). */
function copyEntry(entry: Entry): Entry {
  return { index: entry.index, term: entry.term, type: entry.type, data: new Uint8Array(entry.data) };
}
