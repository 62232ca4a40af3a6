import type { QueueStateMachine } from "../queue/state-machine.js";

/** Where the waiter reads the current queue state (replaced when a snapshot is installed). */
export interface QueueStateHolder {
  readonly machine: QueueStateMachine;
}

/** Longest single sleep; a waiter re-checks at least this often even if nothing woke it. */
const MAX_SLEEP_MS = 1000;

/**
 * Lets long polls and subscriptions sleep until a queue may have a ready message: woken by every
 * applied batch (an enqueue, nack or expiry may have changed things), by the queue's next due time,
 * or by the caller's own deadline or cancellation.
 */
export class QueueWaiter {
  private readonly sleepers = new Set<() => void>();
  /** Per queue, who wants to hear of acks as they are proposed (subscriptions freeing prefetch slots). */
  private readonly ackListeners = new Map<string, Set<(receipts: readonly string[]) => void>>();

  constructor(private readonly state: QueueStateHolder) {}

  /** Wakes every sleeper: call after each applied batch and on leadership changes. */
  wakeAll(): void {
    const sleepers = [...this.sleepers];
    this.sleepers.clear();
    for (const wake of sleepers) wake();
  }

  /**
   * Acks of `receipts` on `queue` were just proposed: listeners hear it in this turn, so a lease they
   * propose in turn joins the ack's Raft batch (one write and one round trip for both) instead of
   * waiting a round trip for the ack to apply.
   */
  acksProposed(queue: string, receipts: readonly string[]): void {
    for (const listener of this.ackListeners.get(queue) ?? []) listener(receipts);
  }

  /** Calls `listener` with the receipts of every ack proposed on `queue` until the returned function is called. */
  onAcksProposed(queue: string, listener: (receipts: readonly string[]) => void): () => void {
    let listeners = this.ackListeners.get(queue);
    if (listeners === undefined) this.ackListeners.set(queue, (listeners = new Set()));
    const registered = listeners;
    registered.add(listener);
    return () => {
      registered.delete(listener);
      if (registered.size === 0 && this.ackListeners.get(queue) === registered) this.ackListeners.delete(queue);
    };
  }

  /** Resolves when something changed, when `queue` has a message due, at `untilMs`, or on `signal`. */
  sleep(queue: string, untilMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const dueMs = this.state.machine.nextWakeMs(queue);
      const wakeAtMs = Math.min(untilMs, dueMs === undefined ? Infinity : dueMs, Date.now() + MAX_SLEEP_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, wakeAtMs - Date.now()));
      this.sleepers.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
