import type { Entry } from "./types.js";
import { assert } from "./assert.js";

/**
 * The in-memory log of one node: entries it persisted plus a not-yet-persisted tail, the commit
 * index and the applied index. It knows which suffix the driver still has to persist ("unstable").
 */
export class RaftLog {
  private readonly entries: Entry[] = [];
  /** First index the driver has not persisted yet; lastIndex()+1 when all is persisted. */
  private unstableFrom: number;
  private committed: number;
  private applied = 0;

  constructor(persisted: readonly Entry[], committed: number) {
    persisted.forEach((entry, offset) => {
      assert(entry.index === offset + 1, `persisted log must be contiguous from 1, found index ${entry.index} at ${offset + 1}`);
      this.entries.push(entry);
    });
    this.unstableFrom = this.lastIndex() + 1;
    assert(committed <= this.lastIndex(), `persisted commit ${committed} beyond last index ${this.lastIndex()}`);
    this.committed = committed;
  }

  lastIndex(): number {
    return this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, 0 for index 0, undefined beyond the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    return this.entries[index - 1]?.term;
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - 1];
  }

  commitIndex(): number {
    return this.committed;
  }

  appliedIndex(): number {
    return this.applied;
  }

  /** Highest index durably written by this node. */
  stableIndex(): number {
    return this.unstableFrom - 1;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** The first index of the run of entries with the same term as `index` (for conflict hints). */
  firstIndexOfTerm(index: number): number {
    const term = this.term(index);
    let first = index;
    while (first > 1 && this.term(first - 1) === term) first--;
    return first;
  }

  /** The last index ≤ `atMost` holding `term`, or 0 when the log has no entry of that term there. */
  lastIndexOfTerm(term: number, atMost: number): number {
    for (let index = Math.min(atMost, this.lastIndex()); index > 0; index--) {
      const found = this.term(index)!;
      if (found === term) return index;
      if (found < term) return 0;
    }
    return 0;
  }

  /**
   * Appends entries from the leader of this term, new ones only; appends at lastIndex+1 at the latest.
   * Returns the index from which a conflicting suffix was replaced, or null when nothing was replaced.
   */
  appendFrom(prevIndex: number, incoming: readonly Entry[]): number | null {
    let truncatedFrom: number | null = null;
    let offset = 0;
    while (offset < incoming.length) {
      const entry = incoming[offset]!;
      assert(entry.index === prevIndex + 1 + offset, "incoming entries must be contiguous");
      const existing = this.term(entry.index);
      if (existing === undefined) break;
      if (existing !== entry.term) {
        assert(entry.index > this.committed, `refusing to overwrite committed entry ${entry.index} (commit ${this.committed})`);
        this.truncateFrom(entry.index);
        truncatedFrom = entry.index;
        break;
      }
      offset++;
    }
    for (; offset < incoming.length; offset++) this.push(incoming[offset]!);
    return truncatedFrom;
  }

  /** Appends new entries at the end (the leader's own proposals). */
  push(entry: Entry): void {
    assert(entry.index === this.lastIndex() + 1, `entry ${entry.index} does not follow last index ${this.lastIndex()}`);
    assert(entry.term >= this.lastTerm(), `entry term ${entry.term} below last term ${this.lastTerm()}`);
    this.entries.push(entry);
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - 1;
    this.unstableFrom = Math.min(this.unstableFrom, index);
  }

  /** Entries in [from, to] (inclusive), bounded by count and bytes; at least one entry if any exist. */
  slice(from: number, to: number, maxEntries: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= Math.min(to, this.lastIndex()); index++) {
      const entry = this.entries[index - 1]!;
      bytes += entry.data.byteLength;
      if (out.length > 0 && (out.length >= maxEntries || bytes > maxBytes)) break;
      out.push(entry);
    }
    return out;
  }

  /** The suffix the driver must persist next. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.unstableFrom - 1);
  }

  /** Marks entries through `index` durable, unless a conflicting append replaced them meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.term(index) === term && index >= this.unstableFrom) this.unstableFrom = index + 1;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** Committed entries not yet handed out; only durable ones, so a node never applies what it could lose. */
  nextToApply(maxEntries: number): Entry[] {
    const upTo = Math.min(this.committed, this.stableIndex(), this.applied + maxEntries);
    return this.entries.slice(this.applied, Math.max(this.applied, upTo));
  }

  appliedTo(index: number): void {
    assert(index >= this.applied && index <= this.committed, `applied ${index} out of range [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }
}
