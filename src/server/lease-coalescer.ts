/**
 * Joins the leases (Dequeue calls, Subscribe refills) that reach the leader in the same turn of the event
 * loop, for the same queue and lease length, into one lease command: one log entry, replicated and
 * written once, for many consumers. The state machine leases ready messages in order, up to the sum of
 * what the callers asked (at most MAX_LEASE_MESSAGES a command); each caller takes the next part, up to
 * its own max_messages, in the order the calls arrived, so every leased message goes to exactly one.
 *
 * One lease carries at most MAX_LEASE_BYTES of deliveries, so large messages can cut a joined lease short
 * where separate leases would each have had their own budget. A caller left with nothing while messages
 * are still ready then leases again on its own: a consumer is never answered empty while messages wait.
 * An error (the queue missing, leadership lost) is every caller's, as each would have had it alone.
 */
import type { LeaseCommand } from "../queue/commands.js";
import { MAX_LEASE_MESSAGES } from "../queue/limits.js";
import type { LeaseResult, LeasedMessage } from "../queue/results.js";
import { DEFAULT_MAX_MESSAGES } from "../queue/settings.js";
import { splitInOrder } from "../protocol/frames.js";
import { withDeadline } from "./call-context.js";
import { leaseCommand } from "./queue-requests.js";
import { TurnGroups } from "./turn-groups.js";

/** Proposes one lease command and resolves with its result, or throws (a QueueError if it was refused). */
export type ProposeLease = (command: LeaseCommand, answerByMs: number) => Promise<LeaseResult>;

/** Whether `queue` has a message ready to lease now, in the leader's state as applied. */
export type HasReady = (queue: string) => boolean;

interface Waiter {
  /** Messages asked for (max_messages, 0 meaning DEFAULT_MAX_MESSAGES). */
  readonly count: number;
  readonly answerByMs: number;
  readonly resolve: (leased: readonly LeasedMessage[]) => void;
  readonly reject: (error: unknown) => void;
}

interface Joined {
  readonly queue: string;
  readonly visibilityTimeoutMs: number;
  readonly waiters: Waiter[];
}

export class LeaseCoalescer {
  /** Waiting leases by queue and lease length; each list is proposed at the end of this turn. */
  private readonly waiting = new TurnGroups<Joined>((groups) => this.flush(groups));

  constructor(
    private readonly propose: ProposeLease,
    private readonly hasReady: HasReady,
    /** The error a caller whose own deadline passes first gets. */
    private readonly deadlineExceeded: () => Error,
  ) {}

  /** Leases up to `command.maxMessages` messages in a joined lease command; resolves with them. */
  lease(command: LeaseCommand, answerByMs: number): Promise<readonly LeasedMessage[]> {
    const { queue, visibilityTimeoutMs } = command;
    const key = `${visibilityTimeoutMs}/${queue}`;
    const { waiters } = this.waiting.group(key, () => ({ queue, visibilityTimeoutMs, waiters: [] }));
    const count = command.maxMessages || DEFAULT_MAX_MESSAGES;
    const leased = new Promise<readonly LeasedMessage[]>((resolve, reject) => waiters.push({ count, answerByMs, resolve, reject }));
    return withDeadline(leased, answerByMs, this.deadlineExceeded);
  }

  /** Proposes what waits now rather than at the end of the turn (RaftNode.addProposalSource). */
  flushNow(): void {
    this.waiting.flushNow();
  }

  private flush(waiting: ReadonlyMap<string, Joined>): void {
    for (const { queue, visibilityTimeoutMs, waiters } of waiting.values()) {
      const commands = splitInOrder(waiters, (waiter) => waiter.count, Number.POSITIVE_INFINITY, MAX_LEASE_MESSAGES);
      for (const part of commands) void this.proposeJoined(queue, visibilityTimeoutMs, part);
    }
  }

  private async proposeJoined(queue: string, visibilityTimeoutMs: number, waiters: readonly Waiter[]): Promise<void> {
    const maxMessages = waiters.reduce((sum, waiter) => sum + waiter.count, 0);
    const command = leaseCommand(queue, maxMessages, visibilityTimeoutMs, Date.now());
    let deliveries: readonly LeasedMessage[];
    try {
      ({ deliveries } = await this.propose(command, Math.max(...waiters.map((waiter) => waiter.answerByMs))));
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
      return;
    }
    let taken = 0;
    const leftEmpty: Waiter[] = [];
    for (const waiter of waiters) {
      const part = deliveries.slice(taken, taken + waiter.count);
      taken += part.length;
      if (part.length === 0 && deliveries.length > 0 && waiters.length > 1) leftEmpty.push(waiter);
      else waiter.resolve(part);
    }
    // Cut short by the byte budget, not by the queue running dry: lease for these on their own.
    const stillReady = leftEmpty.length > 0 && this.hasReady(queue);
    for (const waiter of leftEmpty) {
      if (stillReady) void this.proposeJoined(queue, visibilityTimeoutMs, [waiter]);
      else waiter.resolve([]);
    }
  }
}
