import { describe, expect, it } from "vitest";
import { BODY_GROUP_BYTES, BODY_GROUP_IDS, bodyGroupOf, type StoredBody } from "../../src/queue/queue-storage.js";
import { MAX_BATCH_MESSAGES } from "../../src/queue/limits.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { BodyGroupBuilder, BodyGroupCache, BodyGroupRecord, GroupLiveCounts } from "../../src/storage/body-groups.js";
import { cmd, msg } from "../queue/helpers.js";

const text = new TextEncoder();

describe("body group ids", () => {
  /** The body ids each enqueue command's messages got, read back through the leases' bookkeeping. */
  function bodyIdsOf(batches: readonly number[][]): number[][] {
    const machine = new QueueStateMachine();
    const added: number[] = [];
    const storage = machine.storage;
    const bodyAdded = storage.bodyAdded.bind(storage);
    storage.bodyAdded = (bodyId, body) => {
      added.push(bodyId);
      bodyAdded(bodyId, body);
    };
    let nowMs = 1_000;
    expect(machine.apply(cmd.create("q", nowMs, { maxMessageBytes: 4_000_000 })).ok).toBe(true);
    return batches.map((sizes) => {
      const before = added.length;
      const applied = machine.apply(cmd.enqueue("q", (nowMs += 1), sizes.map((size) => msg("x".repeat(size))), true));
      expect(applied.ok).toBe(true);
      return added.slice(before);
    });
  }

  it("gives each enqueue command's bodies a group of their own", () => {
    const [first, second, third] = bodyIdsOf([[10, 10, 10], [10], [10, 10]]);
    const groups = [first!, second!, third!].map((ids) => new Set(ids.map(bodyGroupOf)));
    expect(groups.map((set) => set.size)).toEqual([1, 1, 1]);
    expect(new Set(groups.map((set) => [...set][0])).size).toBe(3);
    expect(second![0]! % BODY_GROUP_IDS).toBe(0);
  });

  it("keeps a whole batch of the largest count in one group", () => {
    const [ids] = bodyIdsOf([Array.from({ length: MAX_BATCH_MESSAGES }, () => 1)]);
    expect(new Set(ids!.map(bodyGroupOf)).size).toBe(1);
  });

  it("opens a new group when a command's payload passes BODY_GROUP_BYTES, a lone big body included", () => {
    const big = BODY_GROUP_BYTES / 4 + 1;
    const [ids] = bodyIdsOf([[big, big, big, big, big, 3 * BODY_GROUP_BYTES, 1]]);
    const groups = ids!.map(bodyGroupOf);
    // Three of a quarter plus one byte fit a group, the fourth opens the next; the oversized body is alone.
    expect(groups[0]).toBe(groups[2]);
    expect(groups[3]).toBe(groups[0]! + 1);
    expect(groups[4]).toBe(groups[3]);
    expect(groups[5]).toBe(groups[4]! + 1);
    expect(groups[6]).toBe(groups[5]! + 1);
  });
});

describe("body group records", () => {
  it("round-trip bodies and headers, and know which ids they hold", () => {
    const builder = new BodyGroupBuilder();
    const base = 7 * BODY_GROUP_IDS;
    builder.add(base, { body: text.encode("zero"), headers: {} });
    builder.add(base + 1, { body: text.encode("one"), headers: { trace: "abc" } });
    builder.add(base + 2, { body: new Uint8Array(0), headers: {} });
    expect(builder.remove(base + 2)).toBe(true);
    expect(builder.remove(base + 5)).toBe(false);
    const record = new BodyGroupRecord(7, builder.encoded());
    expect(record.get(base)).toEqual({ body: text.encode("zero"), headers: {} });
    expect(record.get(base + 1)).toEqual({ body: text.encode("one"), headers: { trace: "abc" } });
    expect(record.get(base + 2)).toBeUndefined();
  });

  it("name a malformed record instead of reading past it", () => {
    const builder = new BodyGroupBuilder();
    builder.add(3, { body: text.encode("abc"), headers: {} });
    const bytes = builder.encoded();
    expect(() => new BodyGroupRecord(0, bytes.subarray(0, bytes.byteLength - 1))).toThrow(/stored body group 0 is malformed: entry 0 lies outside/);
    const longer = new Uint8Array(bytes.byteLength + 2);
    longer.set(bytes);
    expect(() => new BodyGroupRecord(0, longer)).toThrow(/2 bytes after the last body/);
    expect(() => new BodyGroupRecord(0, new Uint8Array(1))).toThrow(/shorter than its header/);
  });

  it("are cached up to a byte budget, least recently read out first", () => {
    const recordOf = (group: number, bytes: number) => {
      const builder = new BodyGroupBuilder();
      builder.add(group * BODY_GROUP_IDS, { body: new Uint8Array(bytes), headers: {} });
      return new BodyGroupRecord(group, builder.encoded());
    };
    const cache = new BodyGroupCache(3_000);
    cache.add(recordOf(1, 1_000));
    cache.add(recordOf(2, 1_000));
    expect(cache.get(1)).toBeDefined();
    cache.add(recordOf(3, 1_000));
    expect(cache.get(2)).toBeUndefined();
    expect(cache.get(1)).toBeDefined();
    expect(cache.get(3)).toBeDefined();
    cache.add(recordOf(4, 5_000));
    expect(cache.get(4)).toBeUndefined();
    cache.delete(3);
    expect(cache.get(3)).toBeUndefined();
  });
});

