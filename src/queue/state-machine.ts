/**
 * The replicated queue state machine: every queue of the cluster, changed only by applying commands in
 * log order. It is a pure function of the command sequence: no clock (time is the commands' nowMs, never
 * going back), no randomness, Maps iterated in insertion order only. Apply never throws for a bad command,
 * it returns the error: a throw would stop every node at the same log index.
 */
import { decodeCommand } from "./command-codec.js";
import { validateCommand } from "./command-validation.js";
import type { Command, CommandKind, CreateQueueCommand, EnqueueCommand } from "./commands.js";
import { ErrorCode, QueueError, isQueueError } from "./errors.js";
import { MAX_QUEUES } from "./limits.js";
import { MemoryMessageStore } from "./message-store.js";
import { QueueState } from "./queue-state.js";
import type { Applied, CreateQueueResult, Outcome, QueueStats, ResultByKind, Undecodable } from "./results.js";
import { DEFAULT_SETTINGS, resolveSettings, settingsDifferences, type QueueSettings } from "./settings.js";
import { quote } from "./validation.js";

/** All queues of the cluster; one instance per node, fed every committed command in log order. */
export class QueueStateMachine {
  private readonly queues = new Map<string, QueueState>();
  private lastNowMs = 0;
  /** Queues ever created; numbers each queue's incarnation. */
  private createdTotal = 0;

  /** Log time: the largest nowMs applied so far (0 before the first command). */
  get nowMs(): number {
    return this.lastNowMs;
  }

  /** Applies one command at log time max(nowMs so far, command.nowMs) and returns its outcome. */
  apply<C extends Command>(command: C): Applied<C["kind"]> {
    // Each branch of dispatch answers with the kind it was given; TypeScript cannot follow that through C.
    return this.dispatch(command) as Applied<C["kind"]>;
  }

  /** Decodes and applies one log entry; an entry that is not a command is refused, not thrown. */
  applyEncoded(data: Uint8Array): Applied | Undecodable {
    let command: Command;
    try {
      command = decodeCommand(data);
    } catch (error) {
      if (!isQueueError(error)) throw error;
      return { kind: "undecodable", ok: false, error };
    }
    return this.apply(command);
  }

  /** Names of all queues, sorted. */
  listQueues(): string[] {
    return [...this.queues.keys()].sort();
  }

  /** A queue's settings, or undefined if there is no such queue. */
  settingsOf(queue: string): QueueSettings | undefined {
    return this.queues.get(queue)?.settings;
  }

  /** A queue's counts as of `nowMs` (never before the log time), without changing anything. */
  stats(queue: string, nowMs: number): Outcome<QueueStats> {
    const state = this.queues.get(queue);
    if (state === undefined) return { ok: false, error: notFound(queue) };
    return { ok: true, value: state.stats(Math.max(this.lastNowMs, nowMs)) };
  }

  /** Whether a lease on `queue` at `nowMs` would return a message (false for a missing queue). */
  hasReady(queue: string, nowMs: number): boolean {
    return this.queues.get(queue)?.hasReady(Math.max(this.lastNowMs, nowMs)) ?? false;
  }

  /**
   * Whether the delivery named by `receipt` is still leased at `nowMs` (default: the log time): not acked,
   * nacked, expired or delivered again. Subscribe uses it to free prefetch slots.
   */
  isLeased(queue: string, receipt: string, nowMs = this.lastNowMs): boolean {
    return this.queues.get(queue)?.isLeased(receipt, Math.max(this.lastNowMs, nowMs)) ?? false;
  }

  /**
   * When a lease on `queue` could next return a message with no other command in between: a log time
   * (0 = now), or undefined if only a new enqueue or nack (or a missing queue's creation) can change that.
   * Long polls and subscriptions sleep until then, or until a command touches the queue.
   */
  nextWakeMs(queue: string): number | undefined {
    return this.queues.get(queue)?.nextWakeMs();
  }

