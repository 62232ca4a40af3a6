/**
 * One queue: its messages, their states and counters. Every method takes the command's log time `nowMs`
 * where time matters and never reads a clock, so replaying the same calls rebuilds the same queue.
 * Messages that leave through max_deliveries are handed to the caller (takeDeadLetters) for routing.
 */
import type { NewMessage } from "./commands.js";
import { inMessage } from "./command-validation.js";
import { DedupIndex } from "./dedup-index.js";
import { ErrorCode, QueueError } from "./errors.js";
import { MAX_DEDUP_KEYS_PER_QUEUE } from "./limits.js";
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

/** One queue: its settings, messages, indexes and counters. */
export class QueueState {
  private readonly dedup: DedupIndex;
  private readonly indexes: Readonly<Record<MessageState, StateIndex>>;
  private nextId = 1;
  private enqueuedTotal = 0;
  private ackedTotal = 0;
  private deadLetteredTotal = 0;
  private purgedTotal = 0;
  /** Messages that left through max_deliveries during the current command, oldest first. */
  private deadLetters: MessageRecord[] = [];

  /** `incarnation` is unique per queue ever created, so receipts of a deleted namesake never match. */
  constructor(
    readonly name: string,
    readonly settings: QueueSettings,
    readonly incarnation: number,
    private readonly store: MessageStore,
  ) {
    this.dedup = new DedupIndex(settings.dedupWindowMs, MAX_DEDUP_KEYS_PER_QUEUE);
    const isLive = (entry: IndexEntry): boolean => this.store.get(entry.id)?.generation === entry.generation;
    this.indexes = {
      [MessageState.Ready]: new StateIndex(isLive),
      [MessageState.Delayed]: new StateIndex(isLive),
      [MessageState.InFlight]: new StateIndex(isLive),
    };
  }

