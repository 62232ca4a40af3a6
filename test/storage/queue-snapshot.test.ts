import { afterEach, describe, expect, it } from "vitest";
import type { Command } from "../../src/queue/commands.js";
import type { QueueApplyResult } from "../../src/queue/results.js";
import type { SnapshotMeta } from "../../src/raft/types.js";
import { QUEUE_SUBLEVEL } from "../../src/storage/queue-keys.js";
import { MAX_SNAPSHOT_CHUNK_BYTES } from "../../src/storage/queue-snapshot.js";
import { cmd, msg, plainData, seededRandom } from "../queue/helpers.js";
import { RandomCommands } from "../queue/random-commands.js";
import { MEMBERSHIP, closeStore, entryOf, everyStats, openStore, plainResult, queueKeys, type OpenStore } from "../queue/store-harness.js";
import { makeTempDir, removeDir } from "./helpers.js";

const BIG_BODY_BYTES = 1_500_000;

const dirs: string[] = [];
const opened: OpenStore[] = [];

async function freshStore(label: string): Promise<{ dir: string; open: OpenStore }> {
  const dir = await makeTempDir(label);
  dirs.push(dir);
  const open = await openStore(dir);
  opened.push(open);
  return { dir, open };
}

afterEach(async () => {
  for (const open of opened.splice(0)) await closeStore(open).catch(() => undefined);
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

/** Applies `commands` as entries after the store's last index, persisting every `batch` entries. */
async function applyAll(open: OpenStore, startIndex: number, commands: readonly Command[], batch = 7): Promise<QueueApplyResult[]> {
  const results: QueueApplyResult[] = [];
  let index = startIndex;
  for (const command of commands) {
    index += 1;
    results.push(open.store.apply(entryOf(index, command)));
    if (index % batch === 0) await open.store.persist(index, MEMBERSHIP);
  }
  await open.store.persist(index, MEMBERSHIP);
  return results;
}

/** A seeded command sequence, plus a queue of bodies bigger than a chunk. */
function workload(seed: number, count: number): Command[] {
  const script = new RandomCommands(seededRandom(seed));
  const commands: Command[] = [
    cmd.create("big", 1, { maxMessageBytes: 4_000_000 }),
    cmd.enqueue("big", 1, [{ ...msg(""), body: new Uint8Array(BIG_BODY_BYTES).fill(7), headers: { h: "v" } }, "small"]),
  ];
  for (let n = 0; n < count; n++) commands.push(script.next());
  return commands;
}

/** Every chunk of a reader, checking each one's size bound. */
async function readAll(open: OpenStore): Promise<{ chunks: Uint8Array[]; meta: SnapshotMeta }> {
  const reader = open.store.openSnapshot();
  const meta: SnapshotMeta = { index: reader.appliedIndex, term: 1, membership: reader.membership ?? MEMBERSHIP };
  const chunks: Uint8Array[] = [];
  try {
    for (let chunk = await reader.next(); chunk !== null; chunk = await reader.next()) {
      expect(chunk.byteLength).toBeLessThanOrEqual(MAX_SNAPSHOT_CHUNK_BYTES);
      chunks.push(chunk);
    }
  } finally {
    await reader.close();
  }
  return { chunks, meta };
}

/** Keys of the queue sublevel that are not the current generation's or its pointer. */
async function strayKeys(open: OpenStore): Promise<string[]> {
  const keys = await queueKeys(open.root);
  const pointer = await open.root.sublevel<string, string>(QUEUE_SUBLEVEL, {}).get("current");
  const prefix = `!g${Number(pointer).toString(16).padStart(8, "0")}!`;
  return keys.filter((key) => key !== "current" && !key.startsWith(prefix));
}

describe("queue store snapshot transfer", () => {
  it("streams a frozen view that a second store installs and then answers exactly like the first", async () => {
    const a = await freshStore("queue-snap-a");
    const commands = workload(11, 600);
    await applyAll(a.open, 0, commands);
    const expectedAtSnapshot = everyStats(a.open.store.machine);
    const snapshotIndex = commands.length;

    // A keeps applying while the view is read: the view must not move.
    const reader = a.open.store.openSnapshot();
    expect(reader.appliedIndex).toBe(snapshotIndex);
    const later = workload(12, 300).slice(2);
    const laterResults = await applyAll(a.open, snapshotIndex, later);
    const chunks: Uint8Array[] = [];
    for (let chunk = await reader.next(); chunk !== null; chunk = await reader.next()) {
      expect(chunk.byteLength).toBeLessThanOrEqual(MAX_SNAPSHOT_CHUNK_BYTES);
      chunks.push(chunk);
    }
    await reader.close();
    // The big body alone spans two chunks.
    expect(chunks.length).toBeGreaterThanOrEqual(2);

    // B holds other state first; the install replaces it whole.
    const b = await freshStore("queue-snap-b");
    await applyAll(b.open, 0, workload(99, 200));
    const writer = b.open.store.startRestore();
    for (const chunk of chunks) await writer.write(chunk);
    const meta: SnapshotMeta = { index: snapshotIndex, term: 1, membership: MEMBERSHIP };
    await b.open.root.batch([...b.open.store.installOperations(meta)]);
    await b.open.store.reload();

    expect(b.open.store.appliedState()).toEqual({ appliedIndex: snapshotIndex, membership: MEMBERSHIP });
    expect(everyStats(b.open.store.machine)).toEqual(expectedAtSnapshot);
    // From there B answers every later command as A did, bodies included.
    const replayed = await applyAll(b.open, snapshotIndex, later);
    expect(replayed.map(plainResult)).toEqual(laterResults.map(plainResult));
    for (const [position, result] of laterResults.entries()) {
      const mine = replayed[position];
      if (result.kind !== "lease" || !result.ok || mine?.kind !== "lease" || !mine.ok) continue;
      expect(plainData(await b.open.store.readDeliveries(mine.value.deliveries))).toEqual(
        plainData(await a.open.store.readDeliveries(result.value.deliveries)),
      );
    }
    expect(everyStats(b.open.store.machine)).toEqual(everyStats(a.open.store.machine));

    // The big body came across whole, and B's old generation is deleted in the background.
    const big = b.open.store.apply(entryOf(snapshotIndex + later.length + 1, cmd.lease("big", 10_000_000, 10)));
    if (big.kind !== "lease" || !big.ok) throw new Error("lease on big failed");
    const bodies = (await b.open.store.readDeliveries(big.value.deliveries)).map((delivery) => delivery.body.byteLength);
    expect(bodies).toContain(BIG_BODY_BYTES);
    await b.open.store.settled();
    expect(await strayKeys(b.open)).toEqual([]);

    // The installed state survives a restart.
    await b.open.store.persist(snapshotIndex + later.length + 1, MEMBERSHIP);
    const stats = everyStats(b.open.store.machine);
    await closeStore(b.open);
    const reopened = await openStore(b.dir);
    opened.push(reopened);
    expect(everyStats(reopened.store.machine)).toEqual(stats);
  }, 60_000);

  it("leaves the current state untouched when a transfer is aborted, and deletes what was staged", async () => {
    const source = await freshStore("queue-snap-src");
    await applyAll(source.open, 0, workload(5, 300));
    const { chunks } = await readAll(source.open);

    const target = await freshStore("queue-snap-abort");
    await applyAll(target.open, 0, workload(6, 200));
    const before = everyStats(target.open.store.machine);
    const appliedBefore = target.open.store.appliedState();
    const writer = target.open.store.startRestore();
    for (const chunk of chunks.slice(0, -1)) await writer.write(chunk);
    expect(() => target.open.store.installOperations({ index: 1, term: 1, membership: MEMBERSHIP })).toThrow(/no complete staged snapshot/);
    await writer.abort();
    await expect(writer.write(chunks.at(-1) as Uint8Array)).rejects.toThrow(/aborted/);

    expect(everyStats(target.open.store.machine)).toEqual(before);
    expect(target.open.store.appliedState()).toEqual(appliedBefore);
    expect(await strayKeys(target.open)).toEqual([]);
  }, 60_000);

  it("after a crash mid-transfer, reopens with the current state intact and the staged keys deleted", async () => {
    const source = await freshStore("queue-snap-src2");
    await applyAll(source.open, 0, workload(8, 300));
    const { chunks } = await readAll(source.open);

    const target = await freshStore("queue-snap-crash");
    await applyAll(target.open, 0, workload(9, 200));
    const before = everyStats(target.open.store.machine);
    const writer = target.open.store.startRestore();
    for (const chunk of chunks.slice(0, Math.ceil(chunks.length / 2))) await writer.write(chunk);
    expect((await strayKeys(target.open)).length).toBeGreaterThan(0);

    await closeStore(target.open);
    const reopened = await openStore(target.dir);
    opened.push(reopened);
    expect(everyStats(reopened.store.machine)).toEqual(before);
    await reopened.store.settled();
    expect(await strayKeys(reopened)).toEqual([]);
  }, 60_000);

  it("aborts an earlier staging when a new transfer starts, and installs the new one", async () => {
    const source = await freshStore("queue-snap-src3");
    await applyAll(source.open, 0, workload(3, 300));
    const expected = everyStats(source.open.store.machine);
    const { chunks, meta } = await readAll(source.open);

    const target = await freshStore("queue-snap-twice");
    const stale = target.open.store.startRestore();
    await stale.write(chunks[0] as Uint8Array);
    const fresh = target.open.store.startRestore();
    await expect(stale.write(chunks[1] ?? new Uint8Array(0))).rejects.toThrow(/aborted/);
    for (const chunk of chunks) await fresh.write(chunk);
    await target.open.root.batch([...target.open.store.installOperations(meta)]);
    await target.open.store.reload();
    expect(everyStats(target.open.store.machine)).toEqual(expected);
    await target.open.store.settled();
    expect(await strayKeys(target.open)).toEqual([]);
  }, 60_000);
});
