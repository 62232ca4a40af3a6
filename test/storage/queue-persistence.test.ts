import { Level } from "level";
import { describe, expect, it } from "vitest";
import type { LeasedMessage, QueueApplyResult } from "../../src/queue/results.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import type { Entry } from "../../src/raft/types.js";
import { QueueStore } from "../../src/storage/queue-store.js";
import { plainData, seededRandom } from "../queue/helpers.js";
import { RandomCommands } from "../queue/random-commands.js";
import { MEMBERSHIP, closeStore, entryOf, everyStats, openStore, plainResult, storedBodyGroups, type OpenStore } from "../queue/store-harness.js";
import { makeTempDir, removeDir } from "./helpers.js";

const SEEDS = [1, 7, 42, 2024];
const COMMANDS_PER_SEED = 1500;
const MAX_BATCH_ENTRIES = 20;
/** Chance of a crash after applying a batch and before persisting it (the log replays it). */
const CRASH_BEFORE_PERSIST = 0.08;
/** Chance of a clean restart after a persist. */
const RESTART_AFTER_PERSIST = 0.1;

/** The leases of one batch, as the reference and the store returned them. */
interface LeasePair {
  readonly index: number;
  readonly expected: readonly LeasedMessage[];
  readonly actual: readonly LeasedMessage[];
}

function leasedOf(applied: QueueApplyResult): readonly LeasedMessage[] | undefined {
  return applied.kind === "lease" && applied.ok ? applied.value.deliveries : undefined;
}

/** Reopens the store and replays the log after what it persisted, checking the replay's results too. */
async function restart(open: OpenStore, dir: string, log: readonly Entry[], expected: readonly unknown[]): Promise<OpenStore> {
  await closeStore(open);
  const reopened = await openStore(dir);
  const { appliedIndex } = reopened.store.appliedState();
  for (const entry of log.slice(appliedIndex)) {
    expect(plainResult(reopened.store.apply(entry)), `replayed entry ${entry.index}`).toEqual(expected[entry.index - 1]);
  }
  return reopened;
}

describe("queue store persistence", () => {
  it.each(SEEDS)(
    "restarted at random points, answers exactly like an uninterrupted in-memory run (seed %i)",
    async (seed) => {
      const dir = await makeTempDir("queue-persistence");
      const random = seededRandom(seed * 7919 + 1);
      const script = new RandomCommands(seededRandom(seed));
      const reference = new QueueStateMachine();
      const log: Entry[] = [];
      const expectedResults: unknown[] = [];
      let open = await openStore(dir);
      let restarts = 0;
      let leasesRead = 0;
      try {
        while (log.length < COMMANDS_PER_SEED) {
          const batchEntries = 1 + Math.floor(random() * MAX_BATCH_ENTRIES);
          const leases: LeasePair[] = [];
          for (let n = 0; n < batchEntries && log.length < COMMANDS_PER_SEED; n++) {
            const command = script.next();
            const entry = entryOf(log.length + 1, command);
            log.push(entry);
            const expected = reference.applyEncoded(entry.data);
            const actual = open.store.apply(entry);
            expectedResults.push(plainResult(expected));
            expect(plainResult(actual), `entry ${entry.index}: ${command.kind}`).toEqual(plainResult(expected));
            if (expected.kind !== "undecodable") script.observe(expected);
            const expectedLeased = leasedOf(expected);
            const actualLeased = leasedOf(actual);
            if (expectedLeased && actualLeased) leases.push({ index: entry.index, expected: expectedLeased, actual: actualLeased });
          }
          if (random() < CRASH_BEFORE_PERSIST) {
            open = await restart(open, dir, log, expectedResults);
            restarts += 1;
          }
          await open.store.persist(log.length, MEMBERSHIP);
          // The server reads bodies once the batch is persisted: they must be those the reference holds.
          for (const { index, expected, actual } of leases) {
            const read = plainData(await open.store.readDeliveries(actual));
            expect(read, `bodies of the lease at entry ${index}`).toEqual(plainData(await reference.readDeliveries(expected)));
            leasesRead += actual.length;
          }
          expect(everyStats(open.store.machine), `after entry ${log.length}`).toEqual(everyStats(reference));
          if (random() < RESTART_AFTER_PERSIST) {
            open = await restart(open, dir, log, expectedResults);
            restarts += 1;
            expect(open.store.appliedState()).toEqual({ appliedIndex: log.length, membership: MEMBERSHIP });
            expect(everyStats(open.store.machine), `restarted after entry ${log.length}`).toEqual(everyStats(reference));
          }
        }
        expect(restarts).toBeGreaterThan(5);
        expect(leasesRead).toBeGreaterThan(50);

        // Every stored message has its body group and every stored group a message: nothing leaked.
        await open.store.settled();
        const groups = await storedBodyGroups(open.root);
        expect(groups.stored).toEqual(groups.referenced);
      } finally {
        await closeStore(open);
        await removeDir(dir);
      }
    },
    60_000,
  );

  it("refuses a root database whose encodings would misstore its prefixed writes", async () => {
    const dir = await makeTempDir("queue-root-encodings");
    const root = new Level<string, Uint8Array>(dir);
    try {
      await expect(QueueStore.open(root)).rejects.toThrow(/newRootLevel/);
    } finally {
      await root.close();
      await removeDir(dir);
    }
  });
});
