import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cmd, msg } from "../queue/helpers.js";
import { MEMBERSHIP, closeStore, entryOf, openStore, plainResult, queueKeys, type OpenStore } from "../queue/store-harness.js";
import type { Command } from "../../src/queue/commands.js";
import { digestHex, parseDigestHex } from "../../src/queue/key-digest.js";
import {
  DEDUP_CHUNK_PREFIX,
  DEDUP_FRONT_PREFIX,
  DedupChunkBuilder,
  atOrBefore,
  decodeDedupFront,
  dedupChunkKey,
  dedupFrontKey,
  encodeDedupFront,
  parseDedupChunkKey,
  parseDedupFrontKey,
  readDedupChunk,
} from "../../src/storage/dedup-chunks.js";
import { QUEUE_SUBLEVEL } from "../../src/storage/queue-keys.js";
import { makeTempDir, removeDir } from "./helpers.js";

const WINDOW_MS = 1000;

function hexOf(key: string): string {
  return createHash("md5").update(key, "utf8").digest("hex");
}

/** Every stored record of the queue store whose key (after the generation) starts with `prefix`. */
async function storedRecords(open: OpenStore, prefix: string): Promise<[string, Uint8Array][]> {
  await open.store.settled();
  const level = open.root.sublevel<string, Uint8Array>(QUEUE_SUBLEVEL, { keyEncoding: "utf8", valueEncoding: "view" });
  const records: [string, Uint8Array][] = [];
  for await (const [key, value] of level.iterator()) {
    const at = key.indexOf(`!${prefix}`);
    if (at >= 0) records.push([key.slice(at + 1), value]);
  }
  return records;
}

/** The digests (hex) of the keys the store holds: the chunks' keys past each queue's front. */
async function storedDigests(open: OpenStore): Promise<string[]> {
  const fronts = new Map((await storedRecords(open, DEDUP_FRONT_PREFIX)).map(([key, value]) => [parseDedupFrontKey(key), decodeDedupFront(value)]));
  const digests: string[] = [];
  for (const [key, value] of await storedRecords(open, DEDUP_CHUNK_PREFIX)) {
    const front = fronts.get(parseDedupChunkKey(key).incarnation) ?? { expiresAtMs: -Infinity, id: 0 };
    readDedupChunk(value, (digest, id, expiresAtMs) => {
      if (!atOrBefore({ expiresAtMs, id }, front)) digests.push(digestHex(digest));
    });
  }
  return digests.sort();
}

describe("queue store idempotency records", () => {
  it("stores keys by digest only, forgets them by digest, and answers duplicates after a restart", async () => {
    const dir = await makeTempDir("queue-dedup");
    let open = await openStore(dir);
    let index = 0;
    const apply = async (command: Command): Promise<unknown> => {
      index += 1;
      const result = plainResult(open.store.apply(entryOf(index, command)));
      await open.store.persist(index, MEMBERSHIP);
      return result;
    };
    try {
      await apply(cmd.create("q", 0, { dedupWindowMs: WINDOW_MS }));
      await apply(cmd.enqueue("q", 1, [msg("a", { idempotencyKey: "order-1" }), msg("b", { idempotencyKey: "order-2" }), msg("c")]));
      expect(await storedDigests(open)).toEqual([hexOf("order-1"), hexOf("order-2")].sort());
      // One record for the batch's keys, not one per key.
      expect(await storedRecords(open, DEDUP_CHUNK_PREFIX)).toHaveLength(1);
      expect((await queueKeys(open.root)).filter((key) => key.includes("order-"))).toEqual([]);

      await closeStore(open);
      open = await openStore(dir);
      expect(await apply(cmd.enqueue("q", 2, [msg("a", { idempotencyKey: "order-1" })]))).toMatchObject({ ok: true, value: { ids: [1], duplicates: [true] } });

      // The window of order-1 and order-2 ends: enqueueing order-3 prunes them.
      await apply(cmd.enqueue("q", 1 + WINDOW_MS, [msg("d", { idempotencyKey: "order-3" })]));
      expect(await storedDigests(open)).toEqual([hexOf("order-3")]);
      // The chunk every key of which is forgotten went in the same batch as the front moved.
      expect(await storedRecords(open, DEDUP_CHUNK_PREFIX)).toHaveLength(1);

      await closeStore(open);
      open = await openStore(dir);
      expect(await apply(cmd.enqueue("q", 3 + WINDOW_MS, [msg("e", { idempotencyKey: "order-1" })]))).toMatchObject({ ok: true, value: { duplicates: [false] } });
      expect(await apply(cmd.enqueue("q", 4 + WINDOW_MS, [msg("f", { idempotencyKey: "order-3" })]))).toMatchObject({ ok: true, value: { duplicates: [true] } });

      await apply(cmd.remove("q", 5 + WINDOW_MS));
      expect(await storedDigests(open)).toEqual([]);
      expect(await storedRecords(open, DEDUP_FRONT_PREFIX)).toEqual([]);
      await closeStore(open);
      open = await openStore(dir);
      expect(open.store.machine.listQueues()).toEqual([]);
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  });
});

describe("queue store idempotency record format", () => {
  it("round-trips chunks, their keys and fronts", () => {
    expect(dedupChunkKey(0xabcdef12, 0x1f)).toBe("d/abcdef12/0000000000001f");
    expect(parseDedupChunkKey("d/abcdef12/0000000000001f")).toEqual({ incarnation: 0xabcdef12, seq: 0x1f });
    expect(dedupFrontKey(7)).toBe("e/00000007");
    expect(parseDedupFrontKey("e/00000007")).toBe(7);
    const front = { expiresAtMs: 1_700_000_300_000, id: 2 ** 53 - 1 };
    expect(decodeDedupFront(encodeDedupFront(front))).toEqual(front);

    const builder = new DedupChunkBuilder();
    const keys = Array.from({ length: 40 }, (_, n) => ({ digest: parseDigestHex(hexOf(`order-${n}`)), id: n + 1, expiresAtMs: 1_000 + n }));
    for (const key of keys) builder.add(key.digest, key.id, key.expiresAtMs);
    expect(builder.last).toEqual({ expiresAtMs: 1_039, id: 40 });
    // LevelDB hands values over as views into bigger buffers, at any offset.
    const encoded = builder.encoded();
    const unaligned = new Uint8Array(encoded.byteLength + 3);
    unaligned.set(encoded, 3);
    const read: { digest: string; id: number; expiresAtMs: number }[] = [];
    readDedupChunk(unaligned.subarray(3), (digest, id, expiresAtMs) => read.push({ digest: digestHex(digest), id, expiresAtMs }));
    expect(read).toEqual(keys.map((key) => ({ ...key, digest: digestHex(key.digest) })));
  });

  it("rejects malformed keys and values, naming them", () => {
    const good = dedupChunkKey(1, 2);
    for (const bad of [good.slice(0, -1), `${good}0`, good.replace("/0000", "/000g"), good.toUpperCase(), "e/00000001"]) {
      expect(() => parseDedupChunkKey(bad), bad).toThrow(/malformed/);
    }
    for (const bad of ["e/0000001", "e/0000000g", "d/00000001"]) expect(() => parseDedupFrontKey(bad), bad).toThrow(/malformed/);
    expect(() => readDedupChunk(new Uint8Array(31), () => undefined)).toThrow(/31 bytes: expected a positive multiple of 32/);
    expect(() => readDedupChunk(new Uint8Array(0), () => undefined)).toThrow(/0 bytes/);
    expect(() => decodeDedupFront(new Uint8Array(15))).toThrow(/15 bytes: expected 16/);
  });
});
