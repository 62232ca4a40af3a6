import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EntryType } from "../../src/raft/types.js";
import type { LogPosition } from "../../src/raft/log.js";
import { isStorageCorruptionError, type StorageCorruptionError } from "../../src/storage/errors.js";
import { LevelRaftStorage } from "../../src/storage/level-raft-storage.js";
import { encodeEntry, encodeLogStart, entryKey, FORMAT_VERSION_KEY, HARD_STATE_KEY, LOG_START_KEY } from "../../src/storage/level-records.js";
import { entries, entry, makeTempDir, removeDir, step, withRawRaft, type RawRaft } from "./helpers.js";

/** Tampers with the closed store through a raw `level` handle, as a disk fault or a stray tool would. */
function tamper(dir: string, damage: (raft: RawRaft) => Promise<void>): Promise<void> {
  return withRawRaft(dir, damage);
}

async function rawGet(raft: RawRaft, key: Uint8Array): Promise<Uint8Array> {
  const value = await raft.get(key);
  if (value === undefined) throw new Error(`test setup: no value at key ${Buffer.from(key).toString("hex")}`);
  return value;
}

/** Opens and loads `dir`, returning the corruption error it must raise (either step may detect it). */
async function corruptionOnOpenOrLoad(dir: string): Promise<StorageCorruptionError> {
  let storage: LevelRaftStorage | null = null;
  try {
    storage = await LevelRaftStorage.open(dir);
    await storage.load();
  } catch (err) {
    if (isStorageCorruptionError(err)) return err;
    throw err;
  } finally {
    await storage?.close();
  }
  throw new Error("expected a StorageCorruptionError, but open and load succeeded");
}

