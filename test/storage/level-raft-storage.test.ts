import { describe, expect, it } from "vitest";
import { LevelRaftStorage, mustSync } from "../../src/storage/level-raft-storage.js";
import type { Entry, HardState } from "../../src/raft/types.js";
import { EMPTY_MEMBERSHIP, EntryType } from "../../src/raft/types.js";
import { describeRaftStorageCompliance } from "./raft-storage-compliance.js";
import { makeTempDir, removeDir } from "./helpers.js";

describeRaftStorageCompliance("LevelRaftStorage", async () => {
  const dir = await makeTempDir("level-compliance");
  const storage = await LevelRaftStorage.open(dir);
  return {
    storage,
    dispose: async () => {
      await storage.close();
      await removeDir(dir);
    },
  };
});

describe("mustSync: which steps are fsync'd", () => {
  const before: HardState = { term: 3, vote: "n1", commit: 10 };
  const entry: Entry = { index: 11, term: 3, type: EntryType.Normal, data: new Uint8Array([1]) };

  it("syncs new entries, a new term and a new vote", () => {
    expect(mustSync({ hardState: null, entries: [entry] }, before)).toBe(true);
    expect(mustSync({ hardState: { ...before, term: 4, vote: "" }, entries: [] }, before)).toBe(true);
    expect(mustSync({ hardState: { ...before, vote: "n2" }, entries: [] }, before)).toBe(true);
  });

  it("syncs a received snapshot", () => {
    const snapshot = { index: 20, term: 3, membership: EMPTY_MEMBERSHIP };
    expect(mustSync({ hardState: null, entries: [], snapshot }, before)).toBe(true);
  });

  it("does not sync a commit index that only moved forward, nor an empty step", () => {
    expect(mustSync({ hardState: { ...before, commit: 11 }, entries: [] }, before)).toBe(false);
    expect(mustSync({ hardState: null, entries: [] }, before)).toBe(false);
  });
});
