import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { cmd } from "../queue/helpers.js";
import { MEMBERSHIP, closeStore, entryOf, openStore } from "../queue/store-harness.js";
import { makeTempDir, removeDir } from "./helpers.js";

const MESSAGES = 200_000;
const MESSAGES_PER_ENTRY = 1000;
const BODY_BYTES = 100;
/** The budget: 1,000,000 messages must fit a node well under 300 MB RSS, so bookkeeping stays small. */
const MAX_BYTES_PER_MESSAGE = 150;

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
      const body = new Uint8Array(BODY_BYTES).fill(1);
      const messages = Array.from({ length: MESSAGES_PER_ENTRY }, () => ({ body, idempotencyKey: "", delayMs: 0, headers: {} }));
      const before = heldBytes();
      for (let index = 1; index <= MESSAGES / MESSAGES_PER_ENTRY; index++) {
        const applied = open.store.apply(entryOf(index, { ...cmd.enqueue("backlog", index, []), messages }));
        if (!applied.ok) throw applied.error;
        await open.store.persist(index, MEMBERSHIP);
      }
      const bytesPerMessage = (heldBytes() - before) / MESSAGES;
      console.log(`queue store memory: ${bytesPerMessage.toFixed(1)} bytes per ready message`);
      expect(open.store.machine.stats("backlog", MESSAGES)).toMatchObject({ ok: true, value: { ready: MESSAGES } });
      expect(bytesPerMessage).toBeLessThan(MAX_BYTES_PER_MESSAGE);
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);
});
