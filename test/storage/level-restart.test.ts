import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LogPosition } from "../../src/raft/log.js";
import { EntryType, type Entry } from "../../src/raft/types.js";
import { isStorageVersionError } from "../../src/storage/errors.js";
import { LevelRaftStorage, newRootLevel } from "../../src/storage/level-raft-storage.js";
import {
  decodeEntryKey,
  decodeLogStart,
  encodeEntry,
  encodeFormatVersion,
  encodeHardState,
  ENTRY_KEYS_END,
  ENTRY_KEYS_START,
  entryKey,
  FORMAT_VERSION,
  FORMAT_VERSION_KEY,
  HARD_STATE_KEY,
  LOG_START_KEY,
} from "../../src/storage/level-records.js";
import { MemoryRaftStorage } from "../../src/storage/memory-raft-storage.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";
import { entries, entry, makeTempDir, removeDir, snapshot, step, withRawRaft } from "./helpers.js";

/** A tiny deterministic PRNG (mulberry32) so a failing sequence replays exactly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A random valid step: usually an append, sometimes an overwrite of an uncommitted suffix. */
function randomStep(random: () => number, model: MemoryRaftStorage, k: number): PersistStep {
  const { hardState, logStart, entries: log } = model.loadSync();
  const lastIndex = logStart.index + log.length;
  // Every entry carries the current term, so terms never decrease along the log.
  const term = Math.max(1, hardState.term + (random() < 0.3 ? 1 : 0));
  const first =
    random() < 0.25 && lastIndex > hardState.commit
      ? hardState.commit + 1 + Math.floor(random() * (lastIndex - hardState.commit))
      : lastIndex + 1;
  const count = Math.floor(random() * 4);
  const newEntries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const data = Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256));
    newEntries.push({ index: first + i, term, type: i === 0 ? EntryType.Noop : EntryType.Normal, data });
  }
  const newLast = count === 0 ? lastIndex : first + count - 1;
  const commit = Math.min(newLast, hardState.commit + Math.floor(random() * 2));
  const termChanged = term !== hardState.term;
  const newHardState =
    termChanged || random() < 0.5 ? { term, vote: termChanged ? `n${k % 3}` : hardState.vote, commit: Math.max(commit, hardState.commit) } : null;
  return { hardState: newHardState, entries: newEntries };
}

/** One thing a node does to its storage. */
type Operation = { readonly kind: "save"; readonly step: PersistStep } | { readonly kind: "compact"; readonly position: LogPosition };

/**
 * Mostly a random step; now and then a compaction through a committed index (as after persisting the state
 * machine) or a snapshot from a leader, landing inside the log or beyond it, sometimes with entries after it.
 */
