import type { Logger } from "pino";
import { encodeCommand } from "../queue/command-codec.js";
import type { Command, EnqueueCommand, LeaseCommand } from "../queue/commands.js";
import type { Delivery, LeasedMessage, QueueApplyResult, ResultByKind } from "../queue/results.js";
import type { QueueStateMachine } from "../queue/state-machine.js";
import type { RaftNode } from "../node/raft-node.js";
import { deadlineExceeded, unavailable } from "./grpc-errors.js";
import { withDeadline } from "./call-context.js";
import { EnqueueCoalescer, type JoinedResult } from "./enqueue-coalescer.js";
import { LeaseCoalescer } from "./lease-coalescer.js";
import type { QueueWaiter } from "./queue-waiter.js";

export type { QueueApplyResult };

/**
 * Where the leader finds the queue state: its memory (replaced when a snapshot is installed, so read
 * `machine` each time) and the bodies of leased messages. QueueStore (src/storage/queue-store.ts) is one.
 */
export interface QueueStateSource {
  readonly machine: QueueStateMachine;
  /** The deliveries of a lease with bodies and headers; messages gone since are left out. */
  readDeliveries(leased: readonly LeasedMessage[]): Promise<Delivery[]>;
}

/**
 * The queue operations as the leader performs them: every change goes through the Raft log and is
 * answered with what the state machine returned once the entry committed; reads wait on ReadIndex.
 */
export class QueueLeader {
  constructor(
    readonly node: RaftNode<QueueApplyResult>,
    readonly state: QueueStateSource,
    readonly waiter: QueueWaiter,
    readonly autoCreateQueues: boolean,
    readonly logger: Logger,
    /** Test-only deliberate bug: Enqueue answers before its entry commits (ServerOptions). */
    readonly unsafeAckBeforeCommit = false,
  ) {
    // What the coalescers hold joins the next Ready even when that Ready was scheduled first in this
    // turn (an Ack's proposal): a Subscribe refill then rides with the ack that made room for it.
    node.addProposalSource(() => {
      this.joinedEnqueues.flushNow();
      this.joinedLeases.flushNow();
    });
  }

  /** The queue state in memory as of now (for reads and long-poll checks). */
  get stateMachine(): QueueStateMachine {
    return this.state.machine;
  }

  /** Single-message enqueues of one turn joined into one log entry per queue. */
  private readonly joinedEnqueues = new EnqueueCoalescer(
    (command, answerByMs) => this.propose(command, answerByMs),
    () => deadlineExceeded("the enqueue command"),
  );

  /** Leases of one turn (Dequeue calls, Subscribe refills) joined into one log entry per queue. */
  private readonly joinedLeases = new LeaseCoalescer(
    (command, answerByMs) => this.propose(command, answerByMs),
    (queue) => this.stateMachine.hasReady(queue, Date.now()),
    () => deadlineExceeded("the lease command"),
  );

  /**
   * Enqueues the one message of `command` (Enqueue, EnqueueStream) in a log entry shared with the other
   * single enqueues of this turn; the answer is the one it would get alone.
   */
  enqueueOne(command: EnqueueCommand, answerByMs: number): Promise<JoinedResult> {
    return this.joinedEnqueues.enqueue(command, answerByMs);
  }

  /** Replicates `command` and returns its result, or throws its QueueError / a retryable error. */
  async propose<C extends Command>(command: C, answerByMs: number): Promise<ResultByKind[C["kind"]]> {
    const proposed = this.node.propose(encodeCommand(command));
    if (command.kind === "ack" && command.receipts.length > 0) this.waiter.acksProposed(command.queue, command.receipts);
    const applied = await withDeadline(proposed, answerByMs, () => deadlineExceeded(`the ${command.kind} command`));
    if (!applied.ok) throw applied.error;
    if (applied.kind !== command.kind) throw new Error(`applied a ${applied.kind} entry where a ${command.kind} was proposed`);
    return applied.value as ResultByKind[C["kind"]];
  }

  /** Waits until local state reflects every write committed before this call (linearizable read). */
  async readBarrier(answerByMs: number): Promise<void> {
    await withDeadline(this.node.readBarrier(), answerByMs, () => deadlineExceeded("the read"));
  }

  /**
   * Replicates a lease (in a log entry shared with the other leases of this turn on the same queue) and
   * returns its deliveries with bodies and headers, read from storage once the entry is persisted (the
   * node resolves a proposal only then). A message purged or deleted since the lease is left out.
   */
  async lease(command: LeaseCommand, answerByMs: number): Promise<Delivery[]> {
    const leased = await this.joinedLeases.lease(command, answerByMs);
    return leased.length === 0 ? [] : this.state.readDeliveries(leased);
  }

  /**
   * Leases messages, long-polling up to `waitUntilMs` when none is ready. It only writes a lease entry
   * when the leader's state says a message is ready (or the queue is unknown, to answer NOT_FOUND from
   * the log), so an idle long poll costs no log entries.
   */
  async leaseWithWait(command: LeaseCommand, waitUntilMs: number, answerByMs: number, signal: AbortSignal): Promise<Delivery[]> {
    const untilMs = Math.min(waitUntilMs, answerByMs);
    for (;;) {
      if (!this.node.isLeader()) throw unavailable(`node ${this.node.id} lost leadership during the long poll: retry`);
      const now = Date.now();
      const known = this.stateMachine.settingsOf(command.queue) !== undefined;
      if (!known || this.stateMachine.hasReady(command.queue, now)) {
        const deliveries = await this.lease({ ...command, nowMs: now }, answerByMs);
        if (deliveries.length > 0 || Date.now() >= untilMs) return deliveries;
      } else if (now >= untilMs || signal.aborted) {
        return [];
      }
      await this.waiter.sleep(command.queue, untilMs, signal);
    }
  }
}
