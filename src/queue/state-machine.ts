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
 *
 * Memory holds each message's delivery bookkeeping only; bodies and headers, and every durable change,
 * go to a QueueStorage (in memory for unit tests, LevelDB on a node: src/storage/queue-store.ts). A lease
 * returns body ids; readDeliveries fetches the bodies to answer it.
 */
import { decodeCommand } from "./command-codec.js";
import type { DedupRecordBatch } from "./dedup-index.js";
import { validateCommand } from "./command-validation.js";
import type { Command, CommandKind, CreateQueueCommand, EnqueueCommand } from "./commands.js";
import { ErrorCode, QueueError, isQueueError } from "./errors.js";
import { MAX_QUEUES } from "./limits.js";
import type { MessageMeta } from "./message-meta.js";
import { earliest, QueueState, type BodyIdSource, type DeadLetter } from "./queue-state.js";
import {
  BODY_GROUP_BYTES,
  BODY_GROUP_IDS,
  MemoryQueueStorage,
  type MachineRecord,
  type QueueRecord,
  type QueueStorage,
} from "./queue-storage.js";
import type {
  Applied,
  CreateQueueResult,
  Delivery,
  LeasedMessage,
  Outcome,
  QueueApplyResult,
  QueueStats,
  ResultByKind,
} from "./results.js";
import { DEFAULT_SETTINGS, resolveSettings, settingsDifferences, type QueueSettings } from "./settings.js";
import { parseReceipt } from "./receipt.js";
import { quote } from "./validation.js";

/** All queues of the cluster; one instance per node, fed every committed command in log order. */
export class QueueStateMachine implements BodyIdSource {
  private readonly queues = new Map<string, QueueState>();
  /** Dead-letter queue name → the queues whose dead_letter_queue it is (whether it exists or not). */
  private readonly sourcesByTarget = new Map<string, Set<string>>();
  private lastNowMs = 0;
  /** Queues ever created; numbers each queue's incarnation. */
  private createdTotal = 0;
  /** The body id the next new message gets, unless it opens a new group. */
  private nextBody = 1;
  /** Whether the current command's bodies have a group yet, and that group's payload bytes so far. */
  private bodyGroupOpen = false;
  private bodyGroupBytes = 0;

  /** `storage` receives every durable change and holds the bodies (by default in memory). */
  constructor(readonly storage: QueueStorage = new MemoryQueueStorage()) {}

  /**
   * Starts rebuilding a machine from stored records (src/storage/queue-loader.ts): queues and keys now,
   * then the messages one by one (there may be millions), then `finish`. The storage is not told.
   */
  static beginRestore(storage: QueueStorage, stored: StoredMachine): MachineRestore {
    const machine = new QueueStateMachine(storage);
    machine.lastNowMs = stored.machine.lastNowMs;
    machine.createdTotal = stored.machine.createdTotal;
    machine.nextBody = stored.machine.nextBodyId;
    const byIncarnation = new Map<number, QueueState>();
    for (const record of stored.queues) {
      const queue = machine.addQueue(record.name, record.settings, record.incarnation);
      queue.restoreCounters(record);
      byIncarnation.set(record.incarnation, queue);
    }
    for (const [incarnation, records] of stored.dedup) {
      const queue = byIncarnation.get(incarnation);
      if (queue === undefined) throw new Error(`stored idempotency keys of queue incarnation ${incarnation}, which is not a queue`);
      queue.restoreDedup(records);
    }
    return {
      add: (incarnation, meta) => {
        const queue = byIncarnation.get(incarnation);
        // A deleted queue's or a purged message's record, not swept yet.
        if (queue === undefined || queue.isPurged(meta.id)) return false;
        queue.restoreMessage(meta);
        return true;
      },
      finish: () => {
        for (const queue of byIncarnation.values()) queue.finishRestore();
        return machine;
      },
    };
  }

  /** The machine's own counters, as persisted. */
  machineRecord(): MachineRecord {
    return { lastNowMs: this.lastNowMs, createdTotal: this.createdTotal, nextBodyId: this.nextBody };
  }

  /** The persisted record of queue `name`, or undefined if there is no such queue. */
  queueRecord(name: string): QueueRecord | undefined {
    return this.queues.get(name)?.record();
  }

