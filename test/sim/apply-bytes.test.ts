/**
 * A Ready hands out committed entries within maxBytesPerApply (at least one, however big): the driver
 * applies them in one synchronous stretch, and big enqueue batches once held a node's event loop for
 * longer than an election timeout.
 */
import { describe, expect, test } from "vitest";
import { defaultRaftConfig } from "../../src/raft/config.js";
import { RaftCore } from "../../src/raft/core.js";
import { bootstrapEntry } from "../../src/raft/membership.js";
import { EntryType, type Entry } from "../../src/raft/types.js";

const FOUNDERS = { members: [{ id: "n1", address: "n1", voter: true }] };

/** A restarted lone node whose log holds committed entries of these sizes after the bootstrap entry. */
function restartedWith(sizes: readonly number[], maxBytesPerApply: number): RaftCore {
  const entries: Entry[] = [bootstrapEntry(FOUNDERS)];
  sizes.forEach((size, at) => entries.push({ index: at + 2, term: 1, type: EntryType.Normal, data: new Uint8Array(size) }));
  const config = { ...defaultRaftConfig("n1", () => 0.5), maxBytesPerApply };
  return new RaftCore(config, {
    hardState: { term: 1, vote: "n1", commit: entries.length },
    logStart: { index: 0, term: 0 },
    entries,
    applied: 1,
    membership: FOUNDERS,
  });
}

/** The sizes of the committed entries of each Ready until none are left. */
function applyBatches(core: RaftCore): number[][] {
  const batches: number[][] = [];
  while (core.hasReady()) {
    const ready = core.ready();
    if (ready.committedEntries.length > 0) batches.push(ready.committedEntries.map((entry) => entry.data.byteLength));
    core.advance(ready);
  }
  return batches;
}

describe("apply batches bounded by bytes", () => {
  test("as many entries as fit, and a big one alone", () => {
    expect(applyBatches(restartedWith([100, 100, 100, 1000, 100, 50, 50], 250))).toEqual([[100, 100], [100], [1000], [100, 50, 50]]);
  });

  test("the default bound keeps a Ready to about a thousand 100-byte queue messages", () => {
    const entries = Array.from({ length: 8 }, () => 100 * 1000);
    const batches = applyBatches(restartedWith(entries, defaultRaftConfig("n1", Math.random).maxBytesPerApply));
    expect(batches.every((batch) => batch.length <= 2)).toBe(true);
    expect(batches.flat()).toEqual(entries);
  });
});
