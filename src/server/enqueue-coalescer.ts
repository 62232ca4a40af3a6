/**
 * Joins single-message enqueues that reach the leader in the same turn of the event loop, for the same
 * queue, into one enqueue command: one log entry, replicated and written once, for many callers
 * (EnqueueStream's messages and unary Enqueue calls). The state machine applies a batch all or nothing,
 * so a batch it refuses (one message over the queue's size limit, the queue full or missing) is proposed
 * again message by message, and each caller gets the outcome it would have had alone. A batch whose
 * outcome is unknown (leadership lost) fails every caller with that error, as a lone proposal would.
 */
import { cycleTrace } from "../node/cycle-trace.js";
import type { EnqueueCommand, NewMessage } from "../queue/commands.js";
import { splitInOrder } from "../protocol/frames.js";
import { payloadBytes } from "../queue/delivery-size.js";
import { isQueueError } from "../queue/errors.js";
import type { EnqueueResult } from "../queue/results.js";
import { withDeadline } from "./call-context.js";
import { TurnGroups } from "./turn-groups.js";

/** Messages per joined command at most (a batch's own limit is 1,000). */
export const MAX_JOINED_MESSAGES = 1_000;
/** Payload bytes (delivery-size.ts) per joined command at most, so one log entry stays small next to the 4 MiB Append limit. */
export const MAX_JOINED_BYTES = 1024 * 1024;

/** One message's outcome. */
export interface JoinedResult {
  readonly id: number;
  readonly duplicate: boolean;
}

interface Waiter {
  readonly message: NewMessage;
  readonly answerByMs: number;
  readonly resolve: (result: JoinedResult) => void;
  readonly reject: (error: unknown) => void;
}

/** The enqueues of one turn for one queue (and one autoCreate). */
interface Joined {
  readonly queue: string;
  readonly autoCreate: boolean;
  readonly waiters: Waiter[];
}

/** Proposes one command and resolves with its result, or throws (a QueueError if it was refused). */
export type ProposeEnqueue = (command: EnqueueCommand, answerByMs: number) => Promise<EnqueueResult>;

export class EnqueueCoalescer {
  /** Waiting enqueues by queue; each list is proposed as one command at the end of this turn. */
  private readonly waiting = new TurnGroups<Joined>((groups) => this.flush(groups));

  constructor(
    private readonly propose: ProposeEnqueue,
    /** The error a caller whose own deadline passes first gets. */
    private readonly deadlineExceeded: () => Error,
  ) {}

  /** Enqueues the one message of `command` in a joined command; resolves with its id. */
  enqueue(command: EnqueueCommand, answerByMs: number): Promise<JoinedResult> {
    const [message] = command.messages;
    if (message === undefined || command.messages.length !== 1) throw new Error(`EnqueueCoalescer takes one message per command, got ${command.messages.length}`);
    const key = `${command.autoCreate ? "+" : "-"}${command.queue}`;
    const { waiters } = this.waiting.group(key, () => ({ queue: command.queue, autoCreate: command.autoCreate, waiters: [] }));
    const answered = new Promise<JoinedResult>((resolve, reject) => waiters.push({ message, answerByMs, resolve, reject }));
    return withDeadline(answered, answerByMs, this.deadlineExceeded);
  }

  /** Proposes what waits now rather than at the end of the turn (RaftNode.addProposalSource). */
  flushNow(): void {
    this.waiting.flushNow();
  }

  private flush(waiting: ReadonlyMap<string, Joined>): void {
    cycleTrace?.record("propose", waiting.size);
    for (const { queue, autoCreate, waiters } of waiting.values()) {
      for (const batch of batches(waiters)) void this.proposeJoined(queue, autoCreate, batch);
    }
  }

  private async proposeJoined(queue: string, autoCreate: boolean, waiters: readonly Waiter[]): Promise<void> {
    const command = joined(queue, autoCreate, waiters);
    try {
      const result = await this.propose(command, Math.max(...waiters.map((waiter) => waiter.answerByMs)));
      waiters.forEach((waiter, index) => waiter.resolve({ id: result.ids[index]!, duplicate: result.duplicates[index]! }));
    } catch (error) {
      if (!isQueueError(error) || waiters.length === 1) {
        for (const waiter of waiters) waiter.reject(error);
        return;
      }
      // Refused as a whole, so nothing of it was enqueued: each message again on its own.
      await Promise.all(waiters.map((waiter) => this.proposeJoined(queue, autoCreate, [waiter])));
    }
  }
}

function joined(queue: string, autoCreate: boolean, waiters: readonly Waiter[]): EnqueueCommand {
  return { kind: "enqueue", nowMs: Date.now(), queue, autoCreate, messages: waiters.map((waiter) => waiter.message) };
}

/** `waiters` in order, cut into batches within MAX_JOINED_MESSAGES and MAX_JOINED_BYTES (at least one each). */
function batches(waiters: readonly Waiter[]): Waiter[][] {
  return splitInOrder(waiters, (waiter) => payloadBytes(waiter.message.body, waiter.message.headers), MAX_JOINED_MESSAGES, MAX_JOINED_BYTES);
}
