/**
 * The messages of one timed state (delayed or in flight) in the order they leave it, so advancing time
 * never scans the backlog. Removal is lazy: when a message changes state its entry stays in the heap,
 * recognised as stale by its generation, and is skipped when it reaches the top.
 */
import { DueHeap, type DueEntry } from "./due-heap.js";

/** Stale entries tolerated beyond the live ones before the heap is rebuilt; bounds memory at O(live). */
export const STALE_SLACK_ENTRIES = 1024;

/** What every index of one queue's messages offers the queue (StateIndex, ReadyIndex). */
export interface MessageIndex {
  /** Number of messages in the index's state. */
  readonly size: number;
  /** A message entered the state. */
  add(entry: DueEntry): void;
  /** A message left the state (its entry, if still held, is now stale). */
  forget(): void;
  /** Drops stale entries from the front so reads may peek without mutating; call at the end of every change. */
  settle(): void;
  /** Forgets every message. */
  clear(): void;
}

/** One timed state's messages, by due time, then id. */
export class StateIndex implements MessageIndex {
  private readonly heap = new DueHeap();
  private liveCount = 0;

  /** `isLive` tells whether an entry still describes its message (same generation, message not gone). */
  constructor(private readonly isLive: (entry: DueEntry) => boolean) {}

  get size(): number {
    return this.liveCount;
  }

  add(entry: DueEntry): void {
    this.liveCount += 1;
    this.heap.push(entry);
    if (this.heap.size > 2 * this.liveCount + STALE_SLACK_ENTRIES) this.heap.retain(this.isLive);
  }

  forget(): void {
    if (this.liveCount === 0) throw new Error("StateIndex.forget with no live entry: bookkeeping bug");
    this.liveCount -= 1;
  }

  /**
   * The first live entry due at or before `nowMs`, left in place: once the caller moves its message the
   * entry is stale and the next call skips it.
   */
  firstDue(nowMs: number): DueEntry | undefined {
    this.settle();
    const top = this.heap.peek();
    return top === undefined || top.dueMs > nowMs ? undefined : top;
  }

  /** Removes and returns the first live entry due at or before `nowMs`; the caller then moves the message. */
  popDue(nowMs: number): DueEntry | undefined {
    const top = this.firstDue(nowMs);
    if (top !== undefined) this.heap.pop();
    return top;
  }

  /** The first live entry. Only valid after `settle()`, i.e. between commands. */
  peek(): DueEntry | undefined {
    return this.heap.peek();
  }

  settle(): void {
    for (let top = this.heap.peek(); top !== undefined && !this.isLive(top); top = this.heap.peek()) this.heap.pop();
  }

  /** Calls `visit` for every live entry due at or before `nowMs`, without changing anything. */
  visitDue(nowMs: number, visit: (entry: DueEntry) => void): void {
    this.heap.visitDueBy(nowMs, (entry) => {
      if (this.isLive(entry)) visit(entry);
    });
  }

  clear(): void {
    this.heap.clear();
    this.liveCount = 0;
  }
}
