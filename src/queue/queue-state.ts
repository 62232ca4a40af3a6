/**
 * One queue: its messages, their states and counters. Every method takes the command's log time `nowMs`
 * where time matters and never reads a clock, so replaying the same calls rebuilds the same queue.
 * Messages that leave through max_deliveries are handed to the caller (takeDeadLetters) for routing; the
 * caller also asks when a lease end will dead-letter one (nextDeadLetterMs), as their dead-letter queue
 * must see them by then.
 */
import type { NewMessage } from "./commands.js";
import { inMessage } from "./command-validation.js";
import { DedupIndex } from "./dedup-index.js";
import { deliveryBytes } from "./delivery-size.js";
import { ErrorCode, QueueError } from "./errors.js";
import { MAX_DEDUP_KEYS_PER_QUEUE, MAX_LEASE_BYTES } from "./limits.js";
import { MessageState, type MessageRecord, type MessageStore } from "./message-store.js";
import { formatReceipt, parseReceipt } from "./receipt.js";
import type {
  AckResult,
  Delivery,
  EnqueueResult,
  ExtendLeaseResult,
  LeaseResult,
  NackResult,
  QueueStats,
} from "./results.js";
import { DEFAULT_MAX_MESSAGES, type QueueSettings } from "./settings.js";
import { StateIndex, type IndexEntry } from "./state-index.js";
import { quote, validateBodySize } from "./validation.js";

/** The messages named by a request's ids and receipts, and the receipts that named nothing acceptable. */
interface Selection {
  readonly records: MessageRecord[];
  readonly refusedReceipts: string[];
}

/** A message that left its queue through max_deliveries, and the log time it left. */
export interface DeadLetter {
  readonly record: MessageRecord;
  /** When its last lease ended, or when it was nacked. */
  readonly atMs: number;
}

