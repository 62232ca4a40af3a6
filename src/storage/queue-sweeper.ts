/**
 * Deletes the records of dropped messages and idempotency keys (a purged or deleted queue) in the
 * background, a bounded number per LevelDB batch, so dropping a big queue never blocks the event loop.
 * (When those deletes went into the Raft step's one batch, each 60,000 messages held every node's event
 * loop for over a second: long enough for followers to depose the leader.)
 *
 * Nothing depends on when, or whether before a crash, a record is deleted: the state that dropped it is
 * durable first, and a restart recognises what is left (its queue incarnation is gone, or its id is at or
 * below the queue's purgedThroughId) and hands it back here (queue-loader.ts). Dropped keys are never
 * written again (incarnations, message ids and body ids are never reused), so a late delete cannot hit a
 * live record.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { messageKey, type GenerationSublevel } from "./queue-keys.js";

/** Deletes per LevelDB batch: about 10-20 ms of the event loop each, between which everything else runs. */
export const SWEEP_KEYS_PER_BATCH = 2_000;

/**
 * The bookkeeping of many messages (purge, queue deletion), or other records (their emptied body groups, a
 * deleted queue's idempotency keys), dropped at once.
 */
export type BulkDrop =
  | { readonly kind: "messages"; readonly incarnation: number; readonly ids: Float64Array }
  | { readonly kind: "keys"; readonly keys: readonly string[] };

/** Deletes dropped records of one generation, oldest drop first, in bounded batches. */
export class QueueSweeper {
  private readonly work: BulkDrop[] = [];
  /** Records of work[0] already deleted. */
  private done = 0;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private generation: GenerationSublevel,
    /** Told of a failed delete; sweeping stops and what is left waits for the next open. */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Deletes `drop`'s records from now on. Call only once the state that dropped them is on disk. */
  add(drop: BulkDrop): void {
    if (recordsOf(drop) === 0) return;
    this.work.push(drop);
    this.kick();
  }

  /** The state moved to `generation` (a snapshot was installed): the old one is deleted whole elsewhere. */
  switchTo(generation: GenerationSublevel): void {
    this.generation = generation;
    this.work.length = 0;
    this.done = 0;
  }

  /** Resolves once nothing is left to delete (or sweeping stopped on an error). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops between batches and waits for the batch under way; the next open finds what is left. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }

  private kick(): void {
    if (this.running || this.closed || this.work.length === 0) return;
    this.running = this.sweep().then(
      () => {
        this.running = undefined;
        this.kick();
      },
      (error: unknown) => {
        this.running = undefined;
        this.closed = true;
        this.onError(error);
      },
    );
  }

  private async sweep(): Promise<void> {
    while (!this.closed && this.work.length > 0) {
      const generation = this.generation;
      const keys = this.takeKeys(SWEEP_KEYS_PER_BATCH);
      await generation.batch(keys.map((key) => ({ type: "del" as const, key })));
      // Let Raft traffic and client calls run between batches.
      await nextTurn();
    }
  }

  /** At most `limit` keys of the next records, in the order they were dropped. */
  private takeKeys(limit: number): string[] {
    const keys: string[] = [];
    while (keys.length < limit && this.work.length > 0) {
      const drop = this.work[0]!;
      const end = Math.min(recordsOf(drop), this.done + limit - keys.length);
      for (let at = this.done; at < end; at++) {
        keys.push(drop.kind === "keys" ? drop.keys[at]! : messageKey(drop.incarnation, drop.ids[at]!));
      }
      this.done = end;
      if (end === recordsOf(drop)) {
        this.work.shift();
        this.done = 0;
      }
    }
    return keys;
  }
}

function recordsOf(drop: BulkDrop): number {
  return drop.kind === "keys" ? drop.keys.length : drop.ids.length;
}