function randomOperation(random: () => number, model: MemoryRaftStorage, k: number): Operation {
  const { hardState, logStart, entries: log } = model.loadSync();
  const lastIndex = logStart.index + log.length;
  const roll = random();
  if (roll < 0.1 && hardState.commit > logStart.index) {
    const index = logStart.index + 1 + Math.floor(random() * (hardState.commit - logStart.index));
    const at = log[index - logStart.index - 1];
    if (at === undefined) throw new Error(`test bug: committed index ${index} is not in the model's log`);
    return { kind: "compact", position: { index, term: at.term } };
  }
  if (roll < 0.15) {
    // A new term above every stored one, so the terms along the log still never decrease.
    const term = hardState.term + 1;
    const index = Math.max(hardState.commit + 1, lastIndex - 2 + Math.floor(random() * 6));
    const following = Math.floor(random() * 3);
    const newEntries = Array.from({ length: following }, (_, i) => entry(index + 1 + i, term));
    return { kind: "save", step: step({ snapshot: snapshot(index, term), hardState: { term, vote: "", commit: index }, entries: newEntries }) };
  }
  return { kind: "save", step: randomStep(random, model, k) };
}
describe("LevelRaftStorage across restarts", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir("level-restart");
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it("reloads exactly what was saved before close", async () => {
    const first = await LevelRaftStorage.open(dir);
    await first.save(step({ hardState: { term: 2, vote: "n1", commit: 3 }, entries: [...entries(1, 2, 1), ...entries(3, 5, 2)] }));
    const saved = await first.load();
    await first.close();

    const second = await LevelRaftStorage.open(dir);
    try {
      expect(await second.load()).toEqual(saved);
    } finally {
      await second.close();
    }
  });

  it("matches the in-memory model after many steps and several restarts, and keeps accepting steps", async () => {
    const random = prng(20240611);
    const model = new MemoryRaftStorage();
    let storage = await LevelRaftStorage.open(dir);
    try {
      for (let k = 1; k <= 300; k++) {
        const s = randomStep(random, model, k);
        model.saveSync(s);
        await storage.save(s);
        if (k % 100 === 0) {
          // Reopen without loading first: the storage must recover its tip (last index, term, hard state) itself.
          await storage.close();
          storage = await LevelRaftStorage.open(dir);
        }
      }
      expect(await storage.load()).toEqual(model.loadSync());
    } finally {
      await storage.close();
    }
  });

  it("reloads a compacted log after a restart", async () => {
    const first = await LevelRaftStorage.open(dir);
    await first.save(step({ hardState: { term: 2, vote: "n1", commit: 4 }, entries: [...entries(1, 3, 1), ...entries(4, 5, 2)] }));
    await first.compact({ index: 3, term: 1 });
    const saved = await first.load();
    await first.close();
    expect(saved.logStart).toEqual({ index: 3, term: 1 });

    const second = await LevelRaftStorage.open(dir);
    try {
      expect(await second.load()).toEqual(saved);
      await second.save(step({ entries: [entry(6, 2)] }));
      expect((await second.load()).entries).toEqual(entries(4, 6, 2));
    } finally {
      await second.close();
    }
  });

  it("recovers the tip of a wholly compacted log at open, judging the next entry by the log start", async () => {
    const first = await LevelRaftStorage.open(dir);
    await first.save(step({ hardState: { term: 2, vote: "n1", commit: 5 }, entries: [...entries(1, 3, 1), ...entries(4, 5, 2)] }));
    await first.compact({ index: 5, term: 2 });
    await first.close();

    // Reopen without loading first: the step check must use the recovered log start.
    const second = await LevelRaftStorage.open(dir);
    try {
      await expect(second.save(step({ entries: [entry(6, 1)] }))).rejects.toThrow(/entry 6 has term 1, below the term 2/);
      await expect(second.save(step({ entries: [entry(5, 2)] }))).rejects.toThrow(/entry 5 would overwrite the compacted log/);
      await second.save(step({ entries: [entry(6, 2)] }));
      expect(await second.load()).toEqual({ hardState: { term: 2, vote: "n1", commit: 5 }, logStart: { index: 5, term: 2 }, entries: [entry(6, 2)] });
    } finally {
      await second.close();
    }
  });

  it("reloads a log a snapshot replaced after a restart, with no entry of the old log left on disk", async () => {
    const first = await LevelRaftStorage.open(dir);
    await first.save(step({ hardState: { term: 2, vote: "n1", commit: 3 }, entries: [...entries(1, 3, 1), ...entries(4, 5, 2)] }));
    await first.save(step({ snapshot: snapshot(10, 3), hardState: { term: 3, vote: "", commit: 11 }, entries: entries(11, 12, 3) }));
    const saved = await first.load();
    await first.close();
    expect(saved).toEqual({ hardState: { term: 3, vote: "", commit: 11 }, logStart: { index: 10, term: 3 }, entries: entries(11, 12, 3) });

    const second = await LevelRaftStorage.open(dir);
    try {
      expect(await second.load()).toEqual(saved);
    } finally {
      await second.close();
    }
    await withRawRaft(dir, async (raft) => {
      const keys = await raft.keys({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END }).all();
      expect(keys.map((key) => decodeEntryKey(key))).toEqual([11, 12].map((value) => ({ ok: true, value })));
      const logStart = await raft.get(LOG_START_KEY);
      expect(logStart && decodeLogStart(logStart)).toEqual({ ok: true, value: { index: 10, term: 3 } });
    });
  });

  it("matches the in-memory model through compactions, snapshots and several restarts", async () => {
    const random = prng(20250302);
    const model = new MemoryRaftStorage();
    const seen = { save: 0, compact: 0, snapshot: 0 };
    let storage = await LevelRaftStorage.open(dir);
    try {
      for (let k = 1; k <= 400; k++) {
        const operation = randomOperation(random, model, k);
        if (operation.kind === "compact") {
          model.compactSync(operation.position);
          await storage.compact(operation.position);
          seen.compact++;
        } else {
          model.saveSync(operation.step);
          await storage.save(operation.step);
          seen[operation.step.snapshot ? "snapshot" : "save"]++;
        }
        if (k % 100 === 0) {
          // Reopen without loading first: the storage must recover its tip (log start included) itself.
          await storage.close();
          storage = await LevelRaftStorage.open(dir);
        }
      }
      expect(await storage.load()).toEqual(model.loadSync());
      // The sequence really exercised what it is about.
      expect(seen.compact).toBeGreaterThan(10);
      expect(seen.snapshot).toBeGreaterThan(5);
    } finally {
      await storage.close();
    }
  });

  it("shares a root database with other components without touching their keys", async () => {
    const root = newRootLevel(dir);
    await root.open();
    try {
      const other = root.sublevel("queue");
      await other.put("q1", "state");
      const storage = await LevelRaftStorage.attach(root);
      await storage.save(step({ entries: entries(1, 3, 1) }));
      await storage.close();
      // close() leaves an attached root open for its owner.
      expect(await other.get("q1")).toBe("state");
      const again = await LevelRaftStorage.attach(root);
      expect((await again.load()).entries).toEqual(entries(1, 3, 1));
      await again.close();
    } finally {
      await root.close();
    }
  });

  it("refuses a data directory written in an unknown format version", async () => {
    await withRawRaft(dir, (raft) => raft.put(FORMAT_VERSION_KEY, encodeFormatVersion(99)));

    const error: unknown = await LevelRaftStorage.open(dir).then(() => null, (err: unknown) => err);
    expect(isStorageVersionError(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`format version 99 but this build reads only version ${FORMAT_VERSION}`));
    // The failed open released the database lock: a second attempt fails the same way, not with "locked".
    await expect(LevelRaftStorage.open(dir)).rejects.toThrow(/format version 99/);
  });

  it("refuses a format version 1 data directory (from before log compaction), leaving it untouched", async () => {
    // What a version 1 build left: its version record, a hard state and entries, no log start record.
    const v1Records = [
      { key: FORMAT_VERSION_KEY, value: encodeFormatVersion(1) },
      { key: HARD_STATE_KEY, value: encodeHardState({ term: 1, vote: "n1", commit: 1 }) },
      { key: entryKey(1), value: encodeEntry(entry(1, 1)) },
      { key: entryKey(2), value: encodeEntry(entry(2, 1)) },
    ];
    await withRawRaft(dir, (raft) => raft.batch(v1Records.map((record) => ({ type: "put" as const, ...record }))));

    const error: unknown = await LevelRaftStorage.open(dir).then(() => null, (err: unknown) => err);
    expect(isStorageVersionError(error), `expected a StorageVersionError, got ${String(error)}`).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`format version 1 but this build reads only version ${FORMAT_VERSION}`));
    expect((error as Error).message).toMatch(/run the raftq release that wrote it, or remove the directory/);
    const stored = await withRawRaft(dir, (raft) => raft.iterator().all());
    expect(stored.map(([key, value]) => [Buffer.from(key).toString("hex"), Buffer.from(value).toString("hex")])).toEqual(
      v1Records.map(({ key, value }) => [Buffer.from(key).toString("hex"), Buffer.from(value).toString("hex")]),
    );
  });

  it("explains a data directory already in use by another storage", async () => {
    const holder = await LevelRaftStorage.open(dir);
    try {
      await expect(LevelRaftStorage.open(dir)).rejects.toThrow(/another open database holds its lock/);
    } finally {
      await holder.close();
    }
  });

  it("rejects use after close", async () => {
    const storage = await LevelRaftStorage.open(dir);
    await storage.close();
    await expect(storage.load()).rejects.toThrow(/cannot load: Raft storage is closed/);
  });
});
