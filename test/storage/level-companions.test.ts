/**
 * Another component's writes (e.g. a received state machine snapshot) ride in the same fsync'd batch as a
 * Raft step: both land, or, when the step is rejected, neither does.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isInvalidPersistStepError } from "../../src/storage/errors.js";
import { LevelRaftStorage, newRootLevel, type RootLevel } from "../../src/storage/level-raft-storage.js";
import { entries, entry, makeTempDir, removeDir, snapshot, step } from "./helpers.js";

/** The sublevel standing in for the other component. */
const COMPANION_SUBLEVEL = "state-machine";

describe("LevelRaftStorage with companion operations", () => {
  let dir: string;
  let root: RootLevel;
  let storage: LevelRaftStorage;

  beforeEach(async () => {
    dir = await makeTempDir("level-companions");
    root = newRootLevel(dir);
    await root.open();
    storage = await LevelRaftStorage.attach(root);
  });
  afterEach(async () => {
    await storage.close();
    await root.close();
    await removeDir(dir);
  });

  function companion() {
    return root.sublevel(COMPANION_SUBLEVEL);
  }

  it("writes a put in another sublevel of the root together with the step", async () => {
    await storage.save(step({ entries: entries(1, 2, 1) }), [{ type: "put", sublevel: companion(), key: "applied", value: "2" }]);
    expect(await companion().get("applied")).toBe("2");
    expect((await storage.load()).entries).toEqual(entries(1, 2, 1));
  });

  it("installs a snapshot step and the state it describes durably, both reloaded after a restart", async () => {
    await storage.save(step({ hardState: { term: 1, vote: "n1", commit: 2 }, entries: entries(1, 3, 1) }));
    const installed = step({ snapshot: snapshot(10, 2), hardState: { term: 2, vote: "", commit: 10 }, entries: [entry(11, 2)] });
    await storage.save(installed, [{ type: "put", sublevel: companion(), key: "snapshot", value: "state at 10" }]);
    await storage.close();
    await root.close();

    root = newRootLevel(dir);
    await root.open();
    storage = await LevelRaftStorage.attach(root);
    expect(await companion().get("snapshot")).toBe("state at 10");
    expect(await storage.load()).toEqual({ hardState: { term: 2, vote: "", commit: 10 }, logStart: { index: 10, term: 2 }, entries: [entry(11, 2)] });
  });

  it("writes neither the step nor the companions when the step is rejected", async () => {
    await storage.save(step({ hardState: { term: 2, vote: "n1", commit: 2 }, entries: entries(1, 3, 2) }));
    const before = await storage.load();
    // A snapshot at the stored commit is no news: the step is rejected.
    const rejected = step({ snapshot: snapshot(2, 2), hardState: { term: 2, vote: "n1", commit: 2 } });
    const error: unknown = await storage
      .save(rejected, [{ type: "put", sublevel: companion(), key: "snapshot", value: "state at 2" }])
      .then(() => null, (err: unknown) => err);
    expect(isInvalidPersistStepError(error), `expected an InvalidPersistStepError, got ${String(error)}`).toBe(true);
    expect(await companion().get("snapshot")).toBeUndefined();
    expect(await storage.load()).toEqual(before);
  });
});
