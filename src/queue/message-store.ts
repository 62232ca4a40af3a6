/**
 * The seam between queue logic and message storage. Records live in memory for now; a later change moves
 * bodies to LevelDB behind this same interface.
 */

/** Where a message is in its life cycle. */
export enum MessageState {
  /** Waiting to be leased. */
  Ready = 0,
  /** Invisible until `dueMs` (an Enqueue or Nack delay). */
  Delayed = 1,
  /** Leased until `dueMs`. */
  InFlight = 2,
}

/** One message and its delivery bookkeeping. Only QueueState mutates the mutable fields. */
export interface MessageRecord {
  readonly id: number;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly enqueuedAtMs: number;
  state: MessageState;
  /** When a Delayed message becomes ready or an InFlight lease ends (log time); 0 when Ready. */
  dueMs: number;
  deliveryCount: number;
  /** Bumped on every state change, so index entries made before it are recognisably stale. */
  generation: number;
}

/** The messages of one queue, by id. */
export interface MessageStore {
  /** Number of messages held. */
  readonly size: number;
  get(id: number): MessageRecord | undefined;
  /** Adds a message; its id must be new. */
  add(record: MessageRecord): void;
  /** Removes a message for good; returns false if there was none. */
  delete(id: number): boolean;
  /** Removes every message and returns how many there were. */
  clear(): number;
}

/** A MessageStore in a Map. */
export class MemoryMessageStore implements MessageStore {
  private readonly records = new Map<number, MessageRecord>();

  get size(): number {
    return this.records.size;
  }

  get(id: number): MessageRecord | undefined {
    return this.records.get(id);
  }

  add(record: MessageRecord): void {
    if (this.records.has(record.id)) throw new Error(`message ${record.id} added twice: ids must be unique`);
    this.records.set(record.id, record);
  }

  delete(id: number): boolean {
    return this.records.delete(id);
  }

  clear(): number {
    const count = this.records.size;
    this.records.clear();
    return count;
  }
}
