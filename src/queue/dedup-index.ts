/** Remembers idempotency keys for one queue's dedup window, measured in log time. */
import type { DedupRecord } from "./queue-storage.js";

/** Told of every key remembered and forgotten, so they can be persisted. */
export interface DedupListener {
  remembered(record: DedupRecord): void;
  forgotten(key: string): void;
}

export class DedupIndex {
  /**
   * Key -> first id and expiry. Every key gets the same window and log time never goes back, so the
   * Map's insertion order is also expiry order: pruning only ever looks at the front. Keys are only
   * remembered with a message id just assigned, so that order is also (expiresAtMs, id) order, which is
   * how `restore` rebuilds it.
   */
  private readonly entries = new Map<string, { readonly id: number; readonly expiresAtMs: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly listener: DedupListener,
  ) {}

  /** Number of keys remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** Every key remembered, oldest first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** The id first enqueued under `key`, if that was less than the window before `nowMs`. */
  lookup(key: string, nowMs: number): number | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && nowMs < entry.expiresAtMs ? entry.id : undefined;
  }

  /** Records `key` for message `id` enqueued at `nowMs`, forgetting the oldest key when full. */
  remember(key: string, id: number, nowMs: number): void {
    // Deleting first moves a re-used expired key to the back, keeping insertion order equal to expiry order.
    this.entries.delete(key);
    if (this.entries.size >= this.maxKeys) this.forgetOldest();
    const expiresAtMs = nowMs + this.windowMs;
    this.entries.set(key, { id, expiresAtMs });
    this.listener.remembered({ key, id, expiresAtMs });
  }

  /** Forgets the keys whose window ended at or before `nowMs`. */
  prune(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.forget(key);
    }
  }

  /** Rebuilds the keys from their records (in any order), without telling the listener. */
  restore(records: readonly DedupRecord[]): void {
    const ordered = [...records].sort((a, b) => a.expiresAtMs - b.expiresAtMs || a.id - b.id);
    for (const { key, id, expiresAtMs } of ordered) this.entries.set(key, { id, expiresAtMs });
  }

  private forgetOldest(): void {
    for (const key of this.entries.keys()) {
      this.forget(key);
      return;
    }
  }

  private forget(key: string): void {
    this.entries.delete(key);
    this.listener.forgotten(key);
  }
}
