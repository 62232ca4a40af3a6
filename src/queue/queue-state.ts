/**
 * One queue: its messages, their states and counters. Every method takes the command's log time `nowMs`
 * where time matters and never reads a clock, so replaying the same calls rebuilds the same queue.
 * Messages that leave through max_deliveries are handed to the caller (takeDeadLetters) for routing; the
 * caller also asks when a lease end will dead-letter one (nextDeadLetterMs), as their dead-letter queue
 * must see them by then.
 *
 * Memory holds each message's bookkeeping only (MessageTable); bodies and headers go to the QueueStorage
 * at enqueue and are reported by body id in lease results. Every durable change is reported to the storage.
 */
import type { NewMessage } from "./commands.js";
import { inMessage } from "./command-validation.js";
import { DedupIndex, type DedupRecordBatch } from "./dedup-index.js";
import { digestKey } from "./key-digest.js";
import { leasedBytes, payloadBytes } from "./delivery-size.js";
import type { DueEntry } from "./due-heap.js";
import { ErrorCode, QueueError } from "./errors.js";
import { MAX_DEDUP_KEYS_PER_QUEUE, MAX_LEASE_BYTES, MAX_MAX_LENGTH } from "./limits.js";
import { MessageState, type MessageMeta } from "./message-meta.js";
import { MessageTable } from "./message-table.js";
import type { QueueRecord, QueueStorage } from "./queue-storage.js";
import { ReadyIndex } from "./ready-index.js";
import { formatReceipt, parseReceipt } from "./receipt.js";
import type {
  AckResult,
  EnqueueResult,
  ExtendLeaseResult,
  LeasedMessage,
  LeaseResult,
  NackResult,
  QueueStats,
} from "./results.js";
import { DEFAULT_MAX_MESSAGES, type QueueSettings } from "./settings.js";
import { StateIndex, type MessageIndex } from "./state-index.js";
import { quote, validateBodySize } from "./validation.js";

/** The messages named by a request's ids and receipts, and the receipts that named nothing acceptable. */
interface Selection {
  readonly records: MessageMeta[];
  readonly refusedReceipts: string[];
}

/** A message that left its queue through max_deliveries, and the log time it left. */
export interface DeadLetter {
  readonly record: MessageMeta;
  /** When its last lease ended, or when it was nacked. */
  readonly atMs: number;
}

/** Hands out body ids, unique across all queues (shared by QueueStateMachine's queues). */
export interface BodyIdSource {
  /** Starts a new enqueue command: its first body opens a new group (queue-storage.ts BODY_GROUP_IDS). */
  beginBodyGroup(): void;
  /** The id of a new body of `payloadBytes`. */
  nextBodyId(payloadBytes: number): number;
}

/** One queue: its settings, messages, indexes and counters. */
export class QueueState {
  private readonly table = new MessageTable();
  private readonly dedup: DedupIndex;
  private readonly ready: ReadyIndex;
  private readonly delayed: StateIndex;
  /** Leased messages that become ready again when their lease ends. */
  private readonly inFlight: StateIndex;
  /** Leased messages on their last delivery (max_deliveries): dead-lettered when their lease ends. */
  private readonly inFlightLast: StateIndex;
  private nextId = 1;
  /** See QueueRecord.purgedThroughId. */
  private purgedThroughId = 0;
  private enqueuedTotal = 0;
  private ackedTotal = 0;
  private deadLetteredTotal = 0;
  private purgedTotal = 0;
  /** Messages that left through max_deliveries during the current command, oldest first. */
  private deadLetters: DeadLetter[] = [];

  /** `incarnation` is unique per queue ever created, so receipts of a deleted namesake never match. */
  constructor(
    readonly name: string,
    readonly settings: QueueSettings,
    readonly incarnation: number,
    private readonly storage: QueueStorage,
    private readonly bodyIds: BodyIdSource,
  ) {
    this.dedup = new DedupIndex(settings.dedupWindowMs, MAX_DEDUP_KEYS_PER_QUEUE, {
      remembered: (digest, id, expiresAtMs) => storage.dedupRemembered(incarnation, digest, id, expiresAtMs),
      forgotten: (_digest, id, expiresAtMs) => storage.dedupForgotten(incarnation, id, expiresAtMs),
    });
    const table = this.table;
    const liveIn =
      (state: MessageState) =>
      (entry: DueEntry): boolean =>
        table.isAt(entry.id, state, entry.generation);
    this.ready = new ReadyIndex((id) => table.isFreshReady(id), liveIn(MessageState.Ready));
    this.delayed = new StateIndex(liveIn(MessageState.Delayed));
    this.inFlight = new StateIndex(liveIn(MessageState.InFlight));
    this.inFlightLast = new StateIndex(liveIn(MessageState.InFlight));
  }

