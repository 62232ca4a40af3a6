/**
 * The messages of one queue, by id, in columns of typed arrays: an open-addressing hash table with linear
 * probing, about 45 bytes per slot and no object per message, so a backlog of millions costs tens of
 * megabytes. Ids are scattered by a multiplicative hash, so probe runs stay short even though a queue's
 * live ids are mostly one dense window of consecutive numbers.
 */
import { MessageState, type MessageMeta } from "./message-meta.js";

/** The smallest capacity; the table never shrinks below it. */
const MIN_CAPACITY = 16;
/** Grow (by GROWTH_FACTOR) when more than this fraction of the slots is used. */
const MAX_LOAD = 0.8;
/** Shrink (by half) when less than this fraction is used, so a drained queue gives its memory back. */
const MIN_LOAD = 0.2;
const GROWTH_FACTOR = 1.5;
/** Marks an empty slot: ids are positive. */
const EMPTY = 0;

/** One queue's MessageMeta records, by id. */
export class MessageTable {
  private capacity = MIN_CAPACITY;
  private count = 0;
  private ids = new Float64Array(MIN_CAPACITY);
  private bodyIds = new Float64Array(MIN_CAPACITY);
  private enqueuedAtMs = new Float64Array(MIN_CAPACITY);
  private dueMs = new Float64Array(MIN_CAPACITY);
  private payloadBytes = new Uint32Array(MIN_CAPACITY);
  private deliveryCounts = new Uint32Array(MIN_CAPACITY);
  private generations = new Uint32Array(MIN_CAPACITY);
  private states = new Uint8Array(MIN_CAPACITY);

  /** Number of messages held. */
  get size(): number {
    return this.count;
  }

  /** Whether message `id` is held. */
  has(id: number): boolean {
    return this.slotOf(id) >= 0;
  }

  /** A copy of message `id`'s record, or undefined if it is not held. */
  get(id: number): MessageMeta | undefined {
    const slot = this.slotOf(id);
    return slot < 0 ? undefined : this.read(slot);
  }

  /** Message `id`'s state and generation, without a copy (the index liveness checks run this often). */
  isAt(id: number, state: MessageState, generation: number): boolean {
    const slot = this.slotOf(id);
    return slot >= 0 && this.states[slot] === state && this.generations[slot] === generation;
  }

  /** Whether message `id` is Ready and was never delivered (the fresh-ready run of ReadyIndex). */
  isFreshReady(id: number): boolean {
    const slot = this.slotOf(id);
    return slot >= 0 && this.states[slot] === MessageState.Ready && this.deliveryCounts[slot] === 0;
  }

  /**
   * Grows the table once, now, to hold `count` records without growing again. A restart reserves what
   * its queue's counters say it holds: growing step by step through a million messages left over 100 MB
   * of old columns for the garbage collector, and a node's memory stayed up until it ran.
   */
  reserve(count: number): void {
    if (count <= this.capacity * MAX_LOAD) return;
    this.resize(Math.ceil(count / MAX_LOAD) + 1);
  }

  /** Adds a record or overwrites the one with the same id. */
  set(meta: MessageMeta): void {
    if (!(meta.id >= 1 && Number.isSafeInteger(meta.id))) throw new Error(`message id ${meta.id} is not a positive integer`);
    let slot = this.slotOf(meta.id);
    if (slot < 0) {
      if (this.count + 1 > this.capacity * MAX_LOAD) this.resize(Math.ceil(this.capacity * GROWTH_FACTOR));
      slot = this.freeSlotFor(meta.id);
      this.count += 1;
    }
    this.write(slot, meta);
  }

  /** Removes message `id`; returns false if it was not held. */
  delete(id: number): boolean {
    const slot = this.slotOf(id);
    if (slot < 0) return false;
    this.removeSlot(slot);
    this.count -= 1;
    if (this.capacity > MIN_CAPACITY && this.count < this.capacity * MIN_LOAD) {
      this.resize(Math.max(MIN_CAPACITY, Math.ceil(this.capacity / 2)));
    }
    return true;
  }

  /** Every id held, in no particular order (for bulk removal: purge, queue deletion). */
  allIds(): Float64Array {
    return this.collect(this.ids);
  }

  /** Every body id held, in the same order as allIds. */
  allBodyIds(): Float64Array {
    return this.collect(this.bodyIds);
  }

  /** Removes every message and returns how many there were. */
  clear(): number {
    const removed = this.count;
    this.allocate(MIN_CAPACITY);
    this.count = 0;
    return removed;
  }

