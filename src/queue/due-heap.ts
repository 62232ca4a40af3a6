/**
 * A binary min-heap of (dueMs, id, generation) triples in typed arrays: 20 bytes per entry and no object
 * per entry, so a queue's millions of delayed or leased messages cost little memory. The order is
 * total (due time, then id, then generation), so pops are the same on every node.
 */

const MIN_CAPACITY = 16;
const GROWTH_FACTOR = 1.5;

/** One entry, as handed to callbacks. */
export interface DueEntry {
  readonly dueMs: number;
  readonly id: number;
  readonly generation: number;
}

/** A min-heap of DueEntry in columns. */
export class DueHeap {
  private count = 0;
  private dueMs = new Float64Array(MIN_CAPACITY);
  private ids = new Float64Array(MIN_CAPACITY);
  private generations = new Uint32Array(MIN_CAPACITY);

  /** Number of entries held. */
  get size(): number {
    return this.count;
  }

  /** The least entry, without removing it. */
  peek(): DueEntry | undefined {
    return this.count === 0 ? undefined : this.entry(0);
  }

  /** Adds an entry in O(log n). */
  push(entry: DueEntry): void {
    if (this.count === this.ids.length) this.reallocate(Math.ceil(this.ids.length * GROWTH_FACTOR));
    this.set(this.count, entry.dueMs, entry.id, entry.generation);
    this.count += 1;
    this.siftUp(this.count - 1);
  }

  /** Removes the least entry in O(log n). */
  pop(): void {
    if (this.count === 0) return;
    this.count -= 1;
    if (this.count > 0) {
      this.move(this.count, 0);
      this.siftDown(0);
    }
    if (this.ids.length > MIN_CAPACITY && this.count < this.ids.length / 4) this.reallocate(Math.ceil(this.ids.length / 2));
  }

  /**
   * Calls `visit` on every entry due at or before `maxDueMs`, in no particular order, touching only those
   * entries and their children.
   */
  visitDueBy(maxDueMs: number, visit: (entry: DueEntry) => void): void {
    const pending = [0];
    for (let index = pending.pop(); index !== undefined; index = pending.pop()) {
      if (index >= this.count || (this.dueMs[index] as number) > maxDueMs) continue;
      visit(this.entry(index));
      pending.push(2 * index + 1, 2 * index + 2);
    }
  }

  /** Keeps only the entries for which `keep` holds, in O(n). */
  retain(keep: (entry: DueEntry) => boolean): void {
    let kept = 0;
    for (let index = 0; index < this.count; index++) {
      if (keep(this.entry(index))) this.move(index, kept++);
    }
    this.count = kept;
    for (let index = (kept >> 1) - 1; index >= 0; index--) this.siftDown(index);
  }

  /** Removes every entry. */
  clear(): void {
    this.count = 0;
    this.reallocate(MIN_CAPACITY);
  }

  private entry(index: number): DueEntry {
    return { dueMs: this.dueMs[index] as number, id: this.ids[index] as number, generation: this.generations[index] as number };
  }

  private less(a: number, b: number): boolean {
    const dueA = this.dueMs[a] as number;
    const dueB = this.dueMs[b] as number;
    if (dueA !== dueB) return dueA < dueB;
    const idA = this.ids[a] as number;
    const idB = this.ids[b] as number;
    if (idA !== idB) return idA < idB;
    return (this.generations[a] as number) < (this.generations[b] as number);
  }

  private set(index: number, dueMs: number, id: number, generation: number): void {
    this.dueMs[index] = dueMs;
    this.ids[index] = id;
    this.generations[index] = generation;
  }

  private move(from: number, to: number): void {
    this.set(to, this.dueMs[from] as number, this.ids[from] as number, this.generations[from] as number);
  }

  private swap(a: number, b: number): void {
    const dueMs = this.dueMs[a] as number;
    const id = this.ids[a] as number;
    const generation = this.generations[a] as number;
    this.move(b, a);
    this.set(b, dueMs, id, generation);
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(index, parent)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let least = index;
      if (left < this.count && this.less(left, least)) least = left;
      if (right < this.count && this.less(right, least)) least = right;
      if (least === index) return;
      this.swap(index, least);
      index = least;
    }
  }

  private reallocate(capacity: number): void {
    const size = Math.max(capacity, MIN_CAPACITY);
    const dueMs = new Float64Array(size);
    const ids = new Float64Array(size);
    const generations = new Uint32Array(size);
    dueMs.set(this.dueMs.subarray(0, this.count));
    ids.set(this.ids.subarray(0, this.count));
    generations.set(this.generations.subarray(0, this.count));
    this.dueMs = dueMs;
    this.ids = ids;
    this.generations = generations;
  }
}