  /** Makes due delayed messages ready and ends expired leases; run before every command on the queue. */
  advanceTo(nowMs: number): void {
    for (let entry = this.delayed.popDue(nowMs); entry !== undefined; entry = this.delayed.popDue(nowMs)) {
      this.move(this.record(entry), MessageState.Ready, 0);
    }
    for (let entry = this.inFlight.popDue(nowMs); entry !== undefined; entry = this.inFlight.popDue(nowMs)) {
      this.release(this.record(entry), 0, nowMs);
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
   * Adds a message dead-lettered by another queue: a new id, the same body and headers, no deliveries yet.
   * It bypasses max_length and max_message_bytes: it was admitted once and moving it adds nothing overall.
   */
  acceptDeadLetter(source: MessageRecord, nowMs: number): void {
    this.place(this.addMessage(source.body, source.headers, nowMs), MessageState.Ready, 0);
    this.finish();
  }

  /** Leases up to `maxMessages` (0 = 1) ready messages, lowest id first, for `visibilityTimeoutMs` (0 = default). */
  lease(maxMessages: number, visibilityTimeoutMs: number, nowMs: number): LeaseResult {
    const count = maxMessages || DEFAULT_MAX_MESSAGES;
    const deadlineMs = nowMs + (visibilityTimeoutMs || this.settings.visibilityTimeoutMs);
    const deliveries: Delivery[] = [];
    for (let entry = this.ready.popDue(nowMs); entry !== undefined; entry = this.ready.popDue(nowMs)) {
      const record = this.record(entry);
      record.deliveryCount += 1;
      this.move(record, MessageState.InFlight, deadlineMs);
      deliveries.push({
        id: record.id,
        body: record.body,
        headers: record.headers,
        deliveryCount: record.deliveryCount,
        enqueuedAtMs: record.enqueuedAtMs,
        receipt: formatReceipt({ incarnation: this.incarnation, id: record.id, deliveryCount: record.deliveryCount }),
      });
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
    for (const index of Object.values(this.indexes)) index.clear();
    this.purgedTotal += purged;
    this.finish();
    return purged;
  }

  /** The messages that left through max_deliveries since the last call, oldest first. */
  takeDeadLetters(): MessageRecord[] {
    const taken = this.deadLetters;
    this.deadLetters = [];
    return taken;
  }

  /** Counts as of `nowMs` (not before the last command): what advanceTo(nowMs) would produce, read only. */
  stats(nowMs: number): QueueStats {
    let dueDelayed = 0;
    this.delayed.visitDue(nowMs, () => (dueDelayed += 1));
    let expired = 0;
    let expiredExhausted = 0;
    this.inFlight.visitDue(nowMs, (entry) => {
      expired += 1;
      if (this.isExhausted(this.record(entry))) expiredExhausted += 1;
    });
    return {
      ready: this.ready.size + dueDelayed + expired - expiredExhausted,
      inFlight: this.inFlight.size - expired,
      delayed: this.delayed.size - dueDelayed,
      enqueuedTotal: this.enqueuedTotal,
      ackedTotal: this.ackedTotal,
      deadLetteredTotal: this.deadLetteredTotal + expiredExhausted,
      purgedTotal: this.purgedTotal,
    };
  }

  /** Whether a lease at `nowMs` would return at least one message. Read only. */
  hasReady(nowMs: number): boolean {
    if (this.ready.size > 0) return true;
    const delayedTop = this.delayed.peek();
    if (delayedTop !== undefined && delayedTop.dueMs <= nowMs) return true;
    let redeliverable = false;
    this.inFlight.visitDue(nowMs, (entry) => {
      if (!this.isExhausted(this.record(entry))) redeliverable = true;
    });
    return redeliverable;
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
   * The earliest log time at which a lease could return a message with no other command in between
   * (0 when one is ready now), or undefined if only an enqueue or nack can make one ready. It may be early
   * (an ending lease can dead-letter instead), never late. Read only.
   */
  nextWakeMs(): number | undefined {
    if (this.ready.size > 0) return 0;
    const dueTimes = [this.delayed.peek()?.dueMs, this.inFlight.peek()?.dueMs].filter((t) => t !== undefined);
    return dueTimes.length === 0 ? undefined : Math.min(...dueTimes);
  }

  private get ready(): StateIndex {
    return this.indexes[MessageState.Ready];
  }

  private get delayed(): StateIndex {
    return this.indexes[MessageState.Delayed];
  }

  private get inFlight(): StateIndex {
    return this.indexes[MessageState.InFlight];
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

  /** A message whose lease ended or was given back: ready (after `delayMs`), or dead-lettered if exhausted. */
  private release(record: MessageRecord, delayMs: number, nowMs: number): void {
    if (this.isExhausted(record)) {
      this.remove(record);
      this.deadLetteredTotal += 1;
      this.deadLetters.push(record);
    } else if (delayMs > 0) {
      this.move(record, MessageState.Delayed, nowMs + delayMs);
    } else {
      this.move(record, MessageState.Ready, 0);
    }
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
    this.indexes[state].add({ id: record.id, generation: record.generation, dueMs });
  }

  /** Moves a message from its state to `state` (possibly the same one, with a new due time). */
  private move(record: MessageRecord, state: MessageState, dueMs: number): void {
    this.indexes[record.state].forget();
    this.place(record, state, dueMs);
  }

  private remove(record: MessageRecord): void {
    this.indexes[record.state].forget();
    this.store.delete(record.id);
  }

  private record(entry: IndexEntry): MessageRecord {
    const record = this.store.get(entry.id);
    if (record === undefined) throw new Error(`index entry for missing message ${entry.id}: bookkeeping bug`);
    return record;
  }

  /** Ends every change: settles the indexes (so reads may peek) and checks the counting invariants. */
  private finish(): void {
    for (const index of Object.values(this.indexes)) index.settle();
    const held = this.ready.size + this.delayed.size + this.inFlight.size;
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
