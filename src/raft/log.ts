import type { Entry } from "./types.js";

/** A log index and the term of the entry there. */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}
import { assert } from "./assert.js";

/**
 * The in-memory log of one node: entries it persisted plus a not-yet-persisted tail, the commit
 * index and the applied index. It knows which suffix the driver still has to persist ("unstable").
 */
export class RaftLog {
  /** Entries after the log start, in index order: entries[i] has index start.index + 1 + i. */
  private entries: Entry[] = [];
  /** The last compacted entry (index 0, term 0 when nothing was compacted): its term is still known. */
  private start: LogPosition;
  /** First index the driver has not persisted yet; lastIndex()+1 when all is persisted. */
  private unstableFrom: number;
  private committed: number;
  private applied: number;

  /**
   * `applied` is how far the persisted state machine already is (at least the log start), `committed`
   * the persisted commit index (it may lag `applied`, whose entries were committed by definition).
   */
  constructor(start: LogPosition, persisted: readonly Entry[], committed: number, applied: number) {
    this.start = start;
    persisted.forEach((entry, offset) => {
      assert(entry.index === start.index + 1 + offset, `persisted log must be contiguous from ${start.index + 1}, found index ${entry.index}`);
      this.entries.push(entry);
    });
    this.unstableFrom = this.lastIndex() + 1;
    assert(applied >= start.index, `applied ${applied} is before the log start ${start.index}`);
    this.committed = Math.max(committed, applied);
    assert(this.committed <= this.lastIndex(), `persisted commit ${this.committed} beyond last index ${this.lastIndex()}`);
    this.applied = applied;
  }

  /** The compaction point: entries up to it are gone, the state machine snapshot covers them. */
  startPosition(): LogPosition {
    return this.start;
  }

  /** The first index still held (lastIndex()+1 for an empty log). */
  firstIndex(): number {
    return this.start.index + 1;
  }

  lastIndex(): number {
    return this.start.index + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index` (known down to the log start), undefined beyond the log or before its start. */
  term(index: number): number | undefined {
    if (index === this.start.index) return this.start.term;
    if (index < this.start.index) return undefined;
    return this.entries[index - this.start.index - 1]?.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.start.index) return undefined;
    return this.entries[index - this.start.index - 1];
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
    while (first > this.firstIndex() && this.term(first - 1) === term) first--;
    return first;
  }

  /** The last index ≤ `atMost` holding `term`, or 0 when the log has no entry of that term there. */
  lastIndexOfTerm(term: number, atMost: number): number {
    for (let index = Math.min(atMost, this.lastIndex()); index > this.start.index; index--) {
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
    this.entries.length = index - this.start.index - 1;
    this.unstableFrom = Math.min(this.unstableFrom, index);
  }

  /** Entries in [from, to] (inclusive), bounded by count and bytes; at least one entry if any exist. */
  slice(from: number, to: number, maxEntries: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    assert(from > this.start.index, `slice from ${from} reaches into the compacted log (start ${this.start.index})`);
    for (let index = from; index <= Math.min(to, this.lastIndex()); index++) {
      const entry = this.entries[index - this.start.index - 1]!;
      bytes += entry.data.byteLength;
      if (out.length > 0 && (out.length >= maxEntries || bytes > maxBytes)) break;
      out.push(entry);
    }
    return out;
  }

  /** The suffix the driver must persist next. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.unstableFrom - this.start.index - 1);
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
  nextToApply(maxEntries: number, maxBytes = Infinity): Entry[] {
    const upTo = Math.min(this.committed, this.stableIndex(), this.applied + maxEntries);
    const offset = this.start.index;
    const from = this.applied - offset;
    let to = from;
    // At least one entry, however big; then as many as fit in maxBytes.
    for (let bytes = 0; to < upTo - offset; to++) {
      bytes += (this.entries[to] as Entry).data.byteLength;
      if (bytes > maxBytes && to > from) break;
    }
    return this.entries.slice(from, to);
  }

  /**
   * Drops entries through `index` (at most the applied index): the persisted state machine covers them.
   * Only ever called for a durable prefix, so nothing unstable goes.
   */
  compact(index: number): void {
    if (index <= this.start.index) return;
    assert(index <= this.applied, `cannot compact to ${index}: only ${this.applied} applied`);
    assert(index < this.unstableFrom, `cannot compact to ${index}: not yet persisted`);
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.start.index);
    this.start = { index, term };
  }

  /**
   * Replaces the whole log by a snapshot received from the leader: nothing before or after it is kept
   * (the caller has checked the log does not already hold the snapshot's last entry).
   */
  restore(position: LogPosition): void {
    assert(position.index > this.committed, `snapshot at ${position.index} is not beyond commit ${this.committed}`);
    this.entries = [];
    this.start = position;
    this.unstableFrom = position.index + 1;
    this.committed = position.index;
    this.applied = position.index;
  }

  appliedTo(index: number): void {
    assert(index >= this.applied && index <= this.committed, `applied ${index} out of range [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }
}