/** One queue: its settings, messages, indexes and counters. */
export class QueueState {
  private readonly dedup: DedupIndex;
  private readonly ready: StateIndex;
  private readonly delayed: StateIndex;
  /** Leased messages that become ready again when their lease ends. */
  private readonly inFlight: StateIndex;
  /** Leased messages on their last delivery (max_deliveries): dead-lettered when their lease ends. */
  private readonly inFlightLast: StateIndex;
  private nextId = 1;
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
    private readonly store: MessageStore,
  ) {
    this.dedup = new DedupIndex(settings.dedupWindowMs, MAX_DEDUP_KEYS_PER_QUEUE);
    const isLive = (entry: IndexEntry): boolean => this.store.get(entry.id)?.generation === entry.generation;
    this.ready = new StateIndex(isLive);
    this.delayed = new StateIndex(isLive);
    this.inFlight = new StateIndex(isLive);
    this.inFlightLast = new StateIndex(isLive);
  }

  /**
   * Makes due delayed messages ready and ends expired leases, dead-lettering the messages on their last
   * delivery; run before every command on the queue, and before a command on its dead-letter queue.
   */
  advanceTo(nowMs: number): void {
    for (let entry = this.delayed.popDue(nowMs); entry !== undefined; entry = this.delayed.popDue(nowMs)) {
      this.move(this.record(entry), MessageState.Ready, 0);
    }
    for (let entry = this.inFlight.popDue(nowMs); entry !== undefined; entry = this.inFlight.popDue(nowMs)) {
      this.move(this.record(entry), MessageState.Ready, 0);
    }
    for (let entry = this.inFlightLast.popDue(nowMs); entry !== undefined; entry = this.inFlightLast.popDue(nowMs)) {
      this.deadLetter(this.record(entry), entry.dueMs);
    }
    this.finish();
  }

  /** Appends a batch, all or nothing; idempotency keys seen within the dedup window enqueue nothing. */
  enqueue(messages: readonly NewMessage[], nowMs: number): EnqueueResult | QueueError {
    this.dedup.prune(nowMs);
    const problem = this.checkBatch(messages, nowMs);
    if (problem !== undefined) return problem;
    const ids: number[] = [];
    const duplicates: boolean[] = [];
    for (const message of messages) {
      const key = message.idempotencyKey;
      const firstId = key === "" ? undefined : this.dedup.lookup(key, nowMs);
      duplicates.push(firstId !== undefined);
      if (firstId !== undefined) {
        ids.push(firstId);
        continue;
      }
      // Copy the body: a decoded body is a view into the whole log entry, which it would otherwise keep alive.
      const record = this.addMessage(new Uint8Array(message.body), { ...message.headers }, nowMs);
      if (message.delayMs > 0) this.place(record, MessageState.Delayed, nowMs + message.delayMs);
      else this.place(record, MessageState.Ready, 0);
      if (key !== "") this.dedup.remember(key, record.id, nowMs);
      ids.push(record.id);
    }
    this.finish();
    return { ids, duplicates };
  }

  /**
   * Adds a message dead-lettered by another queue: a new id, the same body and headers, no deliveries yet,
   * enqueued when it was dead-lettered. It bypasses max_length and max_message_bytes: it was admitted once
   * and moving it adds nothing overall.
   */
  acceptDeadLetter(letter: DeadLetter): void {
    this.place(this.addMessage(letter.record.body, letter.record.headers, letter.atMs), MessageState.Ready, 0);
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
    const deliveries: Delivery[] = [];
    let leasedBytes = 0;
    for (let entry = this.ready.firstDue(nowMs); entry !== undefined; entry = this.ready.firstDue(nowMs)) {
      const record = this.record(entry);
      const deliveryCount = record.deliveryCount + 1;
      const delivery: Delivery = {
        id: record.id,
        body: record.body,
        headers: record.headers,
        deliveryCount,
        enqueuedAtMs: record.enqueuedAtMs,
        receipt: formatReceipt({ incarnation: this.incarnation, id: record.id, deliveryCount }),
      };
      const bytes = deliveryBytes(delivery);
      if (deliveries.length > 0 && leasedBytes + bytes > MAX_LEASE_BYTES) break;
      record.deliveryCount = deliveryCount;
      this.move(record, MessageState.InFlight, deadlineMs);
      deliveries.push(delivery);
      leasedBytes += bytes;
      if (deliveries.length === count) break;
    }
    this.finish();
    return { deliveries };
  }

  /** Deletes messages: by id in any state, by receipt unless delivered again since. */
  ack(ids: readonly number[], receipts: readonly string[]): AckResult {
    const { records, refusedReceipts } = this.select(ids, receipts, () => true);
    for (const record of records) this.remove(record);
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
    const purged = this.store.clear();
    for (const index of this.indexes()) index.clear();
    this.purgedTotal += purged;
    this.finish();
    return purged;
  }

  /** Whether messages left through max_deliveries since the last takeDeadLetters. */
  get holdsDeadLetters(): boolean {
    return this.deadLetters.length > 0;
  }

  /** The messages that left through max_deliveries since the last call, oldest first. */
  takeDeadLetters(): DeadLetter[] {
    const taken = this.deadLetters;
    this.deadLetters = [];
    return taken;
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
    const record = this.store.get(parts.id);
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

  private indexes(): StateIndex[] {
    return [this.ready, this.delayed, this.inFlight, this.inFlightLast];
  }

  /** The index holding `record` in its current state and delivery count. */
  private indexOf(record: MessageRecord): StateIndex {
    switch (record.state) {
      case MessageState.Ready:
        return this.ready;
      case MessageState.Delayed:
        return this.delayed;
      case MessageState.InFlight:
        // deliveryCount only changes outside InFlight (a lease counts before moving), so a leased message
        // stays in the index it entered.
        return this.isExhausted(record) ? this.inFlightLast : this.inFlight;
    }
  }

  /** Body sizes and capacity, for the messages that are not duplicates. Changes nothing. */
  private checkBatch(messages: readonly NewMessage[], nowMs: number): QueueError | undefined {
    const keysInBatch = new Set<string>();
    let fresh = 0;
    for (const [index, message] of messages.entries()) {
      const tooBig = validateBodySize(message.body.byteLength, this.settings.maxMessageBytes);
      if (tooBig !== undefined) return inMessage(index, messages.length, tooBig);
      const key = message.idempotencyKey;
      if (key !== "" && (keysInBatch.has(key) || this.dedup.lookup(key, nowMs) !== undefined)) continue;
      if (key !== "") keysInBatch.add(key);
      fresh += 1;
    }
    if (this.store.size + fresh <= this.settings.maxLength) return undefined;
    return new QueueError(
      ErrorCode.ResourceExhausted,
      `queue ${quote(this.name)} is full: it holds ${this.store.size} of max_length ${this.settings.maxLength} ` +
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
    eligible: (record: MessageRecord) => boolean,
  ): Selection {
    const chosen = new Map<number, MessageRecord>();
    const refusedReceipts: string[] = [];
    for (const receipt of receipts) {
      const parts = parseReceipt(receipt);
      const record = parts === undefined ? undefined : this.store.get(parts.id);
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
      const record = this.store.get(id);
      if (record !== undefined && eligible(record)) chosen.set(id, record);
    }
    return { records: [...chosen.values()], refusedReceipts };
  }

  /** A leased message given back: ready (after `delayMs`), or dead-lettered if exhausted. */
  private release(record: MessageRecord, delayMs: number, nowMs: number): void {
    if (this.isExhausted(record)) {
      this.deadLetter(record, nowMs);
    } else if (delayMs > 0) {
      this.move(record, MessageState.Delayed, nowMs + delayMs);
    } else {
      this.move(record, MessageState.Ready, 0);
    }
  }

  /** Removes a message that reached max_deliveries at `atMs` and hands it to the caller for routing. */
  private deadLetter(record: MessageRecord, atMs: number): void {
    this.remove(record);
    this.deadLetteredTotal += 1;
    this.deadLetters.push({ record, atMs });
  }

  private isExhausted(record: MessageRecord): boolean {
    return this.settings.maxDeliveries > 0 && record.deliveryCount >= this.settings.maxDeliveries;
  }

  private addMessage(body: Uint8Array, headers: Readonly<Record<string, string>>, nowMs: number): MessageRecord {
    const record: MessageRecord = {
      id: this.nextId,
      body,
      headers,
      enqueuedAtMs: nowMs,
      state: MessageState.Ready,
      dueMs: 0,
      deliveryCount: 0,
      generation: 0,
    };
    this.nextId += 1;
    this.enqueuedTotal += 1;
    this.store.add(record);
    return record;
  }

  /** Puts a message not in any index into `state`. */
  private place(record: MessageRecord, state: MessageState, dueMs: number): void {
    record.state = state;
    record.dueMs = dueMs;
    record.generation += 1;
    this.indexOf(record).add({ id: record.id, generation: record.generation, dueMs });
  }

  /** Moves a message from its state to `state` (possibly the same one, with a new due time). */
  private move(record: MessageRecord, state: MessageState, dueMs: number): void {
    this.indexOf(record).forget();
    this.place(record, state, dueMs);
  }

  private remove(record: MessageRecord): void {
    this.indexOf(record).forget();
    this.store.delete(record.id);
  }

  private record(entry: IndexEntry): MessageRecord {
    const record = this.store.get(entry.id);
    if (record === undefined) throw new Error(`index entry for missing message ${entry.id}: bookkeeping bug`);
    return record;
  }

  /** Ends every change: settles the indexes (so reads may peek) and checks the counting invariants. */
  private finish(): void {
    const indexes = this.indexes();
    for (const index of indexes) index.settle();
    const held = indexes.reduce((sum, index) => sum + index.size, 0);
    const expected = this.enqueuedTotal - this.ackedTotal - this.deadLetteredTotal - this.purgedTotal;
    if (held !== this.store.size || held !== expected) {
      throw new Error(
        `queue ${quote(this.name)} bookkeeping bug: indexes hold ${held}, store ${this.store.size}, counters ${expected}`,
      );
    }
  }
}

function isInFlight(record: MessageRecord): boolean {
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
