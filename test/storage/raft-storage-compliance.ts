/**
 * The contract every RaftStorage must meet, as one suite each implementation runs (the way abstract-level
 * ships one suite for every backend). Register it with `describeRaftStorageCompliance`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EMPTY_HARD_STATE, EntryType, type Entry, type HardState } from "../../src/raft/types.js";
import { isInvalidPersistStepError } from "../../src/storage/errors.js";
import type { PersistStep, RaftStorage, StoredLog } from "../../src/storage/raft-storage.js";
import { MAX_ENTRY_DATA_BYTES, MAX_STEP_ENTRIES, MAX_VOTE_BYTES } from "../../src/storage/raft-storage.js";
import { entries, entry, NO_LOG_START, snapshot, step } from "./helpers.js";

/** A storage under test and how to dispose of it. */
export interface StorageFixture {
  readonly storage: RaftStorage;
  /** Closes the storage and removes anything it left behind. */
  dispose(): Promise<void>;
}

/** Registers the compliance suite for storages made by `create`, one fresh and empty storage per test. */
export function describeRaftStorageCompliance(name: string, create: () => Promise<StorageFixture>): void {
  describe(`${name} (RaftStorage compliance)`, () => {
    let fixture: StorageFixture;
    let storage: RaftStorage;

    beforeEach(async () => {
      fixture = await create();
      storage = fixture.storage;
    });
    afterEach(async () => {
      await fixture.dispose();
    });

    async function saveAll(...steps: PersistStep[]): Promise<void> {
      for (const s of steps) await storage.save(s);
    }

    /** Entries 1..3 in term 1 and 4..5 in term 2, committed through 3: the base of the compaction tests. */
    const COMMITTED_3: HardState = { term: 2, vote: "n1", commit: 3 };
    const LOG_1_TO_5: readonly Entry[] = [...entries(1, 3, 1), ...entries(4, 5, 2)];

    it("loads an empty state from a new storage", async () => {
      expect(await storage.load()).toEqual({ hardState: EMPTY_HARD_STATE, logStart: NO_LOG_START, entries: [] });
    });

    it("appends entries across steps", async () => {
      await saveAll(step({ entries: entries(1, 3, 1) }), step({ entries: entries(4, 5, 2) }));
      expect((await storage.load()).entries).toEqual([...entries(1, 3, 1), ...entries(4, 5, 2)]);
    });

    it("overwrites a suffix with a longer one, deleting nothing before it", async () => {
      await saveAll(step({ entries: entries(1, 5, 1) }), step({ entries: entries(3, 7, 2) }));
      expect((await storage.load()).entries).toEqual([...entries(1, 2, 1), ...entries(3, 7, 2)]);
    });

    it("overwrites a suffix with a shorter one, deleting the rest of the old log", async () => {
      await saveAll(step({ entries: entries(1, 6, 1) }), step({ entries: [entry(3, 2)] }));
      expect((await storage.load()).entries).toEqual([...entries(1, 2, 1), entry(3, 2)]);
      // The deleted tail must stay deleted: appending after the new end continues from index 4.
      await storage.save(step({ entries: [entry(4, 2)] }));
      expect((await storage.load()).entries).toEqual([...entries(1, 2, 1), ...entries(3, 4, 2)]);
    });

    it("overwrites the whole log from index 1", async () => {
      await saveAll(step({ entries: entries(1, 4, 1) }), step({ entries: entries(1, 2, 3) }));
      expect((await storage.load()).entries).toEqual(entries(1, 2, 3));
    });

    it("round-trips the hard state together with entries", async () => {
      const hardState = { term: 7, vote: "n2", commit: 2 };
      await storage.save(step({ hardState, entries: entries(1, 3, 7) }));
      expect(await storage.load()).toEqual({ hardState, logStart: NO_LOG_START, entries: entries(1, 3, 7) });
    });

    it("keeps a non-ASCII vote exactly", async () => {
      const hardState = { term: 1, vote: "nœud-ü-🚀", commit: 0 };
      await storage.save(step({ hardState }));
      expect((await storage.load()).hardState).toEqual(hardState);
    });

    it("saves the hard state alone, leaving the log as it was", async () => {
      await storage.save(step({ entries: entries(1, 2, 1) }));
      await storage.save(step({ hardState: { term: 2, vote: "n1", commit: 1 } }));
      expect(await storage.load()).toEqual({ hardState: { term: 2, vote: "n1", commit: 1 }, logStart: NO_LOG_START, entries: entries(1, 2, 1) });
    });

    it("saves entries alone, leaving the hard state as it was", async () => {
      const hardState = { term: 3, vote: "n3", commit: 0 };
      await storage.save(step({ hardState }));
      await storage.save(step({ entries: entries(1, 2, 3) }));
      expect(await storage.load()).toEqual({ hardState, logStart: NO_LOG_START, entries: entries(1, 2, 3) });
    });

    it("accepts an empty step as a no-op", async () => {
      await storage.save(step({ hardState: { term: 1, vote: "", commit: 0 }, entries: [entry(1, 1)] }));
      const before = await storage.load();
      await storage.save(step({}));
      expect(await storage.load()).toEqual(before);
    });

    it("preserves every byte value, empty data and a large payload", async () => {
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const log = [entry(1, 1, allBytes), entry(2, 1, new Uint8Array(0))];
      log.push({ index: 3, term: 1, type: EntryType.Noop, data: new Uint8Array(0) });
      const large = new Uint8Array(256 * 1024);
      for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
      await storage.save(step({ entries: [...log, entry(4, 1, large)] }));
      const loaded = (await storage.load()).entries;
      expect(loaded.slice(0, 3)).toEqual(log);
      // Compared as Buffers: element-wise deep equality on 256 KiB is needlessly slow.
      expect(Buffer.from(loaded[3]?.data ?? []).equals(large)).toBe(true);
      for (const e of loaded) expect(e.data.constructor).toBe(Uint8Array);
    });

    it("stores a copy: changing the caller's buffers after save or after load changes nothing", async () => {
      const data = Uint8Array.of(1, 2, 3);
      await storage.save(step({ entries: [entry(1, 1, data)] }));
      data[0] = 99;
      const first = await storage.load();
      first.entries[0]?.data.fill(42);
      expect((await storage.load()).entries).toEqual([entry(1, 1, Uint8Array.of(1, 2, 3))]);
    });

    it("keeps large indexes and terms exact up to Number.MAX_SAFE_INTEGER", async () => {
      const term = Number.MAX_SAFE_INTEGER;
      await storage.save(step({ hardState: { term, vote: "n1", commit: 0 }, entries: [entry(1, 2 ** 40 + 3), entry(2, term)] }));
      expect(await storage.load()).toEqual({
        hardState: { term, vote: "n1", commit: 0 },
        logStart: NO_LOG_START,
        entries: [entry(1, 2 ** 40 + 3), entry(2, term)],
      });
    });

    describe("rejects an invalid step and leaves the stored state unchanged", () => {
      const base: PersistStep = step({ hardState: { term: 2, vote: "n1", commit: 3 }, entries: [...entries(1, 2, 1), ...entries(3, 4, 2)] });
      const invalid: ReadonlyArray<readonly [string, PersistStep, RegExp]> = [
        ["a gap after the last index", step({ entries: [entry(6, 2)] }), /gap after the last log index 4/],
        ["non-contiguous entries", step({ entries: [entry(5, 2), entry(7, 2)] }), /not contiguous/],
        ["a first index of 0", step({ entries: [entry(0, 2)] }), /not a positive safe integer/],
        ["a fractional index", step({ entries: [entry(4.5, 2)] }), /not a positive safe integer/],
        ["terms decreasing within the step", step({ entries: [entry(5, 3), entry(6, 2)] }), /below the term 3/],
        ["a term below the entry before the step", step({ entries: [entry(4, 1)] }), /below the term 2/],
        ["an unknown entry type", step({ entries: [{ index: 5, term: 2, type: 7 as EntryType, data: new Uint8Array(0) }] }), /unknown type 7/],
        ["a term moving back", step({ hardState: { term: 1, vote: "n1", commit: 3 } }), /term moves back/],
        ["a second vote in the same term", step({ hardState: { term: 2, vote: "n2", commit: 3 } }), /votes at most once per term/],
        ["commit moving back", step({ hardState: { term: 2, vote: "n1", commit: 2 } }), /commit moves back/],
        ["commit past the last index", step({ hardState: { term: 2, vote: "n1", commit: 5 } }), /past the last log index 4/],
        ["truncating a committed entry", step({ entries: [entry(2, 3)] }), /past the last log index 2/],
        ["an entry over the size limit", step({ entries: [entry(5, 2, new Uint8Array(MAX_ENTRY_DATA_BYTES + 1))] }), /over the 16777216-byte limit/],
        ["more entries than one step may carry", step({ entries: entries(5, 5 + MAX_STEP_ENTRIES, 2) }), /over the limit of 65536/],
        ["a vote too long for a node id", step({ hardState: { term: 3, vote: "x".repeat(MAX_VOTE_BYTES + 1), commit: 3 } }), /over the 255-byte limit/],
        ["a snapshot at index 0", step({ snapshot: snapshot(0, 0), hardState: { term: 2, vote: "n1", commit: 3 } }), /snapshot position 0\/0 is not a pair/],
        ["a snapshot not beyond the stored commit", step({ snapshot: snapshot(3, 2), hardState: { term: 2, vote: "n1", commit: 3 } }), /snapshot at 3 is not beyond the stored commit 3/],
        ["a snapshot below the stored commit", step({ snapshot: snapshot(2, 1), hardState: { term: 2, vote: "n1", commit: 3 } }), /snapshot at 2 is not beyond the stored commit 3/],
        ["a snapshot whose hard state commits below it", step({ snapshot: snapshot(6, 2), hardState: { term: 2, vote: "n1", commit: 5 } }), /a snapshot at 6 needs a hard state committing it \(commit is 5\)/],
        ["a snapshot without a hard state", step({ snapshot: snapshot(6, 2) }), /a snapshot at 6 needs a hard state committing it \(commit is 3\)/],
        [
          "entries leaving a gap after a snapshot",
          step({ snapshot: snapshot(6, 2), hardState: { term: 2, vote: "n1", commit: 6 }, entries: [entry(8, 2)] }),
          /first entry index 8 leaves a gap after the last log index 6/,
        ],
        [
          "entries overlapping a snapshot",
          step({ snapshot: snapshot(6, 2), hardState: { term: 2, vote: "n1", commit: 6 }, entries: entries(6, 7, 2) }),
          /entry 6 would overwrite the compacted log \(it starts after 6\)/,
        ],
        [
          "entries of the replaced log after a snapshot",
          step({ snapshot: snapshot(6, 2), hardState: { term: 2, vote: "n1", commit: 6 }, entries: entries(4, 7, 2) }),
          /entry 4 would overwrite the compacted log \(it starts after 6\)/,
        ],
        [
          "entries after a snapshot with a term below the snapshot's",
          step({ snapshot: snapshot(6, 3), hardState: { term: 3, vote: "n1", commit: 6 }, entries: [entry(7, 2)] }),
          /entry 7 has term 2, below the term 3/,
        ],
      ];
      for (const [what, bad, message] of invalid) {
        it(what, async () => {
          await storage.save(base);
          const before: StoredLog = await storage.load();
          expectInvalidStep(await failure(storage.save(bad)), message);
          expect(await storage.load()).toEqual(before);
          // The storage stays usable after a rejected step.
          await storage.save(step({ entries: [entry(5, 2)] }));
          expect((await storage.load()).entries).toHaveLength(5);
        });
      }
    });

    describe("compaction", () => {
      beforeEach(async () => {
        await storage.save(step({ hardState: COMMITTED_3, entries: LOG_1_TO_5 }));
      });

      it("deletes the entries through the index and records the log start", async () => {
        await storage.compact({ index: 3, term: 1 });
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 3, term: 1 }, entries: entries(4, 5, 2) });
      });

      it("appends after a compaction as before", async () => {
        await storage.compact({ index: 3, term: 1 });
        await saveAll(step({ entries: [entry(6, 2)] }), step({ entries: entries(7, 8, 3) }));
        expect((await storage.load()).entries).toEqual([...entries(4, 6, 2), ...entries(7, 8, 3)]);
      });

      it("compacts the whole log, then takes the term before the next entry from the log start", async () => {
        await storage.compact({ index: 5, term: 2 });
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 5, term: 2 }, entries: [] });
        expectInvalidStep(await failure(storage.save(step({ entries: [entry(6, 1)] }))), /entry 6 has term 1, below the term 2 of the entry before it/);
        await storage.save(step({ entries: [entry(6, 2)] }));
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 5, term: 2 }, entries: [entry(6, 2)] });
      });

      it("takes the term before an entry right after the log start from the log start", async () => {
        await storage.compact({ index: 4, term: 2 });
        expectInvalidStep(await failure(storage.save(step({ entries: [entry(5, 1)] }))), /entry 5 has term 1, below the term 2 of the entry before it/);
        await storage.save(step({ entries: [entry(5, 3)] }));
        expect((await storage.load()).entries).toEqual([entry(5, 3)]);
      });

      it("overwrites a suffix after a compaction, deleting the rest of the old log", async () => {
        await storage.compact({ index: 3, term: 1 });
        await storage.save(step({ entries: [entry(4, 3)] }));
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 3, term: 1 }, entries: [entry(4, 3)] });
        // The deleted tail stays deleted: the log continues from index 5.
        await storage.save(step({ entries: [entry(5, 3)] }));
        expect((await storage.load()).entries).toEqual(entries(4, 5, 3));
      });

      it("rejects an entry that would overwrite the compacted log, changing nothing", async () => {
        await storage.compact({ index: 3, term: 1 });
        const before = await storage.load();
        expectInvalidStep(await failure(storage.save(step({ entries: entries(3, 6, 2) }))), /entry 3 would overwrite the compacted log \(it starts after 3\)/);
        expect(await storage.load()).toEqual(before);
      });

      it("compacts again further on", async () => {
        await storage.compact({ index: 2, term: 1 });
        await storage.compact({ index: 4, term: 2 });
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 4, term: 2 }, entries: [entry(5, 2)] });
      });

      it("rejects a compaction beyond the last index, changing nothing, and stays usable", async () => {
        const before = await storage.load();
        expectInvalidStep(await failure(storage.compact({ index: 6, term: 2 })), /cannot compact through 6: the log ends at 5/);
        expect(await storage.load()).toEqual(before);
        await storage.save(step({ entries: [entry(6, 2)] }));
        await storage.compact({ index: 6, term: 2 });
        expect(await storage.load()).toEqual({ hardState: COMMITTED_3, logStart: { index: 6, term: 2 }, entries: [] });
      });

      it("rejects a compaction position that is not a pair of safe integers", async () => {
        const before = await storage.load();
        expectInvalidStep(await failure(storage.compact({ index: 2.5, term: 1 })), /compaction position 2.5\/1 is not a pair of safe integers/);
        expect(await storage.load()).toEqual(before);
      });

      it("treats a compaction at or before the current log start as a no-op", async () => {
        await storage.compact({ index: 3, term: 1 });
        const compacted = await storage.load();
        await storage.compact({ index: 2, term: 1 });
        expect(await storage.load()).toEqual(compacted);
        await storage.compact({ index: 3, term: 1 });
        expect(await storage.load()).toEqual(compacted);
        await storage.compact({ index: 0, term: 0 });
        expect(await storage.load()).toEqual(compacted);
        // The log start did not move back: the compacted entries stay out of reach.
        expectInvalidStep(await failure(storage.save(step({ entries: [entry(3, 2)] }))), /would overwrite the compacted log/);
      });
    });

    describe("snapshot steps", () => {
      beforeEach(async () => {
        await storage.save(step({ hardState: COMMITTED_3, entries: LOG_1_TO_5 }));
      });

      it("replaces the whole log by an empty one starting after a snapshot beyond it", async () => {
        const hardState = { term: 4, vote: "", commit: 10 };
        await storage.save(step({ snapshot: snapshot(10, 4), hardState }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 10, term: 4 }, entries: [] });
      });

      it("replaces the whole log, also the entries beyond a snapshot inside it", async () => {
        const hardState = { term: 2, vote: "n1", commit: 4 };
        await storage.save(step({ snapshot: snapshot(4, 2), hardState }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 4, term: 2 }, entries: [] });
        // Entry 5 is gone: the log continues right after the snapshot.
        await storage.save(step({ entries: [entry(5, 3)] }));
        expect((await storage.load()).entries).toEqual([entry(5, 3)]);
      });

      it("writes entries in the same step over indexes the replaced log held", async () => {
        const hardState = { term: 3, vote: "n1", commit: 4 };
        await storage.save(step({ snapshot: snapshot(4, 2), hardState, entries: entries(5, 6, 3) }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 4, term: 2 }, entries: entries(5, 6, 3) });
      });

      it("writes entries right after the snapshot in the same step", async () => {
        const hardState = { term: 4, vote: "n2", commit: 11 };
        await storage.save(step({ snapshot: snapshot(10, 3), hardState, entries: [entry(11, 3), entry(12, 4)] }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 10, term: 3 }, entries: [entry(11, 3), entry(12, 4)] });
      });

      it("appends after a snapshot as before, the term before the first entry coming from the snapshot", async () => {
        const hardState = { term: 4, vote: "", commit: 10 };
        await storage.save(step({ snapshot: snapshot(10, 4), hardState }));
        expectInvalidStep(await failure(storage.save(step({ entries: [entry(11, 3)] }))), /entry 11 has term 3, below the term 4 of the entry before it/);
        await saveAll(step({ entries: [entry(11, 4)] }), step({ entries: entries(12, 13, 5) }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 10, term: 4 }, entries: [entry(11, 4), ...entries(12, 13, 5)] });
      });

      it("compacts the log a snapshot started", async () => {
        const hardState = { term: 4, vote: "", commit: 12 };
        await storage.save(step({ snapshot: snapshot(10, 4), hardState, entries: entries(11, 13, 4) }));
        await storage.compact({ index: 12, term: 4 });
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 12, term: 4 }, entries: [entry(13, 4)] });
      });

      it("accepts a later snapshot after an earlier one", async () => {
        await storage.save(step({ snapshot: snapshot(10, 4), hardState: { term: 4, vote: "", commit: 10 }, entries: entries(11, 12, 4) }));
        const hardState = { term: 5, vote: "", commit: 20 };
        await storage.save(step({ snapshot: snapshot(20, 5), hardState, entries: [entry(21, 5)] }));
        expect(await storage.load()).toEqual({ hardState, logStart: { index: 20, term: 5 }, entries: [entry(21, 5)] });
      });
    });
  });
}

/** What `operation` rejected with, or null if it resolved. */
function failure(operation: Promise<unknown>): Promise<unknown> {
  return operation.then(
    () => null,
    (err: unknown) => err,
  );
}

/** Asserts `error` is an InvalidPersistStepError whose message matches `message`. */
function expectInvalidStep(error: unknown, message: RegExp): void {
  expect(isInvalidPersistStepError(error), `expected an InvalidPersistStepError, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toMatch(message);
}
