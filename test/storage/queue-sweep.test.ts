/**
 * Purging or deleting a big queue: the Raft step's batch stays small (the records are deleted in the
 * background, a bounded number per LevelDB batch), reads never see the dropped messages, and records a
 * stop left behind are recognised and swept by the next open. (With the deletes in the step's batch,
 * `make bench` saw each node's event loop held for over a second per 60,000 messages, and elections.)
 */
import { describe, expect, it } from "vitest";
import type { Command, NewMessage } from "../../src/queue/commands.js";
import type { LeasedMessage } from "../../src/queue/results.js";
import type { Entry } from "../../src/raft/types.js";
import type { RootBatch } from "../../src/storage/level-raft-storage.js";
import { SWEEP_KEYS_PER_BATCH } from "../../src/storage/queue-sweeper.js";
import { MEMBERSHIP, closeStore, entryOf, openStore, queueKeys, storedBodyGroups, type OpenStore } from "../queue/store-harness.js";
import { makeTempDir, removeDir } from "./helpers.js";

const QUEUE = "big";
const MESSAGES = 20_000;
const PER_ENTRY = 1_000;
const NOW_MS = 1_000_000;

/** Applies commands one entry each, numbering entries on from the store's applied index. */
class Feeder {
  private index: number;

  constructor(private open: OpenStore) {
    this.index = open.store.appliedState().appliedIndex;
  }

  reopenedAs(open: OpenStore): void {
    this.open = open;
    this.index = open.store.appliedState().appliedIndex;
  }

  apply(command: Command): ReturnType<OpenStore["store"]["apply"]> {
    this.index += 1;
    const entry: Entry = entryOf(this.index, command);
    return this.open.store.apply(entry);
  }

  /** Persists what was applied since the last persist, in one root batch; returns the batch's size. */
  async persist(): Promise<number> {
    const batch: RootBatch = this.open.root.batch();
    this.open.store.stageWrites(batch, this.index, MEMBERSHIP);
    const operations = batch.length;
    await batch.write({ sync: true });
    this.open.store.writesDone();
    return operations;
  }

  /** Fills QUEUE with `count` messages, each with an idempotency key. */
  async fill(count: number, from = 0): Promise<void> {
    for (let first = from; first < from + count; first += PER_ENTRY) {
      const messages: NewMessage[] = [];
      for (let n = first; n < Math.min(from + count, first + PER_ENTRY); n++) {
        messages.push({ body: new TextEncoder().encode(`m${n}`), idempotencyKey: `key-${n}`, delayMs: 0, headers: {} });
      }
      const result = this.apply({ kind: "enqueue", nowMs: NOW_MS, queue: QUEUE, autoCreate: true, messages });
      expect(result.ok).toBe(true);
    }
    await this.persist();
  }

  lease(max: number): readonly LeasedMessage[] {
    const result = this.apply({ kind: "lease", nowMs: NOW_MS, queue: QUEUE, maxMessages: max, visibilityTimeoutMs: 30_000 } as Command);
    if (result.kind !== "lease" || !result.ok) throw new Error(`lease failed: ${JSON.stringify(result)}`);
    return result.value.deliveries;
  }
}

function statsOf(open: OpenStore): unknown {
  const outcome = open.store.machine.stats(QUEUE, NOW_MS);
  if (!outcome.ok) throw new Error(`stats failed: ${outcome.error.message}`);
  return outcome.value;
}

/**
 * Stored message records, body group records (one per enqueue command), and chunks of idempotency keys
 * (one per queue per persisted batch). Checks that each message's body group is stored, and nothing else.
 */
async function recordCounts(open: OpenStore): Promise<{ messages: number; bodyGroups: number; keyChunks: number }> {
  const keys = await queueKeys(open.root);
  const groups = await storedBodyGroups(open.root);
  expect(groups.stored).toEqual(groups.referenced);
  return {
    messages: keys.filter((key) => key.includes("!m/")).length,
    bodyGroups: groups.stored.length,
    keyChunks: keys.filter((key) => key.includes("!d/")).length,
  };
}

describe("dropping big queues", () => {
  it("a purge adds a few records to the step's batch; the rest is swept in the background", async () => {
    const dir = await makeTempDir("queue-sweep");
    const open = await openStore(dir);
    try {
      const feeder = new Feeder(open);
      await feeder.fill(MESSAGES);
      const leased = feeder.lease(10);
      await feeder.persist();

      expect(feeder.apply({ kind: "purgeQueue", nowMs: NOW_MS, queue: QUEUE }).ok).toBe(true);
      expect(await feeder.persist()).toBeLessThan(10);
      // A lease taken before the purge is answered without the purged messages, swept or not.
      expect(await open.store.readDeliveries(leased)).toEqual([]);
      await open.store.settled();
      expect(await recordCounts(open)).toEqual({ messages: 0, bodyGroups: 0, keyChunks: 1 });

      // The queue goes on: new ids, new messages delivered.
      await feeder.fill(5, MESSAGES);
      const fresh = feeder.lease(10);
      await feeder.persist();
      expect((await open.store.readDeliveries(fresh)).map((d) => new TextDecoder().decode(d.body))).toEqual(["m20000", "m20001", "m20002", "m20003", "m20004"]);
      expect(statsOf(open)).toMatchObject({ ready: 0, inFlight: 5 });
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);

  it("what a stop left unswept is skipped by the next open and swept then", async () => {
    const dir = await makeTempDir("queue-sweep");
    let open = await openStore(dir);
    try {
      const feeder = new Feeder(open);
      await feeder.fill(MESSAGES);
      expect(feeder.apply({ kind: "purgeQueue", nowMs: NOW_MS, queue: QUEUE }).ok).toBe(true);
      await feeder.persist();
      await closeStore(open); // stops the sweep between two of its batches
      open = await openStore(dir);
      // Far more is left than one sweep batch deletes: the stop really cut the sweep short.
      const left = await recordCounts(open);
      expect(left.messages).toBeGreaterThan(SWEEP_KEYS_PER_BATCH);
      expect(statsOf(open)).toMatchObject({ ready: 0, inFlight: 0, purgedTotal: MESSAGES });

      feeder.reopenedAs(open);
      await feeder.fill(3, MESSAGES);
      await open.store.settled();
      expect(await recordCounts(open)).toEqual({ messages: 3, bodyGroups: 1, keyChunks: 2 });
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);

  it("deleting a queue drops its messages and idempotency keys; a namesake starts empty", async () => {
    const dir = await makeTempDir("queue-sweep");
    let open = await openStore(dir);
    try {
      const feeder = new Feeder(open);
      await feeder.fill(MESSAGES);
      expect(feeder.apply({ kind: "deleteQueue", nowMs: NOW_MS, queue: QUEUE }).ok).toBe(true);
      expect(await feeder.persist()).toBeLessThan(10);
      await closeStore(open);
      open = await openStore(dir);
      expect(open.store.machine.listQueues()).toEqual([]);

      // The same keys in a new queue of the same name are new messages, not duplicates.
      feeder.reopenedAs(open);
      await feeder.fill(3);
      expect(statsOf(open)).toMatchObject({ ready: 3 });
      await open.store.settled();
      expect(await recordCounts(open)).toEqual({ messages: 3, bodyGroups: 1, keyChunks: 1 });
      expect((await queueKeys(open.root)).filter((key) => key.includes("!e/"))).toEqual([]);
    } finally {
      await closeStore(open);
      await removeDir(dir);
    }
  }, 60_000);
});
