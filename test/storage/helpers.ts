/** Shared builders for the storage tests: entries, steps, throwaway data directories and raw access to them. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogPosition } from "../../src/raft/log.js";
import { EMPTY_MEMBERSHIP, EntryType, type Entry, type HardState, type SnapshotMeta } from "../../src/raft/types.js";
import { newRootLevel, RAFT_SUBLEVEL, type RootLevel } from "../../src/storage/level-raft-storage.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";

/** The log start of a log that was never compacted. */
export const NO_LOG_START: LogPosition = { index: 0, term: 0 };

/** A Normal entry whose data spells its index and term, so mix-ups show in a diff. */
export function entry(index: number, term: number, data: Uint8Array = new TextEncoder().encode(`i${index}t${term}`)): Entry {
  return { index, term, type: EntryType.Normal, data };
}

/** Entries `from..to` inclusive, all in `term`. */
export function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= to; index++) out.push(entry(index, term));
  return out;
}

/** A step; omitted parts mean "unchanged" (and no snapshot). */
export function step(parts: { snapshot?: SnapshotMeta; hardState?: HardState; entries?: readonly Entry[] }): PersistStep {
  return { snapshot: parts.snapshot ?? null, hardState: parts.hardState ?? null, entries: parts.entries ?? [] };
}

/** A received snapshot's description at `index`/`term`; the membership does not matter to storage. */
export function snapshot(index: number, term: number): SnapshotMeta {
  return { index, term, membership: EMPTY_MEMBERSHIP };
}

/** A fresh empty directory under the OS temp dir; pass it to `removeDir` when done. */
export function makeTempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `raftq-${label}-`));
}

/** Removes a directory made by `makeTempDir`. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** The Raft sublevel of a root database opened raw, to plant or inspect records as a disk fault or an old build would. */
export function rawRaftSublevel(root: RootLevel) {
  return root.sublevel<Uint8Array, Uint8Array>(RAFT_SUBLEVEL, { keyEncoding: "view", valueEncoding: "view" });
}

/** A raw handle on the Raft records, from `rawRaftSublevel`. */
export type RawRaft = ReturnType<typeof rawRaftSublevel>;

/** Opens `dir` raw, runs `use` on its Raft sublevel and closes it again; the directory must not be open elsewhere. */
export async function withRawRaft<T>(dir: string, use: (raft: RawRaft) => Promise<T>): Promise<T> {
  const root = newRootLevel(dir);
  try {
    return await use(rawRaftSublevel(root));
  } finally {
    await root.close();
  }
}
