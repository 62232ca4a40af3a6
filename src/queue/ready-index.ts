/**
 * The ready messages of one queue, lowest id first. Most ready messages were just enqueued, in increasing
 * id order, and never delivered: they sit in a plain run of ids (8 bytes each, appended at the end, taken
 * from the front). Messages that become ready later (a delay ended, a lease ended or was nacked) go to a
 * heap. A lease takes the lower of the two fronts.
 *
 * A message enters the run only with delivery count 0 and leaves "ready with count 0" only by a lease
 * (which counts a delivery) or by removal, never to return: so a run entry is live exactly while its
 * message is ready with count 0, and no message has live entries in both places.
 */
import { DueHeap, type DueEntry } from "./due-heap.js";
import { STALE_SLACK_ENTRIES, type MessageIndex } from "./state-index.js";

const MIN_RUN_CAPACITY = 16;
const GROWTH_FACTOR = 1.5;

/** One queue's ready messages. */
export class ReadyIndex implements MessageIndex {
  /** run[head..tail) holds ascending ids of never-delivered messages, live or stale. */
  private run = new Float64Array(MIN_RUN_CAPACITY);
  private head = 0;
  private tail = 0;
  /** Messages that became ready again, or late: entries (0, id, generation), live while the generation holds. */
  private readonly returned = new DueHeap();
  private liveCount = 0;

  /**
   * `isFreshReady(id)`: the message is held, ready, and never delivered. `isLive(entry)`: the heap entry
   * still describes its message (ready, same generation).
   */
  constructor(
    private readonly isFreshReady: (id: number) => boolean,
    private readonly isLive: (entry: DueEntry) => boolean,
  ) {}

  get size(): number {
    return this.liveCount;
  }

  /** A message became ready; `deliveryCount` tells whether it may join the run. */
  addReady(entry: DueEntry, deliveryCount: number): void {
    this.liveCount += 1;
    const last = this.tail > this.head ? (this.run[this.tail - 1] as number) : 0;
    if (deliveryCount === 0 && entry.id > last) {
      this.append(entry.id);
      if (this.tail - this.head > 2 * this.liveCount + STALE_SLACK_ENTRIES) this.compact();
    } else {
      this.returned.push(entry);
      if (this.returned.size > 2 * this.liveCount + STALE_SLACK_ENTRIES) this.returned.retain(this.isLive);
    }
  }

  add(entry: DueEntry): void {
    this.addReady(entry, 1);
  }

  forget(): void {
    if (this.liveCount === 0) throw new Error("ReadyIndex.forget with no live entry: bookkeeping bug");
    this.liveCount -= 1;
  }

  /** The live ready message with the lowest id, left in place (the caller moves it, making it stale). */
  first(): DueEntry | undefined {
    this.settle();
    const fromRun = this.tail > this.head ? (this.run[this.head] as number) : Infinity;
    const fromHeap = this.returned.peek();
    if (fromHeap !== undefined && fromHeap.id < fromRun) return fromHeap;
    return fromRun === Infinity ? undefined : { dueMs: 0, id: fromRun, generation: 0 };
  }

  settle(): void {
    while (this.tail > this.head && !this.isFreshReady(this.run[this.head] as number)) this.head += 1;
    for (let top = this.returned.peek(); top !== undefined && !this.isLive(top); top = this.returned.peek()) {
      this.returned.pop();
    }
  }

  clear(): void {
    this.run = new Float64Array(MIN_RUN_CAPACITY);
    this.head = 0;
    this.tail = 0;
    this.returned.clear();
    this.liveCount = 0;
  }

  private append(id: number): void {
    if (this.tail === this.run.length) {
      // Full at the end: slide the entries to the front if that frees at least half, else grow.
      const used = this.tail - this.head;
      if (used * 2 <= this.run.length) {
        this.run.copyWithin(0, this.head, this.tail);
      } else {
        const run = new Float64Array(Math.ceil(this.run.length * GROWTH_FACTOR));
        run.set(this.run.subarray(this.head, this.tail));
        this.run = run;
      }
      this.head = 0;
      this.tail = used;
    }
    this.run[this.tail] = id;
    this.tail += 1;
  }

  /** Drops stale run entries from anywhere, keeping the order. */
  private compact(): void {
    let kept = 0;
    for (let index = this.head; index < this.tail; index++) {
      const id = this.run[index] as number;
      if (this.isFreshReady(id)) this.run[kept++] = id;
    }
    this.head = 0;
    this.tail = kept;
    if (this.run.length > MIN_RUN_CAPACITY && kept < this.run.length / 4) {
      this.run = this.run.slice(0, Math.max(MIN_RUN_CAPACITY, kept * 2));
    }
  }
}
