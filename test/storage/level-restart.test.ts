import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Level } from "level";
import { EntryType, type Entry } from "../../src/raft/types.js";
import { isStorageVersionError } from "../../src/storage/errors.js";
import { LevelRaftStorage, RAFT_SUBLEVEL } from "../../src/storage/level-raft-storage.js";
import { encodeFormatVersion, FORMAT_VERSION_KEY } from "../../src/storage/level-records.js";
import { MemoryRaftStorage } from "../../src/storage/memory-raft-storage.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";
import { entries, makeTempDir, removeDir, step } from "./helpers.js";

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
  const { hardState, entries: log } = model.loadSync();
  const lastIndex = log.length;
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

  it("shares a root database with other components without touching their keys", async () => {
    const root = new Level(dir);
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
    const root = new Level(dir);
    const raft = root.sublevel<Uint8Array, Uint8Array>(RAFT_SUBLEVEL, { keyEncoding: "view", valueEncoding: "view" });
    await raft.put(FORMAT_VERSION_KEY, encodeFormatVersion(99));
    await root.close();

    const error: unknown = await LevelRaftStorage.open(dir).then(() => null, (err: unknown) => err);
    expect(isStorageVersionError(error)).toBe(true);
    expect((error as Error).message).toMatch(/format version 99 but this build reads only version 1/);
    // The failed open released the database lock: a second attempt fails the same way, not with "locked".
    await expect(LevelRaftStorage.open(dir)).rejects.toThrow(/format version 99/);
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
