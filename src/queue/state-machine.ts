/**
 * The replicated queue state machine: every queue of the cluster, changed only by applying commands in
 * log order. It is a pure function of the command sequence: no clock (time is the commands' nowMs, never
 * going back), no randomness, Maps iterated in insertion order only. Apply never throws for a bad command,
 * it returns the error: a throw would stop every node at the same log index.
 *
 * Time-driven changes are applied lazily, but every read and command sees them as if they had happened on
 * time: a queue is advanced (due delays and ended leases) before each command on it, and a message whose
 * last lease ends is in its dead-letter queue from that moment on. So before any command on a queue, its
 * sources (the queues naming it as dead_letter_queue) are advanced and their dead letters routed into it,
 * creating it with default settings if it is missing (as routing a dead letter always has); reads count
 * those dead letters too.
 */
import { decodeCommand } from "./command-codec.js";
import { validateCommand } from "./command-validation.js";
import type { Command, CommandKind, CreateQueueCommand, EnqueueCommand } from "./commands.js";
import { ErrorCode, QueueError, isQueueError } from "./errors.js";
import { MAX_QUEUES } from "./limits.js";
import { MemoryMessageStore } from "./message-store.js";
import { earliest, QueueState, type DeadLetter } from "./queue-state.js";
import type { Applied, CreateQueueResult, Outcome, QueueStats, ResultByKind, Undecodable } from "./results.js";
import { DEFAULT_SETTINGS, resolveSettings, settingsDifferences, type QueueSettings } from "./settings.js";
import { quote } from "./validation.js";

/** All queues of the cluster; one instance per node, fed every committed command in log order. */
export class QueueStateMachine {
  private readonly queues = new Map<string, QueueState>();
  /** Dead-letter queue name → the queues whose dead_letter_queue it is (whether it exists or not). */
  private readonly sourcesByTarget = new Map<string, Set<string>>();
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

  /**
   * Names of all queues as of `nowMs` (default: the log time), sorted: a missing dead-letter queue is listed
   * once a message was dead-lettered into it.
   */
  listQueues(nowMs = this.lastNowMs): string[] {
    const atMs = Math.max(this.lastNowMs, nowMs);
    const arriving = [...this.sourcesByTarget.keys()].filter(
      (target) => !this.queues.has(target) && this.hasDeadLettersDue(target, atMs),
    );
    return [...this.queues.keys(), ...arriving].sort();
  }

  /** A queue's settings as of `nowMs` (default: the log time), or undefined if there is no such queue. */
  settingsOf(queue: string, nowMs = this.lastNowMs): QueueSettings | undefined {
    const state = this.queues.get(queue);
    if (state !== undefined) return state.settings;
    return this.hasDeadLettersDue(queue, Math.max(this.lastNowMs, nowMs)) ? DEFAULT_SETTINGS : undefined;
  }

  /**
   * A queue's counts as of `nowMs` (never before the log time), without changing anything. They include the
   * messages its sources dead-lettered by then: ready, and counted in enqueued_total.
   */
  stats(queue: string, nowMs: number): Outcome<QueueStats> {
    const atMs = Math.max(this.lastNowMs, nowMs);
    const arriving = this.deadLettersDueBy(queue, atMs);
    const state = this.queues.get(queue);
    if (state === undefined && arriving === 0) return { ok: false, error: notFound(queue) };
    const stats = state?.stats(atMs) ?? EMPTY_STATS;
    return {
      ok: true,
      value: { ...stats, ready: stats.ready + arriving, enqueuedTotal: stats.enqueuedTotal + arriving },
    };
  }

