import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cmd, msg } from "../queue/helpers.js";
import { MEMBERSHIP, closeStore, entryOf, openStore, plainResult, queueKeys, type OpenStore } from "../queue/store-harness.js";
import type { Command } from "../../src/queue/commands.js";
import { DedupRecordBatch } from "../../src/queue/dedup-index.js";
import { DIGEST_WORDS, digestHex } from "../../src/queue/key-digest.js";
import { decodeDedupInto, dedupKey, encodeDedup, parseDedupKey } from "../../src/storage/queue-keys.js";
import { makeTempDir, removeDir } from "./helpers.js";

const WINDOW_MS = 1000;

function hexOf(key: string): string {
  return createHash("md5").update(key, "utf8").digest("hex");
}

/** The stored idempotency records' key suffixes (what follows the incarnation). */
async function storedDigests(open: OpenStore): Promise<string[]> {
  await open.store.settled();
  const keys = (await queueKeys(open.root)).filter((key) => key.includes("!d/"));
  for (const key of keys) expect(key).toMatch(/!d\/[0-9a-f]{8}\/[0-9a-f]{32}$/);
  return keys.map((key) => key.slice(-32)).sort();
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
      expect((await queueKeys(open.root)).filter((key) => key.includes("order-"))).toEqual([]);

      await closeStore(open);
      open = await openStore(dir);
      expect(await apply(cmd.enqueue("q", 2, [msg("a", { idempotencyKey: "order-1" })]))).toMatchObject({ ok: true, value: { ids: [1], duplicates: [true] } });

      // The window of order-1 and order-2 ends: enqueueing order-3 prunes them.
      await apply(cmd.enqueue("q", 1 + WINDOW_MS, [msg("d", { idempotencyKey: "order-3" })]));
      expect(await storedDigests(open)).toEqual([hexOf("order-3")]);

      await apply(cmd.remove("q", 2 + WINDOW_MS));
      expect(await storedDigests(open)).toEqual([]);
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
  it("round-trips a record through its key and 16-byte value", () => {
    const record = { digest: hexOf("order-1"), id: 2 ** 53 - 1, expiresAtMs: 1_700_000_300_000 };
    const key = dedupKey(0xabcdef12, record.digest);
    expect(key).toBe(`d/abcdef12/${record.digest}`);
    const value = encodeDedup(record);
    expect(value.byteLength).toBe(16);

    const digest = new Uint32Array(DIGEST_WORDS);
    expect(parseDedupKey(key, digest)).toBe(0xabcdef12);
    expect(digestHex(digest)).toBe(record.digest);
    const batch = new DedupRecordBatch(10_000);
    // LevelDB hands values over as views into bigger buffers, at any offset.
    const unaligned = new Uint8Array(19);
    unaligned.set(value, 3);
    decodeDedupInto(batch, digest, unaligned.subarray(3));
    expect(batch.length).toBe(1);
    expect(digestHex(batch.digests)).toBe(record.digest);
    expect([batch.ids[0], batch.expiresAtMs[0]]).toEqual([record.id, record.expiresAtMs]);
  });

  it("rejects malformed keys and values, naming them", () => {
    const digest = new Uint32Array(DIGEST_WORDS);
    const good = dedupKey(1, hexOf("k"));
    for (const bad of [good.slice(0, -1), `${good}0`, good.replace("00000001", "00000000"), good.replace("/0000", "/000g"), good.toUpperCase()]) {
      expect(() => parseDedupKey(bad, digest), bad).toThrow(/malformed/);
    }
    expect(() => decodeDedupInto(new DedupRecordBatch(10_000), digest, new Uint8Array(15))).toThrow(/15 bytes: expected 16/);
    expect(() => decodeDedupInto(new DedupRecordBatch(10_000), digest, encodeDedup({ digest: hexOf("k"), id: 0, expiresAtMs: 1 }))).toThrow(/message id 0/);
  });
});
