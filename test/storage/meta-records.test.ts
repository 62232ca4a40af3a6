import { describe, expect, it } from "vitest";
import { MessageState, type MessageMeta } from "../../src/queue/message-meta.js";
import { MetaEncoder, decodeMeta } from "../../src/storage/queue-keys.js";

function meta(id: number): MessageMeta {
  return {
    id,
    bodyId: 1_000_000 + id,
    payloadBytes: 100 + (id % 7),
    enqueuedAtMs: 1_700_000_000_000 + id,
    state: id % 3 === 0 ? MessageState.InFlight : id % 3 === 1 ? MessageState.Delayed : MessageState.Ready,
    dueMs: id % 3 === 2 ? 0 : 1_700_000_030_000 + id,
    deliveryCount: id % 5,
    generation: 9,
  };
}

describe("message records", () => {
  it("decode to what was encoded (all but the generation, which memory alone keeps)", () => {
    const encoder = new MetaEncoder();
    const record = encoder.encode(meta(42));
    expect(record.byteLength).toBe(37);
    expect(decodeMeta(42, record)).toEqual({ ...meta(42), generation: 0 });
  });

  it("each keep their own bytes across the encoder's shared chunks", () => {
    const encoder = new MetaEncoder();
    const ids = Array.from({ length: 2_500 }, (_, at) => at + 1);
    const records = ids.map((id) => encoder.encode(meta(id)));
    ids.forEach((id, at) => expect(decodeMeta(id, records[at]!)).toEqual({ ...meta(id), generation: 0 }));
    expect(new Set(records.map((record) => record.buffer)).size).toBe(3);
  });
});