  /** What the storage persists about this queue (its messages and keys are reported one by one). */
  record(): QueueRecord {
    return {
      name: this.name,
      incarnation: this.incarnation,
      settings: this.settings,
      nextId: this.nextId,
      enqueuedTotal: this.enqueuedTotal,
      ackedTotal: this.ackedTotal,
      deadLetteredTotal: this.deadLetteredTotal,
      purgedTotal: this.purgedTotal,
      purgedThroughId: this.purgedThroughId,
    };
  }

  /** Sets the counters of a queue being rebuilt from storage (before its messages are restored). */
  restoreCounters(record: QueueRecord): void {
    this.nextId = record.nextId;
    this.enqueuedTotal = record.enqueuedTotal;
    this.ackedTotal = record.ackedTotal;
    this.deadLetteredTotal = record.deadLetteredTotal;
    this.purgedTotal = record.purgedTotal;
    this.purgedThroughId = record.purgedThroughId ?? 0;
    // Every message that ever entered and has not left is restored next: make room for all at once.
    this.table.reserve(Math.min(Math.max(0, this.heldByCounters()), MAX_MAX_LENGTH));
  }

  /** Whether a stored record of message `id` is one a purge dropped (left for the background sweep). */
  isPurged(id: number): boolean {
    return id <= this.purgedThroughId;
  }

  /** The body ids of every message held, in no particular order. */
  heldBodyIds(): Float64Array {
    return this.table.allBodyIds();
  }

  /** Whether message `id` is in this queue (in any state). */
  holds(id: number): boolean {
    return this.table.has(id);
  }

  /** Puts back one stored message, in its stored state; the storage is not told. Call finishRestore after. */
  restoreMessage(meta: MessageMeta): void {
    if (meta.id >= this.nextId || this.table.has(meta.id)) {
      throw new Error(`stored message ${meta.id} of queue ${quote(this.name)} is duplicated or beyond next id ${this.nextId}`);
    }
    this.table.set({ ...meta, generation: 0 });
    this.indexIn(meta.state, meta.deliveryCount, { dueMs: meta.dueMs, id: meta.id, generation: 0 });
  }

  /** Puts back the stored idempotency keys; the storage is not told. */
  restoreDedup(records: DedupRecordBatch): void {
    this.dedup.restore(records);
  }

  /** Ends a rebuild: checks the restored messages add up with the counters. */
  finishRestore(): void {
    this.settleAndCheck();
  }

  /**
   * Makes due delayed messages ready and ends expired leases, dead-lettering the messages on their last
   * delivery; run before every command on the queue, and before a command on its dead-letter queue.
   */
  advanceTo(nowMs: number): void {
    for (let entry = this.delayed.popDue(nowMs); entry !== undefined; entry = this.delayed.popDue(nowMs)) {
      this.move(this.meta(entry.id), MessageState.Ready, 0);
    }
    for (let entry = this.inFlight.popDue(nowMs); entry !== undefined; entry = this.inFlight.popDue(nowMs)) {
      this.move(this.meta(entry.id), MessageState.Ready, 0);
    }
    for (let entry = this.inFlightLast.popDue(nowMs); entry !== undefined; entry = this.inFlightLast.popDue(nowMs)) {
      this.deadLetter(this.meta(entry.id), entry.dueMs);
    }
    this.finish();
  }

