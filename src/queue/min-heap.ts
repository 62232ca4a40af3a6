/** A binary min-heap ordered by `less`; the order must be total for pops to be deterministic. */
export class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  /** Number of items held. */
  get size(): number {
    return this.items.length;
  }

  /** The least item, without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds an item in O(log n). */
  push(item: T): void {
    this.items.push(item);
    this.siftUp(this.items.length - 1);
  }

  /** Removes and returns the least item in O(log n). */
  pop(): T | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (this.items.length > 0 && last !== undefined) {
      this.items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /**
   * Calls `visit` on every item for which `within` holds, in no particular order, touching only those items
   * and their children. `within` must be monotone with the order: if it fails for an item, it fails for
   * every greater one (e.g. "due at or before t" on a heap ordered by due time).
   */
  visitWithin(within: (item: T) => boolean, visit: (item: T) => void): void {
    const pending = [0];
    for (let index = pending.pop(); index !== undefined; index = pending.pop()) {
      const item = this.items[index];
      if (item === undefined || !within(item)) continue;
      visit(item);
      pending.push(2 * index + 1, 2 * index + 2);
    }
  }

  /** Keeps only the items for which `keep` holds, in O(n). */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let index = (this.items.length >> 1) - 1; index >= 0; index--) this.siftDown(index);
  }

  /** Removes every item. */
  clear(): void {
    this.items = [];
  }

  private siftUp(start: number): void {
    const items = this.items;
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(items[index] as T, items[parent] as T)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    const items = this.items;
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let least = index;
      if (left < items.length && this.less(items[left] as T, items[least] as T)) least = left;
      if (right < items.length && this.less(items[right] as T, items[least] as T)) least = right;
      if (least === index) return;
      this.swap(index, least);
      index = least;
    }
  }

  private swap(a: number, b: number): void {
    const items = this.items;
    const held = items[a] as T;
    items[a] = items[b] as T;
    items[b] = held;
  }
}