  private collect(column: Float64Array): Float64Array {
    const out = new Float64Array(this.count);
    let next = 0;
    for (let slot = 0; slot < this.capacity; slot++) if (this.ids[slot] !== EMPTY) out[next++] = column[slot] as number;
    return out;
  }

  /**
   * Fibonacci hashing of the id (both 32-bit halves) scaled to the capacity. Not `id mod capacity`: that
   * lays a dense window of ids out as one unbroken run of slots, and a backward-shift delete then scans the
   * whole run (found by make bench: draining 20,000 messages spent most of its time in removeSlot).
   */
  private home(id: number): number {
    const low = id >>> 0;
    const high = Math.floor(id / 4294967296) >>> 0;
    const mixed = Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 0;
    return Math.floor((mixed / 4294967296) * this.capacity);
  }

  private slotOf(id: number): number {
    for (let slot = this.home(id); ; slot = slot + 1 === this.capacity ? 0 : slot + 1) {
      const held = this.ids[slot];
      if (held === id) return slot;
      if (held === EMPTY) return -1;
    }
  }

  private freeSlotFor(id: number): number {
    let slot = this.home(id);
    while (this.ids[slot] !== EMPTY) slot = slot + 1 === this.capacity ? 0 : slot + 1;
    return slot;
  }

  /** Backward-shift deletion: moves later entries of the probe run up, so no tombstones are needed. */
  private removeSlot(start: number): void {
    let hole = start;
    for (let slot = hole + 1 === this.capacity ? 0 : hole + 1; ; slot = slot + 1 === this.capacity ? 0 : slot + 1) {
      const id = this.ids[slot] as number;
      if (id === EMPTY) break;
      const home = this.home(id);
      // The entry at `slot` may fill the hole only if its home is not cyclically within (hole, slot].
      const staysPut = hole <= slot ? hole < home && home <= slot : hole < home || home <= slot;
      if (staysPut) continue;
      this.copySlot(slot, hole);
      hole = slot;
    }
    this.ids[hole] = EMPTY;
  }

  private read(slot: number): MessageMeta {
    return {
      id: this.ids[slot] as number,
      bodyId: this.bodyIds[slot] as number,
      payloadBytes: this.payloadBytes[slot] as number,
      enqueuedAtMs: this.enqueuedAtMs[slot] as number,
      state: this.states[slot] as MessageState,
      dueMs: this.dueMs[slot] as number,
      deliveryCount: this.deliveryCounts[slot] as number,
      generation: this.generations[slot] as number,
    };
  }

  private write(slot: number, meta: MessageMeta): void {
    this.ids[slot] = meta.id;
    this.bodyIds[slot] = meta.bodyId;
    this.payloadBytes[slot] = meta.payloadBytes;
    this.enqueuedAtMs[slot] = meta.enqueuedAtMs;
    this.states[slot] = meta.state;
    this.dueMs[slot] = meta.dueMs;
    this.deliveryCounts[slot] = meta.deliveryCount;
    this.generations[slot] = meta.generation;
  }

  private copySlot(from: number, to: number): void {
    this.write(to, this.read(from));
  }

  private resize(capacity: number): void {
    const oldCapacity = this.capacity;
    const { ids, bodyIds, enqueuedAtMs, dueMs, payloadBytes, deliveryCounts, generations, states } = this;
    this.allocate(capacity);
    // Column by column, each typed: one loop over a list of mixed typed arrays ran several times slower,
    // and rehashing a million messages held the event loop for over half a second.
    for (let slot = 0; slot < oldCapacity; slot++) {
      const id = ids[slot] as number;
      if (id === EMPTY) continue;
      const to = this.freeSlotFor(id);
      this.ids[to] = id;
      this.bodyIds[to] = bodyIds[slot] as number;
      this.enqueuedAtMs[to] = enqueuedAtMs[slot] as number;
      this.dueMs[to] = dueMs[slot] as number;
      this.payloadBytes[to] = payloadBytes[slot] as number;
      this.deliveryCounts[to] = deliveryCounts[slot] as number;
      this.generations[to] = generations[slot] as number;
      this.states[to] = states[slot] as number;
    }
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.ids = new Float64Array(capacity);
    this.bodyIds = new Float64Array(capacity);
    this.enqueuedAtMs = new Float64Array(capacity);
    this.dueMs = new Float64Array(capacity);
    this.payloadBytes = new Uint32Array(capacity);
    this.deliveryCounts = new Uint32Array(capacity);
    this.generations = new Uint32Array(capacity);
    this.states = new Uint8Array(capacity);
  }
}
