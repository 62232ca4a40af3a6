import { randomUUID } from "node:crypto";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { DedupIndex } from "../../src/queue/dedup-index.js";
import { digestKey } from "../../src/queue/key-digest.js";
import { MAX_DEDUP_KEYS_PER_QUEUE } from "../../src/queue/limits.js";
import { cmd } from "../queue/helpers.js";
import { MEMBERSHIP, closeStore, entryOf, openStore, type OpenStore } from "../queue/store-harness.js";
import { makeTempDir, removeDir } from "./helpers.js";

const MESSAGES = 200_000;
const MESSAGES_PER_ENTRY = 1000;
const BODY_BYTES = 100;
/** The budget: 1,000,000 messages must fit a node well under 300 MB RSS, so bookkeeping stays small. */
const MAX_BYTES_PER_MESSAGE = 150;
/** What one remembered idempotency key may add (the SDK sends a key with every message by default). */
const MAX_BYTES_PER_KEY = 64;
/** Keys between two measurements of the dedup index, so the table and ring are caught at varied fill. */
const KEYS_PER_MEASUREMENT = 50_000;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** JS heap plus memory outside it that JS objects own (typed arrays), after a full collection. */
function heldBytes(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

describe("queue store memory", () => {
  it(`holds ${MESSAGES} persisted messages of ${BODY_BYTES} bytes in under ${MAX_BYTES_PER_MESSAGE} bytes each`, async () => {
    const dir = await makeTempDir("queue-memory");
    const open = await openStore(dir);
    try {
      const bytesPerMessage = await fillBacklog(open, () => "");
      console.log(`queue store memory: ${bytesPerMessage.toFixed(1)} bytes per ready message`);
      expect(bytesPerMessage).toBeLessThan(MAX_BYTES_PER_MESSAGE);
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);

  it(`holds ${MESSAGES} persisted messages with idempotency keys in under ${MAX_BYTES_PER_MESSAGE + MAX_BYTES_PER_KEY} bytes each`, async () => {
    const dir = await makeTempDir("queue-memory");
    const open = await openStore(dir);
    try {
      const bytesPerMessage = await fillBacklog(open, randomUUID);
      console.log(`queue store memory: ${bytesPerMessage.toFixed(1)} bytes per ready message with a UUID idempotency key`);
      expect(bytesPerMessage).toBeLessThan(MAX_BYTES_PER_MESSAGE + MAX_BYTES_PER_KEY);
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);
});

/** Enqueues and persists MESSAGES ready messages, each with the key `keyOf` makes; returns bytes held per message. */
async function fillBacklog(open: OpenStore, keyOf: () => string): Promise<number> {
  const body = new Uint8Array(BODY_BYTES).fill(1);
  const before = heldBytes();
  for (let index = 1; index <= MESSAGES / MESSAGES_PER_ENTRY; index++) {
    const messages = Array.from({ length: MESSAGES_PER_ENTRY }, () => ({ body, idempotencyKey: keyOf(), delayMs: 0, headers: {} }));
    const applied = open.store.apply(entryOf(index, { ...cmd.enqueue("backlog", index, []), messages }));
    if (!applied.ok) throw applied.error;
    await open.store.persist(index, MEMBERSHIP);
  }
  const bytesPerMessage = (heldBytes() - before) / MESSAGES;
  expect(open.store.machine.stats("backlog", MESSAGES)).toMatchObject({ ok: true, value: { ready: MESSAGES } });
  return bytesPerMessage;
}

describe("dedup index memory", () => {
  it(`holds ${MAX_DEDUP_KEYS_PER_QUEUE} idempotency keys in under ${MAX_BYTES_PER_KEY} bytes each, at every fill on the way`, () => {
    const before = heldBytes();
    const index = new DedupIndex(300_000, MAX_DEDUP_KEYS_PER_QUEUE, { remembered: () => {}, forgotten: () => {} });
    const measured: number[] = [];
    for (let id = 1; id <= MAX_DEDUP_KEYS_PER_QUEUE; id++) {
      index.remember(digestKey(randomUUID()), id, Math.floor(id / 1000));
      if (id % KEYS_PER_MEASUREMENT === 0) measured.push((heldBytes() - before) / id);
    }
    expect(index.size).toBe(MAX_DEDUP_KEYS_PER_QUEUE);
    const atLimit = measured[measured.length - 1] as number;
    console.log(
      `dedup index memory: ${atLimit.toFixed(1)} bytes per key at ${MAX_DEDUP_KEYS_PER_QUEUE} keys, ` +
        `at most ${Math.max(...measured).toFixed(1)} at multiples of ${KEYS_PER_MEASUREMENT}`,
    );
    expect(Math.max(...measured)).toBeLessThan(MAX_BYTES_PER_KEY);
  }, 60_000);
});