  /** Appends a batch, all or nothing; idempotency keys seen within the dedup window enqueue nothing. */
  enqueue(messages: readonly NewMessage[], nowMs: number): EnqueueResult | QueueError {
    this.dedup.prune(nowMs);
    const digests = messages.map((message) => (message.idempotencyKey === "" ? undefined : digestKey(message.idempotencyKey)));
    const problem = this.checkBatch(messages, digests, nowMs);
    if (problem !== undefined) return problem;
    const ids: number[] = [];
    const duplicates: boolean[] = [];
    this.bodyIds.beginBodyGroup();
    for (const [index, message] of messages.entries()) {
      const digest = digests[index];
      const firstId = digest === undefined ? undefined : this.dedup.lookup(digest, nowMs);
      duplicates.push(firstId !== undefined);
      if (firstId !== undefined) {
        ids.push(firstId);
        continue;
      }
      // Copy the body: a decoded body is a view into the whole log entry, which it would otherwise keep alive.
      const payload = payloadBytes(message.body, message.headers);
      const bodyId = this.bodyIds.nextBodyId(payload);
      this.storage.bodyAdded(bodyId, { body: new Uint8Array(message.body), headers: { ...message.headers } });
      const record = this.addMessage(bodyId, payload, nowMs);
      if (message.delayMs > 0) this.place(record, MessageState.Delayed, nowMs + message.delayMs);
      else this.place(record, MessageState.Ready, 0);
      if (digest !== undefined) this.dedup.remember(digest, record.id, nowMs);
      ids.push(record.id);
    }
    this.finish();
    return { ids, duplicates };
  }

  /**
   * Adds a message dead-lettered by another queue: a new id, the same stored body and headers (not copied),
   * no deliveries yet, enqueued when it was dead-lettered. It bypasses max_length and max_message_bytes: it
   * was admitted once and moving it adds nothing overall.
   */
  acceptDeadLetter(letter: DeadLetter): void {
    const record = this.addMessage(letter.record.bodyId, letter.record.payloadBytes, letter.atMs);
    this.place(record, MessageState.Ready, 0);
    this.finish();
  }

  /**
   * Leases up to `maxMessages` (0 = 1) ready messages, lowest id first, for `visibilityTimeoutMs` (0 = default).
   * It stops before the message that would take the deliveries past MAX_LEASE_BYTES, so every answer fits a
   * default gRPC client, but always leases one message when any is ready.
   */
  lease(maxMessages: number, visibilityTimeoutMs: number, nowMs: number): LeaseResult {
    const count = maxMessages || DEFAULT_MAX_MESSAGES;
    const deadlineMs = nowMs + (visibilityTimeoutMs || this.settings.visibilityTimeoutMs);
    const deliveries: LeasedMessage[] = [];
    let leaseBytes = 0;
    for (let entry = this.ready.first(); entry !== undefined; entry = this.ready.first()) {
      const record = this.meta(entry.id);
      const deliveryCount = record.deliveryCount + 1;
      const delivery: LeasedMessage = {
        id: record.id,
        bodyId: record.bodyId,
        deliveryCount,
        enqueuedAtMs: record.enqueuedAtMs,
        receipt: formatReceipt({ incarnation: this.incarnation, id: record.id, deliveryCount }),
      };
      const bytes = leasedBytes(record.payloadBytes, delivery.receipt);
      if (deliveries.length > 0 && leaseBytes + bytes > MAX_LEASE_BYTES) break;
      this.move(record, MessageState.InFlight, deadlineMs, deliveryCount);
      deliveries.push(delivery);
      leaseBytes += bytes;
      if (deliveries.length === count) break;
    }
    this.finish();
    return { deliveries };
  }

  /** Deletes messages: by id in any state, by receipt unless delivered again since. */
  ack(ids: readonly number[], receipts: readonly string[]): AckResult {
    const { records, refusedReceipts } = this.select(ids, receipts, () => true);
    for (const record of records) {
      this.remove(record);
      this.storage.bodyRemoved(record.bodyId);
    }
    this.ackedTotal += records.length;
    this.finish();
    return { acked: records.length, refusedReceipts };
  }

  /** Returns leased messages: ready after `delayMs`, or dead-lettered once they reached max_deliveries. */
  nack(ids: readonly number[], receipts: readonly string[], delayMs: number, nowMs: number): NackResult {
    const { records, refusedReceipts } = this.select(ids, receipts, isInFlight);
    for (const record of records) this.release(record, delayMs, nowMs);
    this.finish();
    return { nacked: records.length, refusedReceipts };
  }