  /** The body ids of every message of every queue, in no particular order (storage counts them at load). */
  liveBodyIds(): Float64Array {
    const perQueue = [...this.queues.values()].map((queue) => queue.heldBodyIds());
    if (perQueue.length === 1) return perQueue[0]!;
    const all = new Float64Array(perQueue.reduce((sum, ids) => sum + ids.length, 0));
    let at = 0;
    for (const ids of perQueue) {
      all.set(ids, at);
      at += ids.length;
    }
    return all;
  }

  /** See BodyIdSource (for QueueState). */
  beginBodyGroup(): void {
    this.bodyGroupOpen = false;
  }

  /** See BodyIdSource (for QueueState). */
  nextBodyId(payloadBytes: number): number {
    const full = this.bodyGroupBytes > 0 && this.bodyGroupBytes + payloadBytes > BODY_GROUP_BYTES;
    if (!this.bodyGroupOpen || full) this.nextBody = BODY_GROUP_IDS * Math.ceil(this.nextBody / BODY_GROUP_IDS);
    // A group also ends when its ids run out (a command has at most MAX_BATCH_MESSAGES < BODY_GROUP_IDS).
    if (this.nextBody % BODY_GROUP_IDS === 0) this.bodyGroupBytes = 0;
    this.bodyGroupOpen = true;
    this.bodyGroupBytes += payloadBytes;
    const bodyId = this.nextBody;
    this.nextBody += 1;
    return bodyId;
  }

  /**
   * The deliveries of a lease with their bodies and headers read from storage, in order. A message that
   * left its queue since (acked, purged, or its queue deleted, while the bodies were read) is left out:
   * its body may still be stored, with the other bodies of its group or waiting for the background sweep.
   */
  async readDeliveries(leased: readonly LeasedMessage[]): Promise<Delivery[]> {
    const bodies = await this.storage.readBodies(leased.map((message) => message.bodyId));
    const isGone = this.goneTest();
    const deliveries: Delivery[] = [];
    leased.forEach(({ bodyId: _bodyId, ...message }, index) => {
      const stored = bodies[index];
      if (stored !== undefined && !isGone(message.receipt)) deliveries.push({ ...message, body: stored.body, headers: stored.headers });
    });
    return deliveries;
  }

  /** Tells whether the message a receipt names has left its queue (queues looked up once per incarnation). */
  private goneTest(): (receipt: string) => boolean {
    const byIncarnation = new Map<number, QueueState | undefined>();
    return (receipt) => {
      const parts = parseReceipt(receipt);
      if (parts === undefined) throw new Error(`lease receipt ${JSON.stringify(receipt)} is malformed: bookkeeping bug`);
      if (!byIncarnation.has(parts.incarnation)) {
        byIncarnation.set(parts.incarnation, [...this.queues.values()].find((queue) => queue.incarnation === parts.incarnation));
      }
      const queue = byIncarnation.get(parts.incarnation);
      return queue === undefined || !queue.holds(parts.id);
    };
  }

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
  applyEncoded(data: Uint8Array): QueueApplyResult {
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
    queue.drop();
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
    if (target === "") queue.discardDeadLetters();
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

  /** Adds a queue: a new incarnation, or a stored one being restored. */
  private addQueue(name: string, settings: QueueSettings, restoredIncarnation?: number): QueueState {
    let incarnation = restoredIncarnation;
    if (incarnation === undefined) {
      this.createdTotal += 1;
      incarnation = this.createdTotal;
    }
    const queue = new QueueState(name, settings, incarnation, this.storage, this);
    this.queues.set(name, queue);
    this.storage.queueChanged(name);
    const target = settings.deadLetterQueue;
    if (target !== "") {
      const sources = this.sourcesByTarget.get(target) ?? new Set<string>();
      sources.add(name);
      this.sourcesByTarget.set(target, sources);
    }
    return queue;
  }
}

/** A machine's stored records but its messages, as the loader hands them to beginRestore. */
export interface StoredMachine {
  readonly machine: MachineRecord;
  readonly queues: readonly QueueRecord[];
  /** Idempotency keys by queue incarnation, in any order. */
  readonly dedup: ReadonlyMap<number, DedupRecordBatch>;
}

/** A machine being rebuilt: its stored messages go in one by one, then `finish` checks and returns it. */
export interface MachineRestore {
  /** Puts a stored message back; false if it is a dropped one not swept yet (the caller sweeps it). */
  add(incarnation: number, meta: MessageMeta): boolean;
  finish(): QueueStateMachine;
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
