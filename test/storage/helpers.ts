/** Shared builders for the storage tests: entries, steps and throwaway data directories. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EntryType, type Entry, type HardState } from "../../src/raft/types.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";

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

/** A step; omitted parts mean "unchanged". */
export function step(parts: { hardState?: HardState; entries?: readonly Entry[] }): PersistStep {
  return { hardState: parts.hardState ?? null, entries: parts.entries ?? [] };
}

/** A fresh empty directory under the OS temp dir; pass it to `removeDir` when done. */
export function makeTempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `raftq-${label}-`));
}

/** Removes a directory made by `makeTempDir`. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
