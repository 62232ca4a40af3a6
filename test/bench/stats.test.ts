import { describe, expect, it } from "vitest";
import { median, percentile, spread } from "../../src/bench/stats.js";

describe("percentile (nearest rank)", () => {
  const oneToHundred = Array.from({ length: 100 }, (_, index) => 100 - index);

  it("returns a measured value: p50 and p99 of 1..100 are 50 and 99", () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 99)).toBe(99);
  });

  it("p0 is the minimum and p100 the maximum", () => {
    expect(percentile([3, 1, 2], 0)).toBe(1);
    expect(percentile([3, 1, 2], 100)).toBe(3);
  });

  it("rounds the rank up on small samples", () => {
    expect(percentile([10, 20, 30, 40], 50)).toBe(20);
    expect(percentile([10, 20, 30, 40], 51)).toBe(30);
    expect(percentile([7], 99)).toBe(7);
  });

  it("sorts numerically, not as strings", () => {
    expect(percentile([9, 10, 100], 50)).toBe(10);
  });

  it("is NaN for no values and refuses a percentile outside 0..100", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe("median and spread", () => {
  it("takes the middle value, or the mean of the two middle ones", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("reports median, min and max of runs without changing the input", () => {
    const runs = [1200, 900, 1500];
    expect(spread(runs)).toEqual({ median: 1200, min: 900, max: 1500 });
    expect(runs).toEqual([1200, 900, 1500]);
  });
});