  /** Moves the lease deadline of leased messages to `nowMs` + `visibilityTimeoutMs` (0 = default). */
  extendLease(
    ids: readonly number[],
    receipts: readonly string[],
    visibilityTimeoutMs: number,
    nowMs: number,
  ): ExtendLeaseResult {
    const deadlineMs = nowMs + (visibilityTimeoutMs || this.settings.visibilityTimeoutMs);
    const { records, refusedReceipts } = this.select(ids, receipts, isInFlight);
    for (const record of records) this.move(record, MessageState.InFlight, deadlineMs);
    this.finish();
    return { extended: records.length, refusedReceipts };
  }

  /** Drops every message (idempotency keys are kept) and returns how many there were. */
  purge(): number {
    const purged = this.dropMessages();
    this.purgedTotal += purged;
    this.purgedThroughId = this.nextId - 1;
    this.finish();
    return purged;
  }

  /** Whether messages left through max_deliveries since the last takeDeadLetters. */
  get holdsDeadLetters(): boolean {
    return this.deadLetters.length > 0;
  }

  /**
   * The messages that left through max_deliveries since the last call, oldest first. Their bodies stay
   * stored: the caller hands each to acceptDeadLetter, or discards them with discardDeadLetters.
   */
  takeDeadLetters(): DeadLetter[] {
    const taken = this.deadLetters;
    this.deadLetters = [];
    return taken;
  }

  /** Drops the messages that left through max_deliveries (no dead-letter queue), bodies included. */
  discardDeadLetters(): void {
    for (const letter of this.takeDeadLetters()) this.storage.bodyRemoved(letter.record.bodyId);
  }

  /** Drops every message and idempotency key and the queue's record, for DeleteQueue. */
  drop(): void {
    this.dropMessages();
    this.storage.queueDropped(this.name, this.incarnation);
  }

  /** Counts as of `nowMs` (not before the last command): what advanceTo(nowMs) would produce, read only. */
  stats(nowMs: number): QueueStats {
    const dueDelayed = countDue(this.delayed, nowMs);
    const expired = countDue(this.inFlight, nowMs);
    const expiredLast = this.deadLettersDueBy(nowMs);
    return {
      ready: this.ready.size + dueDelayed + expired,
      inFlight: this.inFlight.size - expired + this.inFlightLast.size - expiredLast,
      delayed: this.delayed.size - dueDelayed,
      enqueuedTotal: this.enqueuedTotal,
      ackedTotal: this.ackedTotal,
      deadLetteredTotal: this.deadLetteredTotal + expiredLast,
      purgedTotal: this.purgedTotal,
    };
  }

  /** Whether a lease at `nowMs` would return at least one message. Read only. */
  hasReady(nowMs: number): boolean {
    return this.ready.size > 0 || isDueBy(this.delayed, nowMs) || isDueBy(this.inFlight, nowMs);
  }

  /** How many messages advanceTo(nowMs) would dead-letter: leases on a last delivery ended by `nowMs`. Read only. */
  deadLettersDueBy(nowMs: number): number {
    return countDue(this.inFlightLast, nowMs);
  }

  /**
   * When the next lease on a last delivery ends, dead-lettering its message (it may have ended already
   * if the queue was not advanced since), or undefined if no such lease is held. Read only.
   */
  nextDeadLetterMs(): number | undefined {
    return this.inFlightLast.peek()?.dueMs;
  }

  /** Whether the delivery named by `receipt` still holds its lease at `nowMs`. Read only. */
  isLeased(receipt: string, nowMs: number): boolean {
    const parts = parseReceipt(receipt);
    if (parts === undefined || parts.incarnation !== this.incarnation) return false;
    const record = this.table.get(parts.id);
    return (
      record !== undefined &&
      record.state === MessageState.InFlight &&
      record.deliveryCount === parts.deliveryCount &&
      record.dueMs > nowMs
    );
  }

