/**
 * A seeded generator of plausible command sequences for the determinism and invariant tests: a few
 * queues (one the dead-letter queue of the others, possibly missing or deleted, and dead-lettering into one
 * of them in turn), small batches, idempotency keys from a small pool, short leases, acks and nacks by id
 * or by receipts it saw delivered, and clocks that sometimes step back (a new leader).
 */
import type { Command } from "../../src/queue/commands.js";
import type { Applied } from "../../src/queue/results.js";
import type { QueueSettings } from "../../src/queue/settings.js";
import { cmd, msg } from "./helpers.js";

const QUEUES = ["orders", "emails", "dlq"] as const;
const MAX_REMEMBERED_RECEIPTS = 50;

export class RandomCommands {
  private nowMs = 1_000_000;
  private receipts: string[] = [];

  /** Each queue's settings, fixed per seed, so repeated creates are idempotent and auto-creates differ. */
  private readonly profiles: Map<string, Partial<QueueSettings>>;

  constructor(private readonly random: () => number) {
    this.profiles = new Map(QUEUES.map((queue) => [queue, this.profile(queue)]));
  }

  /** The leader clock of the commands generated so far (it may be behind the log time). */
  get clockMs(): number {
    return this.nowMs;
  }

  /** The next command. */
  next(): Command {
    this.tick();
    const queue = this.pick(QUEUES);
    const roll = this.random();
    if (roll < 0.06) return cmd.create(queue, this.nowMs, this.profiles.get(queue));
    if (roll < 0.07) return cmd.remove(queue, this.nowMs);
    if (roll < 0.08) return cmd.purge(queue, this.nowMs);
    if (roll < 0.4) {
      const messages = Array.from({ length: this.int(1, 4) }, () =>
        msg(`m${this.int(0, 999)}`, {
          idempotencyKey: this.random() < 0.3 ? `k${this.int(0, 9)}` : "",
          delayMs: this.random() < 0.2 ? this.int(1, 300) : 0,
          headers: this.random() < 0.2 ? { "x-n": String(this.int(0, 9)) } : {},
        }),
      );
      return cmd.enqueue(queue, this.nowMs, messages, this.random() < 0.3);
    }
    if (roll < 0.65) return cmd.lease(queue, this.nowMs, this.int(0, 4), this.int(0, 3) * 60);
    const targets = { ids: this.ids(), receipts: this.someReceipts() };
    if (roll < 0.8) return cmd.ack(queue, this.nowMs, targets);
    if (roll < 0.92) return cmd.nack(queue, this.nowMs, targets, this.random() < 0.5 ? 0 : this.int(1, 200));
    return cmd.extend(queue, this.nowMs, targets, this.int(0, 3) * 60);
  }

  /** Learns the receipts a lease delivered, to use them in later acks, nacks and extensions. */
  observe(applied: Applied): void {
    if (applied.kind !== "lease" || !applied.ok) return;
    for (const delivery of applied.value.deliveries) this.receipts.push(delivery.receipt);
    this.receipts = this.receipts.slice(-MAX_REMEMBERED_RECEIPTS);
  }

  private profile(queue: string): Partial<QueueSettings> {
    const maxDeliveries = this.int(0, 3);
    return {
      maxDeliveries,
      // "dlq" dead-letters into "orders" in turn: chains and cycles of dead-letter queues must work too.
      deadLetterQueue: maxDeliveries === 0 ? "" : queue === "dlq" ? "orders" : "dlq",
      visibilityTimeoutMs: this.int(0, 3) * 50,
      maxLength: this.int(0, 1) * 40,
      dedupWindowMs: this.int(0, 2) * 200,
    };
  }

  private tick(): void {
    // Mostly forward in small steps; now and then a leader whose clock is behind.
    this.nowMs += this.random() < 0.05 ? -this.int(0, 500) : this.int(0, 40);
  }

  private ids(): number[] {
    return Array.from({ length: this.int(0, 3) }, () => this.int(1, 40));
  }

  private someReceipts(): string[] {
    if (this.receipts.length === 0 || this.random() < 0.4) return [];
    return Array.from({ length: this.int(1, 2) }, () => this.pick(this.receipts));
  }

  private int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }
}