describe("LevelRaftStorage detects corruption", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await makeTempDir("level-corruption");
    const storage = await LevelRaftStorage.open(dir);
    await storage.save(step({ hardState: { term: 2, vote: "n1", commit: 3 }, entries: [...entries(1, 3, 1), ...entries(4, 5, 2)] }));
    await storage.close();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  function expectReport(error: StorageCorruptionError, index: number | null, what: RegExp): void {
    expect(error.code).toBe("STORAGE_CORRUPT");
    expect(error.index).toBe(index);
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(what);
    expect(error.message).toMatch(/restore this node's data directory from a backup, or remove it and let the node rejoin/);
  }

  it("a flipped byte in an entry's data", async () => {
    await tamper(dir, async (raft) => {
      const record = await rawGet(raft, entryKey(3));
      const damaged = Uint8Array.from(record);
      damaged[damaged.length - 1]! ^= 0x01;
      await raft.put(entryKey(3), damaged);
    });
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at log index 3: entry record fails its checksum/);
  });

  it("a torn (truncated) entry record", async () => {
    await tamper(dir, async (raft) => {
      const record = await rawGet(raft, entryKey(2));
      await raft.put(entryKey(2), record.subarray(0, record.length - 2));
    });
    expectReport(await corruptionOnOpenOrLoad(dir), 2, /at log index 2: entry record fails its checksum/);
  });

  it("an entry record cut shorter than its header", async () => {
    await tamper(dir, (raft) => raft.put(entryKey(4), new Uint8Array(7)));
    expectReport(await corruptionOnOpenOrLoad(dir), 4, /at log index 4: entry record is 7 bytes, shorter than its 21-byte header/);
  });

  it("a damaged last entry, caught already at open", async () => {
    await tamper(dir, async (raft) => {
      const record = Uint8Array.from(await rawGet(raft, entryKey(5)));
      record[10]! ^= 0xff;
      await raft.put(entryKey(5), record);
    });
    const error = await LevelRaftStorage.open(dir).then(
      () => null,
      (err: unknown) => err,
    );
    expect(isStorageCorruptionError(error)).toBe(true);
    expectReport(error as StorageCorruptionError, 5, /at log index 5/);
  });

  it("a missing entry in the middle of the log (a gap)", async () => {
    await tamper(dir, (raft) => raft.del(entryKey(3)));
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at log index 3: the entry is missing \(the next stored entry is 4\): the log has a gap/);
  });

  it("a missing first entry", async () => {
    await tamper(dir, (raft) => raft.del(entryKey(1)));
    expectReport(await corruptionOnOpenOrLoad(dir), 1, /at log index 1: the entry is missing/);
  });

  it("a valid record stored under the wrong index", async () => {
    await tamper(dir, async (raft) => raft.put(entryKey(3), await rawGet(raft, entryKey(2))));
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at log index 3: the record says it is index 2/);
  });

  it("terms decreasing along the log, even with valid checksums", async () => {
    await tamper(dir, (raft) => raft.put(entryKey(5), encodeEntry({ index: 5, term: 1, type: EntryType.Normal, data: new Uint8Array(0) })));
    expectReport(await corruptionOnOpenOrLoad(dir), 5, /at log index 5: term 1 is below the term 2 of the entry before it/);
  });

  it("a damaged hard state", async () => {
    await tamper(dir, async (raft) => {
      const record = Uint8Array.from(await rawGet(raft, HARD_STATE_KEY));
      record[6]! ^= 0x40;
      await raft.put(HARD_STATE_KEY, record);
    });
    expectReport(await corruptionOnOpenOrLoad(dir), null, /at the hard state: hard state record fails its checksum/);
  });

  it("a truncated hard state", async () => {
    await tamper(dir, async (raft) => raft.put(HARD_STATE_KEY, (await rawGet(raft, HARD_STATE_KEY)).subarray(0, 12)));
    expectReport(await corruptionOnOpenOrLoad(dir), null, /at the hard state: hard state record is 12 bytes, shorter than its 21-byte header/);
  });

  it("a commit index past the end of the log (lost tail)", async () => {
    await tamper(dir, async (raft) => {
      await raft.del(entryKey(5));
      await raft.del(entryKey(4));
      await raft.del(entryKey(3));
    });
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at the hard state: commit 3 points past the last log index 2/);
  });

  /** Compacts the stored log through `position`, as a node does once its state machine is on disk. */
  async function compactStored(position: LogPosition): Promise<void> {
    const storage = await LevelRaftStorage.open(dir);
    await storage.compact(position);
    await storage.close();
  }

  it("a damaged log start", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, async (raft) => {
      const record = Uint8Array.from(await rawGet(raft, LOG_START_KEY));
      record[11]! ^= 0x04;
      await raft.put(LOG_START_KEY, record);
    });
    expectReport(await corruptionOnOpenOrLoad(dir), null, /at the log start: log start record fails its checksum/);
  });

  it("a truncated log start", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, async (raft) => raft.put(LOG_START_KEY, (await rawGet(raft, LOG_START_KEY)).subarray(0, 12)));
    expectReport(await corruptionOnOpenOrLoad(dir), null, /at the log start: log start record is 12 bytes, expected 20/);
  });

  it("a gap between the log start and the first stored entry", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, (raft) => raft.del(entryKey(3)));
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at log index 3: the entry is missing \(the next stored entry is 4\): the log has a gap/);
  });

  it("a log start moved back before entries that were compacted away", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, (raft) => raft.put(LOG_START_KEY, encodeLogStart({ index: 1, term: 1 })));
    expectReport(await corruptionOnOpenOrLoad(dir), 2, /at log index 2: the entry is missing \(the next stored entry is 3\): the log has a gap/);
  });

  it("an entry left behind at or before the log start", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, (raft) => raft.put(entryKey(2), encodeEntry(entry(2, 1))));
    expectReport(await corruptionOnOpenOrLoad(dir), 2, /at log index 2: an entry is stored at or before the log start 2/);
  });

  it("a log start term above the term of the first entry after it", async () => {
    await compactStored({ index: 2, term: 1 });
    await tamper(dir, (raft) => raft.put(LOG_START_KEY, encodeLogStart({ index: 2, term: 5 })));
    expectReport(await corruptionOnOpenOrLoad(dir), 3, /at log index 3: term 1 is below the term 5 of the entry before it/);
  });

  it("a missing format version next to existing Raft records", async () => {
    await tamper(dir, (raft) => raft.del(FORMAT_VERSION_KEY));
    expectReport(await corruptionOnOpenOrLoad(dir), null, /format version key: it is missing although Raft records exist/);
  });
});
