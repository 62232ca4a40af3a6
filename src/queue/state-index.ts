/**
 * The messages of one state (ready, delayed or in flight) in the order they leave it, so a lease never
 * scans the backlog. Removal is lazy: when a message changes state its entry stays in the heap, recognised
 * as stale by its generation, and is skipped when it reaches the top.
 */
import { MinHeap } from "./min-heap.js";

/** A message's place in an index, valid while the message's generation is still `generation`. */
export interface IndexEntry {
  readonly id: number;
  readonly generation: number;
  /** Order key: 0 for ready messages (ordered by id), else when the message leaves the state. */
  readonly dueMs: number;
}

/** Stale entries tolerated beyond the live ones before the heap is rebuilt; bounds memory at O(live). */
const STALE_SLACK_ENTRIES = 1024;

function before(a: IndexEntry, b: IndexEntry): boolean {
  if (a.dueMs !== b.dueMs) return a.dueMs < b.dueMs;
  if (a.id !== b.id) return a.id < b.id;
  return a.generation < b.generation;
}

/** One state's messages, by due time, then id. */
export class StateIndex {
  private readonly heap = new MinHeap<IndexEntry>(before);
  private liveCount = 0;

  /** `isLive` tells whether an entry still describes its message (same generation, message not gone). */
  constructor(private readonly isLive: (entry: IndexEntry) => boolean) {}

  /** Number of messages in this state. */
  get size(): number {
    return this.liveCount;
  }

  /** A message entered the state. */
  add(entry: IndexEntry): void {
    this.liveCount += 1;
    this.heap.push(entry);
    if (this.heap.size > 2 * this.liveCount + STALE_SLACK_ENTRIES) this.heap.retain(this.isLive);
  }

  /** A message left the state (its entry, if still in the heap, is now stale). */
  forget(): void {
    if (this.liveCount === 0) throw new Error("StateIndex.forget with no live entry: bookkeeping bug");
    this.liveCount -= 1;
  }

  /**
   * The first live entry due at or before `nowMs`, left in place: once the caller moves its message the
   * entry is stale and the next call skips it.
   */
  firstDue(nowMs: number): IndexEntry | undefined {
    this.settle();
    const top = this.heap.peek();
    return top === undefined || top.dueMs > nowMs ? undefined : top;
  }

  /** Removes and returns the first live entry due at or before `nowMs`; the caller then moves the message. */
  popDue(nowMs: number): IndexEntry | undefined {
    const top = this.firstDue(nowMs);
    if (top !== undefined) this.heap.pop();
    return top;
  }

  /** The first live entry. Only valid after `settle()`, i.e. between commands. */
  peek(): IndexEntry | undefined {
    return this.heap.peek();
  }

  /** Drops stale entries from the top so `peek` answers without mutating; call at the end of every change. */
  settle(): void {
    for (let top = this.heap.peek(); top !== undefined && !this.isLive(top); top = this.heap.peek()) {
      this.heap.pop();
    }
  }

  /** Calls `visit` for every live entry due at or before `nowMs`, without changing anything. */
  visitDue(nowMs: number, visit: (entry: IndexEntry) => void): void {
    this.heap.visitWithin(
      (entry) => entry.dueMs <= nowMs,
      (entry) => {
        if (this.isLive(entry)) visit(entry);
      },
    );
  }

  /** Forgets every message. */
  clear(): void {
    this.heap.clear();
    this.liveCount = 0;
  }
}
