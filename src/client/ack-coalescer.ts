/**
 * Joins the acks of single deliveries into Ack calls of many receipts: with no Ack of a queue in flight,
 * the receipts acked in this turn of the event loop go at once, together; receipts acked while a call is
 * in flight wait for it and go together in the next (the client-side twin of the leader's group commit).
 * So a consumer that acks each message as it finishes costs one call, and one log entry, per batch of
 * acks rather than per message, and never waits on a timer.
 */
import type { AckResult } from "./client.js";

/** Receipts per Ack call at most (the server takes up to 10,000 ids and receipts per request). */
export const MAX_RECEIPTS_PER_ACK = 1_000;

interface Waiter {
  readonly resolve: (acked: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/** One queue's acks: those waiting for the next call (by receipt), and whether a call is in flight. */
interface QueueAcks {
  readonly waiting: Map<string, Waiter[]>;
  inFlight: boolean;
  scheduled: boolean;
}

export class AckCoalescer {
  private readonly queues = new Map<string, QueueAcks>();

  /** `send` acks `receipts` of `queue` in one call. */
  constructor(private readonly send: (queue: string, receipts: string[]) => Promise<AckResult>) {}

  /** Acks one delivery: true once acked, false if the server refused the receipt (the lease was lost). */
  ack(queue: string, receipt: string): Promise<boolean> {
    let acks = this.queues.get(queue);
    if (acks === undefined) this.queues.set(queue, (acks = { waiting: new Map(), inFlight: false, scheduled: false }));
    const queued = acks;
    const promise = new Promise<boolean>((resolve, reject) => {
      const waiters = queued.waiting.get(receipt);
      // The same receipt twice in one call would be refused the second time: both share one answer.
      if (waiters === undefined) queued.waiting.set(receipt, [{ resolve, reject }]);
      else waiters.push({ resolve, reject });
    });
    this.schedule(queue, queued);
    return promise;
  }

  private schedule(queue: string, acks: QueueAcks): void {
    if (acks.inFlight || acks.scheduled || acks.waiting.size === 0) return;
    acks.scheduled = true;
    // The acks of this turn (a loop over a batch of deliveries) all join the call.
    setImmediate(() => {
      acks.scheduled = false;
      void this.flush(queue, acks);
    });
  }

  private async flush(queue: string, acks: QueueAcks): Promise<void> {
    const batch: [string, Waiter[]][] = [];
    for (const entry of acks.waiting) {
      if (batch.length === MAX_RECEIPTS_PER_ACK) break;
      batch.push(entry);
    }
    for (const [receipt] of batch) acks.waiting.delete(receipt);
    acks.inFlight = true;
    try {
      const result = await this.send(
        queue,
        batch.map(([receipt]) => receipt),
      );
      const refused = new Set(result.refusedReceipts);
      for (const [receipt, waiters] of batch) for (const waiter of waiters) waiter.resolve(!refused.has(receipt));
    } catch (error) {
      for (const [, waiters] of batch) for (const waiter of waiters) waiter.reject(error);
    } finally {
      acks.inFlight = false;
      if (acks.waiting.size === 0) this.queues.delete(queue);
      else this.schedule(queue, acks);
    }
  }
}
