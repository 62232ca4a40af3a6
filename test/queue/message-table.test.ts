import { describe, expect, it } from "vitest";
import { MessageState, type MessageMeta } from "../../src/queue/message-meta.js";
import { MessageTable } from "../../src/queue/message-table.js";
import { seededRandom } from "./helpers.js";

function meta(id: number, extra = 0): MessageMeta {
  return {
    id,
    bodyId: id * 3 + extra,
    payloadBytes: (id * 7) % 4_000_000,
    enqueuedAtMs: id * 11,
    state: (id + extra) % 3 as MessageState,
    dueMs: id * 13 + extra,
    deliveryCount: extra,
    generation: (id + extra) >>> 0,
  };
}

describe("MessageTable", () => {
  it.each([1, 2, 3])("agrees with a Map through random adds, updates and deletes, growing and shrinking (seed %i)", (seed) => {
    const random = seededRandom(seed);
    const table = new MessageTable();
    const model = new Map<number, MessageMeta>();
    // A moving window of mostly consecutive ids with stragglers, like a queue's live ids; then a drain.
    let nextId = 1;
    for (let step = 0; step < 60_000; step++) {
      const draining = step > 45_000;
      const roll = random();
      if (!draining && roll < 0.5) {
        const record = meta(nextId++);
        table.set(record);
        model.set(record.id, record);
      } else if (roll < 0.65 && model.size > 0) {
        const id = 1 + Math.floor(random() * nextId);
        if (model.has(id)) {
          const record = meta(id, step);
          table.set(record);
          model.set(id, record);
        }
      } else {
        const id = draining ? (model.keys().next().value ?? 1) : 1 + Math.floor(random() * nextId);
        expect(table.delete(id)).toBe(model.delete(id));
      }
      if (step % 2999 === 0) {
        expect(table.size).toBe(model.size);
        const wrong = [...model].filter(([id, record]) => JSON.stringify(table.get(id)) !== JSON.stringify(record));
        expect(wrong, `step ${step}`).toEqual([]);
        expect(table.get(nextId + 5)).toBeUndefined();
      }
    }
    expect(table.size).toBe(model.size);
    expect([...table.allIds()].sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
    const bodyIds = [...table.allIds()].map((id) => model.get(id)?.bodyId);
    expect([...table.allBodyIds()]).toEqual(bodyIds);
  });

  it("answers the liveness questions of the indexes without copying", () => {
    const table = new MessageTable();
    table.set({ ...meta(5), state: MessageState.Ready, deliveryCount: 0, generation: 2 });
    expect(table.isFreshReady(5)).toBe(true);
    expect(table.isAt(5, MessageState.Ready, 2)).toBe(true);
    expect(table.isAt(5, MessageState.Ready, 1)).toBe(false);
    table.set({ ...meta(5), state: MessageState.Ready, deliveryCount: 1, generation: 3 });
    expect(table.isFreshReady(5)).toBe(false);
    expect(table.isFreshReady(6)).toBe(false);
    expect(table.clear()).toBe(1);
    expect(table.has(5)).toBe(false);
  });

  it("holds its records across a reserve, before and after it, and keeps them findable", () => {
    const table = new MessageTable();
    for (let id = 1; id <= 100; id++) table.set(meta(id));
    table.reserve(50_000);
    table.reserve(10); // smaller than what it holds: nothing to do
    for (let id = 101; id <= 50_000; id++) table.set(meta(id));
    expect(table.size).toBe(50_000);
    for (const id of [1, 100, 101, 25_000, 50_000]) expect(table.get(id)).toEqual(meta(id));
    expect(table.has(50_001)).toBe(false);
  });
});
