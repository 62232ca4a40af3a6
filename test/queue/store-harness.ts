/** Opening, closing and inspecting a LevelDB-backed QueueStore in a throwaway directory, for the storage tests. */
import type { Command } from "../../src/queue/commands.js";
import { encodeCommand } from "../../src/queue/command-codec.js";
import type { QueueApplyResult } from "../../src/queue/results.js";
import type { QueueStateMachine } from "../../src/queue/state-machine.js";
import { EntryType, type Entry, type Membership } from "../../src/raft/types.js";
import { newRootLevel, type RootLevel } from "../../src/storage/level-raft-storage.js";
import { bodyGroupOf } from "../../src/queue/queue-storage.js";
import { QUEUE_SUBLEVEL, decodeMeta } from "../../src/storage/queue-keys.js";
import { QueueStore } from "../../src/storage/queue-store.js";
import { plainData } from "./helpers.js";

/** A membership to persist with; the queue store only keeps it. */
export const MEMBERSHIP: Membership = { members: [{ id: "n1", address: "127.0.0.1:1", voter: true }] };

/** An open root database and the queue store in it. */
export interface OpenStore {
  readonly root: RootLevel;
  readonly store: QueueStore;
}

export async function openStore(dir: string): Promise<OpenStore> {
  const root = newRootLevel(dir);
  await root.open();
  return { root, store: await QueueStore.open(root) };
}

/** Closes the store, then its database (pending background deletions stop; the next open resumes them). */
export async function closeStore(open: OpenStore): Promise<void> {
  await open.store.close();
  await open.root.close();
}

/** The Normal log entry at `index` holding `command`. */
export function entryOf(index: number, command: Command): Entry {
  return { index, term: 1, type: EntryType.Normal, data: encodeCommand(command) };
}

/** A result as plain data: errors by code and message, bodies as byte arrays. */
export function plainResult(applied: QueueApplyResult): unknown {
  if (!applied.ok) return { kind: applied.kind, code: applied.error.code, message: applied.error.message };
  return plainData(applied);
}

/** Everything the reads say about every queue at the log time. */
export function everyStats(sm: QueueStateMachine): unknown {
  return {
    nowMs: sm.nowMs,
    queues: sm.listQueues().map((queue) => ({
      queue,
      settings: sm.settingsOf(queue),
      stats: sm.stats(queue, sm.nowMs),
      wake: sm.nextWakeMs(queue),
      ready: sm.hasReady(queue, sm.nowMs),
    })),
  };
}

/** Every key of the queue sublevel, as stored (generation prefixes included). */
export async function queueKeys(root: RootLevel): Promise<string[]> {
  return root.sublevel<string, string>(QUEUE_SUBLEVEL, {}).keys().all();
}

/**
 * The body groups the stored message records refer to, and the body group records stored, each sorted
 * and without repeats: equal when no body record leaked or went missing.
 */
export async function storedBodyGroups(root: RootLevel): Promise<{ referenced: number[]; stored: number[] }> {
  const queue = root.sublevel<string, Uint8Array>(QUEUE_SUBLEVEL, { keyEncoding: "utf8", valueEncoding: "view" });
  const referenced = new Set<number>();
  const stored = new Set<number>();
  for await (const [key, value] of queue.iterator()) {
    if (key.includes("!m/")) referenced.add(bodyGroupOf(decodeMeta(1, value).bodyId));
    const body = /!b\/([0-9a-f]+)$/.exec(key);
    if (body !== null) stored.add(parseInt(body[1]!, 16));
  }
  const sorted = (groups: Set<number>) => [...groups].sort((a, b) => a - b);
  return { referenced: sorted(referenced), stored: sorted(stored) };
}
