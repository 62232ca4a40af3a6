/** Remembers idempotency keys for one queue's dedup window, measured in log time. */
export class DedupIndex {
  /**
   * Key -> first id and expiry. Every key gets the same window and log time never goes back, so the
   * Map's insertion order is also expiry order: pruning only ever looks at the front.
   */
  private readonly entries = new Map<string, { readonly id: number; readonly expiresAtMs: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  /** Number of keys remembered. */
  get size(): number {
    return this.entries.size;
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
    this.entries.set(key, { id, expiresAtMs: nowMs + this.windowMs });
  }

  /** Forgets the keys whose window ended at or before `nowMs`. */
  prune(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.entries.delete(key);
    }
  }

  private forgetOldest(): void {
    for (const key of this.entries.keys()) {
      this.entries.delete(key);
      return;
    }
  }
}