  /**
   * The earliest log time at which a lease could return one of this queue's messages with no other command
   * in between (0 when one is ready now), or undefined if only an enqueue or nack can make one ready; leases
   * that end in dead-lettering do not count. Read only.
   */
  nextWakeMs(): number | undefined {
    if (this.ready.size > 0) return 0;
    return earliest(this.delayed.peek()?.dueMs, this.inFlight.peek()?.dueMs);
  }

  private indexes(): MessageIndex[] {
    return [this.ready, this.delayed, this.inFlight, this.inFlightLast];
  }

  /** The index holding a message in `state` with `deliveryCount`. */
  private indexOf(state: MessageState, deliveryCount: number): MessageIndex {
    switch (state) {
      case MessageState.Ready:
        return this.ready;
      case MessageState.Delayed:
        return this.delayed;
      case MessageState.InFlight:
        // deliveryCount only changes on the way into InFlight (a lease), so a leased message stays in the
        // index it entered.
        return this.isExhausted(deliveryCount) ? this.inFlightLast : this.inFlight;
    }
  }

  /** Adds a message's entry to the index of its state. */
  private indexIn(state: MessageState, deliveryCount: number, entry: DueEntry): void {
    if (state === MessageState.Ready) this.ready.addReady(entry, deliveryCount);
    else this.indexOf(state, deliveryCount).add(entry);
  }

  /**
   * Body sizes and capacity, for the messages that are not duplicates. Changes nothing. `digests` are the
   * messages' idempotency key digests, by position (undefined: no key).
   */
  private checkBatch(messages: readonly NewMessage[], digests: readonly (Uint32Array | undefined)[], nowMs: number): QueueError | undefined {
    const keysInBatch = new Set<string>();
    let fresh = 0;
    for (const [index, message] of messages.entries()) {
      const tooBig = validateBodySize(message.body.byteLength, this.settings.maxMessageBytes);
      if (tooBig !== undefined) return inMessage(index, messages.length, tooBig);
      const key = message.idempotencyKey;
      const digest = digests[index];
      if (digest !== undefined && (keysInBatch.has(key) || this.dedup.lookup(digest, nowMs) !== undefined)) continue;
      if (digest !== undefined) keysInBatch.add(key);
      fresh += 1;
    }
    if (this.table.size + fresh <= this.settings.maxLength) return undefined;
    return new QueueError(
      ErrorCode.ResourceExhausted,
      `queue ${quote(this.name)} is full: it holds ${this.table.size} of max_length ${this.settings.maxLength} ` +
        `messages and the batch adds ${fresh}; consume and ack messages, purge the queue, or recreate it ` +
        "with a larger max_length",
    );
  }

  /**
   * The distinct messages named by `receipts` (first, so each receipt gets its own verdict) and `ids` that
   * `eligible` accepts. A receipt is refused when it belongs to another queue incarnation, or its message
   * is gone, was delivered again since, or is not eligible; an id naming nothing eligible is skipped.
   */
  private select(
    ids: readonly number[],
    receipts: readonly string[],
    eligible: (record: MessageMeta) => boolean,
  ): Selection {
    const chosen = new Map<number, MessageMeta>();
    const refusedReceipts: string[] = [];
    for (const receipt of receipts) {
      const parts = parseReceipt(receipt);
      const record = parts === undefined ? undefined : this.table.get(parts.id);
      const matches =
        parts !== undefined &&
        record !== undefined &&
        parts.incarnation === this.incarnation &&
        parts.deliveryCount === record.deliveryCount &&
        eligible(record);
      if (matches) chosen.set(record.id, record);
      else refusedReceipts.push(receipt);
    }
    for (const id of ids) {
      const record = this.table.get(id);
      if (record !== undefined && eligible(record)) chosen.set(id, record);
    }
    return { records: [...chosen.values()], refusedReceipts };
  }

  /** A leased message given back: ready (after `delayMs`), or dead-lettered if exhausted. */
  private release(record: MessageMeta, delayMs: number, nowMs: number): void {
    if (this.isExhausted(record.deliveryCount)) {
      this.deadLetter(record, nowMs);
    } else if (delayMs > 0) {
      this.move(record, MessageState.Delayed, nowMs + delayMs);
    } else {
      this.move(record, MessageState.Ready, 0);
    }
  }

