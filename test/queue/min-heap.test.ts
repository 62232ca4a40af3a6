import { describe, expect, it } from "vitest";
import { MinHeap } from "../../src/queue/min-heap.js";
import { seededRandom } from "./helpers.js";

const less = (a: number, b: number): boolean => a < b;

function randomNumbers(seed: number, count: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Math.floor(random() * 1000));
}

function drain(heap: MinHeap<number>): number[] {
  const out: number[] = [];
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) out.push(item);
  return out;
}

describe("MinHeap", () => {
  it("pops in ascending order", () => {
    const values = randomNumbers(1, 500);
    const heap = new MinHeap(less);
    for (const value of values) heap.push(value);
    expect(heap.size).toBe(500);
    expect(drain(heap)).toEqual([...values].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });

  it("visits exactly the items within a bound, without removing them", () => {
    const values = randomNumbers(2, 300);
    const heap = new MinHeap(less);
    for (const value of values) heap.push(value);
    const seen: number[] = [];
    heap.visitWithin((value) => value <= 100, (value) => seen.push(value));
    expect(seen.sort((a, b) => a - b)).toEqual(values.filter((v) => v <= 100).sort((a, b) => a - b));
    expect(heap.size).toBe(300);
  });

  it("retains a subset and stays a heap", () => {
    const values = randomNumbers(3, 300);
    const heap = new MinHeap(less);
    for (const value of values) heap.push(value);
    heap.retain((value) => value % 2 === 0);
    expect(drain(heap)).toEqual(values.filter((v) => v % 2 === 0).sort((a, b) => a - b));
  });
});
