/**
 * The contract every RaftStorage must meet, as one suite each implementation runs (the way abstract-level
 * ships one suite for every backend). Register it with `describeRaftStorageCompliance`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EMPTY_HARD_STATE, EntryType, type PersistedState } from "../../src/raft/types.js";
import { isInvalidPersistStepError } from "../../src/storage/errors.js";
import type { PersistStep, RaftStorage } from "../../src/storage/raft-storage.js";
import { MAX_ENTRY_DATA_BYTES, MAX_STEP_ENTRIES, MAX_VOTE_BYTES } from "../../src/storage/raft-storage.js";
import { entries, entry, step } from "./helpers.js";

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

    it("loads an empty state from a new storage", async () => {
      expect(await storage.load()).toEqual({ hardState: EMPTY_HARD_STATE, entries: [] });
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
      expect(await storage.load()).toEqual({ hardState, entries: entries(1, 3, 7) });
    });

    it("keeps a non-ASCII vote exactly", async () => {
      const hardState = { term: 1, vote: "nœud-ü-🚀", commit: 0 };
      await storage.save(step({ hardState }));
      expect((await storage.load()).hardState).toEqual(hardState);
    });

    it("saves the hard state alone, leaving the log as it was", async () => {
      await storage.save(step({ entries: entries(1, 2, 1) }));
      await storage.save(step({ hardState: { term: 2, vote: "n1", commit: 1 } }));
      expect(await storage.load()).toEqual({ hardState: { term: 2, vote: "n1", commit: 1 }, entries: entries(1, 2, 1) });
    });

    it("saves entries alone, leaving the hard state as it was", async () => {
      const hardState = { term: 3, vote: "n3", commit: 0 };
      await storage.save(step({ hardState }));
      await storage.save(step({ entries: entries(1, 2, 3) }));
      expect(await storage.load()).toEqual({ hardState, entries: entries(1, 2, 3) });
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
      ];
      for (const [what, bad, message] of invalid) {
        it(what, async () => {
          await storage.save(base);
          const before: PersistedState = await storage.load();
          const error: unknown = await storage.save(bad).then(() => null, (err: unknown) => err);
          expect(isInvalidPersistStepError(error), `expected an InvalidPersistStepError, got ${String(error)}`).toBe(true);
          expect((error as Error).message).toMatch(message);
          expect(await storage.load()).toEqual(before);
          // The storage stays usable after a rejected step.
          await storage.save(step({ entries: [entry(5, 2)] }));
          expect((await storage.load()).entries).toHaveLength(5);
        });
      }
    });
  });
}