  /** Removes a message that reached max_deliveries at `atMs` and hands it (body kept) to the caller for routing. */
  private deadLetter(record: MessageMeta, atMs: number): void {
    this.remove(record);
    this.deadLetteredTotal += 1;
    this.deadLetters.push({ record, atMs });
  }

  private isExhausted(deliveryCount: number): boolean {
    return this.settings.maxDeliveries > 0 && deliveryCount >= this.settings.maxDeliveries;
  }

  private addMessage(bodyId: number, payload: number, nowMs: number): MessageMeta {
    const record: MessageMeta = {
      id: this.nextId,
      bodyId,
      payloadBytes: payload,
      enqueuedAtMs: nowMs,
      state: MessageState.Ready,
      dueMs: 0,
      deliveryCount: 0,
      generation: 0,
    };
    this.nextId += 1;
    this.enqueuedTotal += 1;
    return record;
  }

  /** Puts a message not in any index into `state` (adding it to the table if new). */
  private place(record: MessageMeta, state: MessageState, dueMs: number): void {
    record.state = state;
    record.dueMs = dueMs;
    record.generation = (record.generation + 1) >>> 0;
    this.table.set(record);
    this.indexIn(state, record.deliveryCount, { dueMs, id: record.id, generation: record.generation });
    this.storage.messageChanged(this.incarnation, record);
  }

  /**
   * Moves a message from its state to `state` (possibly the same one, with a new due time); a lease passes
   * the new `deliveryCount`.
   */
  private move(record: MessageMeta, state: MessageState, dueMs: number, deliveryCount = record.deliveryCount): void {
    this.indexOf(record.state, record.deliveryCount).forget();
    record.deliveryCount = deliveryCount;
    this.place(record, state, dueMs);
  }

  /** Removes a message from the table and its index; its body stays (the caller decides). */
  private remove(record: MessageMeta): void {
    this.indexOf(record.state, record.deliveryCount).forget();
    this.table.delete(record.id);
    this.storage.messageRemoved(this.incarnation, record.id);
  }

  /** Removes every message with its body and returns how many there were. */
  private dropMessages(): number {
    this.storage.messagesDropped(this.incarnation, this.table.allIds(), this.table.allBodyIds());
    for (const index of this.indexes()) index.clear();
    return this.table.clear();
  }

  private meta(id: number): MessageMeta {
    const record = this.table.get(id);
    if (record === undefined) throw new Error(`index entry for missing message ${id}: bookkeeping bug`);
    return record;
  }

  /** Ends every change: settles the indexes, checks the counting invariants, reports the queue changed. */
  private finish(): void {
    this.settleAndCheck();
    this.storage.queueChanged(this.name);
  }

  /** How many messages the counters say this queue holds: every one that entered and has not left. */
  private heldByCounters(): number {
    return this.enqueuedTotal - this.ackedTotal - this.deadLetteredTotal - this.purgedTotal;
  }

  /** Settles the indexes (so reads may peek) and checks the counting invariants. */
  private settleAndCheck(): void {
    const indexes = this.indexes();
    for (const index of indexes) index.settle();
    const held = indexes.reduce((sum, index) => sum + index.size, 0);
    const expected = this.heldByCounters();
    if (held !== this.table.size || held !== expected) {
      throw new Error(
        `queue ${quote(this.name)} bookkeeping bug: indexes hold ${held}, table ${this.table.size}, counters ${expected}`,
      );
    }
  }
}

function isInFlight(record: MessageMeta): boolean {
  return record.state === MessageState.InFlight;
}

/** How many live entries of `index` are due at or before `nowMs`. */
function countDue(index: StateIndex, nowMs: number): number {
  let count = 0;
  index.visitDue(nowMs, () => (count += 1));
  return count;
}

/** Whether `index` holds an entry due at or before `nowMs`; valid between commands (settled indexes). */
function isDueBy(index: StateIndex, nowMs: number): boolean {
  const top = index.peek();
  return top !== undefined && top.dueMs <= nowMs;
}

/** The least of the defined times, or undefined if none is. */
export function earliest(...times: readonly (number | undefined)[]): number | undefined {
  let least: number | undefined;
  for (const time of times) if (time !== undefined && (least === undefined || time < least)) least = time;
  return least;
}
