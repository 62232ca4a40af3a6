import { describe, expect, it } from "vitest";
import { DueHeap, type DueEntry } from "../../src/queue/due-heap.js";
import { seededRandom } from "./helpers.js";

function order(a: DueEntry, b: DueEntry): number {
  return a.dueMs - b.dueMs || a.id - b.id || a.generation - b.generation;
}

function drain(heap: DueHeap): DueEntry[] {
  const out: DueEntry[] = [];
  for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
    out.push(top);
    heap.pop();
  }
  return out;
}

describe("DueHeap", () => {
  it("pops by due time, then id, then generation, whatever the push order", () => {
    const random = seededRandom(5);
    const heap = new DueHeap();
    const entries = Array.from({ length: 5000 }, () => ({
      dueMs: Math.floor(random() * 50),
      id: 1 + Math.floor(random() * 100),
      generation: Math.floor(random() * 3),
    }));
    for (const entry of entries) heap.push(entry);
    expect(heap.size).toBe(entries.length);
    expect(drain(heap)).toEqual([...entries].sort(order));
    expect(heap.size).toBe(0);
  });

  it("visits exactly the entries due by a time, and retains only what it is told to keep", () => {
    const heap = new DueHeap();
    for (let id = 1; id <= 100; id++) heap.push({ dueMs: id % 10, id, generation: 0 });
    const visited: number[] = [];
    heap.visitDueBy(3, (entry) => visited.push(entry.id));
    expect(visited.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1).filter((id) => id % 10 <= 3));
    heap.retain((entry) => entry.id % 2 === 0);
    const left = drain(heap);
    expect(left.map((entry) => entry.id).every((id) => id % 2 === 0)).toBe(true);
    expect(left).toHaveLength(50);
    expect(left).toEqual([...left].sort(order));
  });
});
