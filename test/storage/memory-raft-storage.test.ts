import { describe, expect, it } from "vitest";
import { MemoryRaftStorage } from "../../src/storage/memory-raft-storage.js";
import { describeRaftStorageCompliance } from "./raft-storage-compliance.js";
import { entries, step } from "./helpers.js";

describeRaftStorageCompliance("MemoryRaftStorage", async () => {
  const storage = new MemoryRaftStorage();
  return { storage, dispose: () => storage.close() };
});

describe("MemoryRaftStorage as the simulator's disk", () => {
  it("serves the synchronous twins from the same state as the async methods", async () => {
    const storage = new MemoryRaftStorage();
    storage.saveSync(step({ hardState: { term: 1, vote: "n1", commit: 0 }, entries: entries(1, 2, 1) }));
    expect(await storage.load()).toEqual(storage.loadSync());
  });

  it("outlives close(), so a restarted node loads what the crashed one persisted", async () => {
    const storage = new MemoryRaftStorage();
    await storage.save(step({ entries: entries(1, 3, 1) }));
    await storage.close();
    expect(storage.loadSync().entries).toEqual(entries(1, 3, 1));
  });
});