describe("live bodies per group", () => {
  it("says when a group's last body goes, keeping entries only for groups of two or more", () => {
    const counts = new GroupLiveCounts();
    counts.stored(1, 3);
    counts.stored(2, 1);
    expect([counts.removeOne(1), counts.removeOne(1), counts.removeOne(1)]).toEqual([false, false, true]);
    expect(counts.removeOne(2)).toBe(true);
  });

  it("are rebuilt from the bodies a load found, naming the groups only dropped messages refer to", () => {
    const counts = new GroupLiveCounts();
    const id = (group: number, index: number) => group * BODY_GROUP_IDS + index;
    const live = Float64Array.of(id(5, 1), id(2, 0), id(5, 0), id(9, 3));
    const dropped = Float64Array.of(id(5, 2), id(4, 0), id(4, 1), id(11, 0), id(2, 7));
    expect(counts.restore(live, dropped)).toEqual([4, 11]);
    expect([counts.removeOne(5), counts.removeOne(5)]).toEqual([false, true]);
    expect(counts.removeOne(2)).toBe(true);
    expect(counts.removeOne(9)).toBe(true);
  });
});

describe("group record format", () => {
  /** One body as stored: u32 length of the headers' JSON (0 and no JSON when there are none), the JSON, the body. */
  function storedBytes(stored: StoredBody): Uint8Array {
    const json = Object.keys(stored.headers).length === 0 ? new Uint8Array(0) : text.encode(JSON.stringify(stored.headers));
    const bytes = new Uint8Array(4 + json.byteLength + stored.body.byteLength);
    new DataView(bytes.buffer).setUint32(0, json.byteLength, true);
    bytes.set(json, 4);
    bytes.set(stored.body, 4 + json.byteLength);
    return bytes;
  }

  it("is the directory then each body's length-prefixed headers and bytes, as earlier versions wrote it", () => {
    const bodies: { id: number; stored: StoredBody }[] = [
      { id: 2 * BODY_GROUP_IDS + 5, stored: { body: text.encode("five"), headers: { "content-type": "text/plain", "x-n": "1" } } },
      { id: 2 * BODY_GROUP_IDS + 0, stored: { body: new Uint8Array(0), headers: {} } },
      { id: 2 * BODY_GROUP_IDS + 9, stored: { body: text.encode("nine, no headers"), headers: {} } },
    ];
    const builder = new BodyGroupBuilder();
    for (const { id, stored } of bodies) builder.add(id, stored);
    const parts = bodies.map(({ stored }) => storedBytes(stored));
    const expected = new Uint8Array(2 + 6 * parts.length + parts.reduce((sum, part) => sum + part.byteLength, 0));
    const view = new DataView(expected.buffer);
    view.setUint16(0, parts.length, true);
    let offset = 2 + 6 * parts.length;
    parts.forEach((part, at) => {
      view.setUint16(2 + 6 * at, bodies[at]!.id % BODY_GROUP_IDS, true);
      view.setUint32(2 + 6 * at + 2, part.byteLength, true);
      expected.set(part, offset);
      offset += part.byteLength;
    });
    const record = builder.encoded();
    expect(record).toEqual(expected);
    const read = new BodyGroupRecord(2, record);
    for (const { id, stored } of bodies) expect(read.get(id)).toEqual(stored);
  });
});