  /**
   * Whether a lease on `queue` at `nowMs` would return a message, its sources' dead letters included
   * (false for a missing queue that has none).
   */
  hasReady(queue: string, nowMs: number): boolean {
    const atMs = Math.max(this.lastNowMs, nowMs);
    return (this.queues.get(queue)?.hasReady(atMs) ?? false) || this.hasDeadLettersDue(queue, atMs);
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
   * (0 = now; a past time also means now), or undefined if only a new enqueue or nack (or a missing queue's
   * creation) can change that. A source's lease that ends in dead-lettering counts. Long polls and
   * subscriptions sleep until then, or until a command touches the queue.
   */
  nextWakeMs(queue: string): number | undefined {
    const deadLetterTimes = this.sourcesOf(queue).map((source) => source.nextDeadLetterMs());
    return earliest(this.queues.get(queue)?.nextWakeMs(), ...deadLetterTimes);
  }

  private dispatch(command: Command): Applied {
    const problem = validateCommand(command);
    if (problem !== undefined) return outcome(command.kind, problem);
    const nowMs = Math.max(this.lastNowMs, command.nowMs);
    this.lastNowMs = nowMs;
    // Whatever the command, it finds the dead letters its queue holds by now (CreateQueue included: it
    // finds a dead-letter queue created by its first dead letter, as a read would).
    this.routeInto(command.queue, nowMs);
    switch (command.kind) {
      case "createQueue":
        return outcome(command.kind, this.createQueue(command));
      case "deleteQueue":
        return outcome(command.kind, this.deleteQueue(command.queue, nowMs));
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

  /**
   * Deletes a queue and its messages. What it dead-lettered by now goes to its dead-letter queue first,
   * where reads already counted it.
   */
  private deleteQueue(name: string, nowMs: number): ResultByKind["deleteQueue"] {
    const queue = this.queues.get(name);
    if (queue === undefined) return { deleted: false };
    this.onQueue(name, nowMs, () => undefined);
    this.queues.delete(name);
    const target = queue.settings.deadLetterQueue;
    const siblings = this.sourcesByTarget.get(target);
    siblings?.delete(name);
    if (siblings?.size === 0) this.sourcesByTarget.delete(target);
    return { deleted: true };
  }

  /** Runs `action` on an existing queue brought up to `nowMs`, then routes the messages it dead-lettered. */
  private onQueue<T>(name: string, nowMs: number, action: (queue: QueueState) => T | QueueError): T | QueueError {
    const queue = this.queues.get(name);
    if (queue === undefined) return notFound(name);
    queue.advanceTo(nowMs);
    const result = action(queue);
    const target = queue.settings.deadLetterQueue;
    if (target === "") queue.takeDeadLetters();
    else if (queue.holdsDeadLetters) this.routeInto(target, nowMs);
    return result;
  }

  /**
   * Moves what the sources of `target` dead-lettered by `nowMs` into `target` (created with defaults if
   * missing), oldest first: by dead-lettering time, then source name, then the source's order. Sources
   * whose last-delivery leases ended are advanced to `nowMs` first.
   */
  private routeInto(target: string, nowMs: number): void {
    const arriving: { readonly source: string; readonly letter: DeadLetter }[] = [];
    for (const source of this.sourcesOf(target)) {
      if ((source.nextDeadLetterMs() ?? Infinity) <= nowMs) source.advanceTo(nowMs);
      for (const letter of source.takeDeadLetters()) arriving.push({ source: source.name, letter });
    }
    if (arriving.length === 0) return;
    arriving.sort((a, b) => a.letter.atMs - b.letter.atMs || compareNames(a.source, b.source));
    // Exempt from MAX_QUEUES: each queue names at most one dead-letter queue, so they stay bounded too.
    const deadLetterQueue = this.queues.get(target) ?? this.addQueue(target, DEFAULT_SETTINGS);
    for (const { letter } of arriving) deadLetterQueue.acceptDeadLetter(letter);
  }

  /** The queues whose dead_letter_queue is `target`. */
  private sourcesOf(target: string): QueueState[] {
    const names = this.sourcesByTarget.get(target);
    if (names === undefined) return [];
    return [...names].map((name) => {
      const source = this.queues.get(name);
      if (source === undefined) throw new Error(`dead-letter source ${quote(name)} is not a queue: bookkeeping bug`);
      return source;
    });
  }

  /** Whether a source of `target` holds a lease on a last delivery that ended by `nowMs`. Read only. */
  private hasDeadLettersDue(target: string, nowMs: number): boolean {
    return this.sourcesOf(target).some((source) => (source.nextDeadLetterMs() ?? Infinity) <= nowMs);
  }

  /** How many messages the sources of `target` dead-lettered by `nowMs` that are not routed yet. Read only. */
  private deadLettersDueBy(target: string, nowMs: number): number {
    return this.sourcesOf(target).reduce((sum, source) => sum + source.deadLettersDueBy(nowMs), 0);
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
    const target = settings.deadLetterQueue;
    if (target !== "") {
      const sources = this.sourcesByTarget.get(target) ?? new Set<string>();
      sources.add(name);
      this.sourcesByTarget.set(target, sources);
    }
    return queue;
  }
}

/** The counts of a queue that holds nothing and never held anything. */
const EMPTY_STATS: QueueStats = {
  ready: 0,
  inFlight: 0,
  delayed: 0,
  enqueuedTotal: 0,
  ackedTotal: 0,
  deadLetteredTotal: 0,
  purgedTotal: 0,
};

/** Orders names by UTF-16 code units, the same on every node (unlike localeCompare). */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
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
