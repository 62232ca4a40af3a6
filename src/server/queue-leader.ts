import type { Logger } from "pino";
import { encodeCommand } from "../queue/command-codec.js";
import type { Command, LeaseCommand } from "../queue/commands.js";
import type { Applied, LeaseResult, ResultByKind, Undecodable } from "../queue/results.js";
import type { QueueStateMachine } from "../queue/state-machine.js";
import type { RaftNode } from "../node/raft-node.js";
import { deadlineExceeded, unavailable } from "./grpc-errors.js";
import { withDeadline } from "./call-context.js";
import type { QueueWaiter } from "./queue-waiter.js";

/** What the queue state machine returns for one applied log entry. */
export type QueueApplyResult = Applied | Undecodable;

/**
 * The queue operations as the leader performs them: every change goes through the Raft log and is
 * answered with what the state machine returned once the entry committed; reads wait on ReadIndex.
 */
export class QueueLeader {
  constructor(
    readonly node: RaftNode<QueueApplyResult>,
    readonly stateMachine: QueueStateMachine,
    readonly waiter: QueueWaiter,
    readonly autoCreateQueues: boolean,
    readonly logger: Logger,
    /** Test-only deliberate bug: Enqueue answers before its entry commits (ServerOptions). */
    readonly unsafeAckBeforeCommit = false,
  ) {}

  /** Replicates `command` and returns its result, or throws its QueueError / a retryable error. */
  async propose<C extends Command>(command: C, answerByMs: number): Promise<ResultByKind[C["kind"]]> {
    const applied = await withDeadline(this.node.propose(encodeCommand(command)), answerByMs, () => deadlineExceeded(`the ${command.kind} command`));
    if (!applied.ok) throw applied.error;
    if (applied.kind !== command.kind) throw new Error(`applied a ${applied.kind} entry where a ${command.kind} was proposed`);
    return applied.value as ResultByKind[C["kind"]];
  }

  /** Waits until local state reflects every write committed before this call (linearizable read). */
  async readBarrier(answerByMs: number): Promise<void> {
    await withDeadline(this.node.readBarrier(), answerByMs, () => deadlineExceeded("the read"));
  }

  /**
   * Leases messages, long-polling up to `waitUntilMs` when none is ready. It only writes a lease entry
   * when the leader's state says a message is ready (or the queue is unknown, to answer NOT_FOUND from
   * the log), so an idle long poll costs no log entries.
   */
  async leaseWithWait(command: LeaseCommand, waitUntilMs: number, answerByMs: number, signal: AbortSignal): Promise<LeaseResult> {
    const untilMs = Math.min(waitUntilMs, answerByMs);
    for (;;) {
      if (!this.node.isLeader()) throw unavailable(`node ${this.node.id} lost leadership during the long poll: retry`);
      const now = Date.now();
      const known = this.stateMachine.settingsOf(command.queue) !== undefined;
      if (!known || this.stateMachine.hasReady(command.queue, now)) {
        const result = await this.propose({ ...command, nowMs: now }, answerByMs);
        if (result.deliveries.length > 0 || Date.now() >= untilMs) return result;
      } else if (now >= untilMs || signal.aborted) {
        return { deliveries: [] };
      }
      await this.waiter.sleep(command.queue, untilMs, signal);
    }
  }
}
