import { describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES, MAX_FRAME_MESSAGES, packFrames, splitInOrder } from "../../src/protocol/frames.js";

describe("splitInOrder", () => {
  const size = (n: number): number => n;

  it("keeps order and cuts runs at the item count", () => {
    expect(splitInOrder([1, 2, 3, 4, 5], () => 1, 2, 100)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("cuts runs before they pass the byte budget, an oversized item alone", () => {
    expect(splitInOrder([40, 50, 20, 150, 10, 10], size, 100, 100)).toEqual([[40, 50], [20], [150], [10, 10]]);
  });

  it("returns no runs for no items", () => {
    expect(splitInOrder([], size, 10, 10)).toEqual([]);
  });
});

describe("packFrames", () => {
  it("packs at most MAX_FRAME_MESSAGES small messages a frame", () => {
    const frames = packFrames(Array.from({ length: 2 * MAX_FRAME_MESSAGES + 1 }, (_, n) => n), () => 100);
    expect(frames.map((frame) => frame.length)).toEqual([MAX_FRAME_MESSAGES, MAX_FRAME_MESSAGES, 1]);
    expect(frames.flat()).toEqual(Array.from({ length: 2 * MAX_FRAME_MESSAGES + 1 }, (_, n) => n));
  });

  it("keeps a frame within MAX_FRAME_BYTES", () => {
    const half = MAX_FRAME_BYTES / 2;
    expect(packFrames([half, half, 1], (bytes) => bytes)).toEqual([[half, half], [1]]);
  });
});