  private dispatch(command: Command): Applied {
    const problem = validateCommand(command);
    if (problem !== undefined) return outcome(command.kind, problem);
    const nowMs = Math.max(this.lastNowMs, command.nowMs);
    this.lastNowMs = nowMs;
    switch (command.kind) {
      case "createQueue":
        return outcome(command.kind, this.createQueue(command));
      case "deleteQueue":
        return outcome(command.kind, { deleted: this.queues.delete(command.queue) });
      case "purgeQueue":
        return outcome(command.kind, this.onQueue(command.queue, nowMs, (queue) => ({ purged: queue.purge() })));
      case "enqueue":
        return outcome(command.kind, this.enqueue(command, nowMs));
      case "lease":
        return outcome(
          command.kind,
          this.onQueue(command.queue, nowMs, (queue) =>
            queue.lease(command.maxMessages, command.visibilityTimeoutMs, nowMs),
          ),
        );
      case "ack":
        return outcome(
          command.kind,
          this.onQueue(command.queue, nowMs, (queue) => queue.ack(command.ids, command.receipts)),
        );
      case "nack":
        return outcome(
          command.kind,
          this.onQueue(command.queue, nowMs, (queue) =>
            queue.nack(command.ids, command.receipts, command.delayMs, nowMs),
          ),
        );
      case "extendLease":
        return outcome(
          command.kind,
          this.onQueue(command.queue, nowMs, (queue) =>
            queue.extendLease(command.ids, command.receipts, command.visibilityTimeoutMs, nowMs),
          ),
        );
    }
  }

  private createQueue(command: CreateQueueCommand): CreateQueueResult | QueueError {
    const settings = resolveSettings(command.queue, command);
    if (settings instanceof QueueError) return settings;
    const existing = this.queues.get(command.queue);
    if (existing !== undefined) {
      const differences = settingsDifferences(existing.settings, settings);
      if (differences.length === 0) return { created: false };
      return new QueueError(
        ErrorCode.AlreadyExists,
        `queue ${quote(command.queue)} already exists with other settings (${differences.join("; ")}): ` +
          "create it with its current settings, or delete it first",
      );
    }
    const full = this.checkRoomForQueue(command.queue);
    if (full !== undefined) return full;
    this.addQueue(command.queue, settings);
    return { created: true };
  }

  private enqueue(command: EnqueueCommand, nowMs: number): ResultByKind["enqueue"] | QueueError {
    if (!this.queues.has(command.queue)) {
      if (!command.autoCreate) return notFound(command.queue);
      const full = this.checkRoomForQueue(command.queue);
      if (full !== undefined) return full;
      this.addQueue(command.queue, DEFAULT_SETTINGS);
    }
    return this.onQueue(command.queue, nowMs, (queue) => queue.enqueue(command.messages, nowMs));
  }

  /** Runs `action` on an existing queue brought up to `nowMs`, then routes the messages it dead-lettered. */
  private onQueue<T>(name: string, nowMs: number, action: (queue: QueueState) => T | QueueError): T | QueueError {
    const queue = this.queues.get(name);
    if (queue === undefined) return notFound(name);
    queue.advanceTo(nowMs);
    const result = action(queue);
    this.routeDeadLetters(queue, nowMs);
    return result;
  }

  /** Moves what `source` dead-lettered to its dead-letter queue (created with defaults if missing), or drops it. */
  private routeDeadLetters(source: QueueState, nowMs: number): void {
    const records = source.takeDeadLetters();
    const target = source.settings.deadLetterQueue;
    if (records.length === 0 || target === "") return;
    // Exempt from MAX_QUEUES: each queue names at most one dead-letter queue, so they stay bounded too.
    const deadLetterQueue = this.queues.get(target) ?? this.addQueue(target, DEFAULT_SETTINGS);
    for (const record of records) deadLetterQueue.acceptDeadLetter(record, nowMs);
  }

  private checkRoomForQueue(name: string): QueueError | undefined {
    if (this.queues.size < MAX_QUEUES) return undefined;
    return new QueueError(
      ErrorCode.ResourceExhausted,
      `cannot create queue ${quote(name)}: the cluster already holds ${MAX_QUEUES} queues; delete unused queues first`,
    );
  }

  private addQueue(name: string, settings: QueueSettings): QueueState {
    this.createdTotal += 1;
    const queue = new QueueState(name, settings, this.createdTotal, new MemoryMessageStore());
    this.queues.set(name, queue);
    return queue;
  }
}

function notFound(queue: string): QueueError {
  return new QueueError(
    ErrorCode.NotFound,
    `queue ${quote(queue)} does not exist: create it with CreateQueue first`,
  );
}

/** Tags a command's result or error with its kind. */
function outcome<K extends CommandKind>(kind: K, result: ResultByKind[K] | QueueError): Applied<K> {
  const applied = result instanceof QueueError ? { kind, ok: false, error: result } : { kind, ok: true, value: result };
  // Applied<K> is a conditional type TypeScript cannot resolve for a generic K; the shape above is it.
  return applied as unknown as Applied<K>;
}
