/**
 * Remembers idempotency keys for one queue's dedup window, measured in log time. Keys are held as their
 * 128-bit digests (key-digest.ts), in typed arrays with no object or string per key, so the limit of
 * MAX_DEDUP_KEYS_PER_QUEUE keys costs about 40 MB rather than hundreds:
 *
 * - a ring of entries in remember order: digest (16 bytes), first id and expiry (8 bytes each). Every key
 *   gets the same window and log time never goes back, so remember order is also expiry order: pruning
 *   only ever looks at the front. Keys are only remembered with a message id just assigned, so that order
 *   is also (expiresAtMs, id) order, which is how `restore` rebuilds it. A key remembered again leaves a
 *   hole (skipped, then compacted away). The ring grows by a quarter when full (entries are big, so slack
 *   costs more than copying), not beyond maxKeys without holes, and halves when mostly empty.
 * - an open-addressing hash table from digest to ring position (4 bytes a slot, linear probing,
 *   backward-shift deletion), at most half full, doubling as it fills.
 *
 * That is 32 to 40 bytes per key in the ring and 8 to 16 in the table: at most 56 with all slack, when
 * there are no holes (test/storage/queue-memory.test.ts measures it).
 */
import { DIGEST_WORDS, digestHex } from "./key-digest.js";

/**
 * Told of every key remembered and forgotten, in ring order, so they can be persisted. `digest` holds
 * the key's DIGEST_WORDS words; read it during the call (it may be reused).
 */
export interface DedupListener {
  remembered(digest: Uint32Array, id: number, expiresAtMs: number): void;
  /** The oldest key held, remembered for `id` until `expiresAtMs`, was forgotten. */
  forgotten(digest: Uint32Array, id: number, expiresAtMs: number): void;
}

/** The smallest ring and table; neither shrinks below it. */
const MIN_CAPACITY = 16;
const RING_GROWTH_FACTOR = 1.25;
/** Halve the ring when less than this fraction of it holds keys, so a quiet queue gives its memory back. */
const MIN_RING_LOAD = 0.25;
/** Double the table when more than this fraction of its slots is used. */
const MAX_TABLE_LOAD = 0.5;
/** Marks an empty table slot: used slots hold a ring position plus one. */
const EMPTY = 0;
/** The id of a ring entry whose key was remembered again since (message ids are positive). */
const HOLE = 0;
/** Ring positions must fit a table slot. */
const MAX_RING_CAPACITY = 0xffff_fffe;

/** One queue's idempotency keys, by digest. */
export class DedupIndex {
  /** Keys remembered (ring entries that are not holes). */
  private count = 0;
  /** Ring position of the oldest entry. */
  private head = 0;
  /** Ring entries from `head` on, holes included. */
  private span = 0;
  private ringCapacity = MIN_CAPACITY;
  private digests = new Uint32Array(MIN_CAPACITY * DIGEST_WORDS);
  private ids = new Float64Array(MIN_CAPACITY);
  private expiresAtMs = new Float64Array(MIN_CAPACITY);
  /** Digest -> ring position + 1; its length is a power of two. */
  private table = new Uint32Array(MIN_CAPACITY);

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly listener: DedupListener,
  ) {
    if (!(maxKeys >= 1 && maxKeys <= MAX_RING_CAPACITY)) throw new Error(`dedup index of ${maxKeys} keys: expected 1..${MAX_RING_CAPACITY}`);
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.count;
  }

  /** The digests of every key remembered, oldest first, DIGEST_WORDS words each. */
  allDigests(): Uint32Array {
    const out = new Uint32Array(this.count * DIGEST_WORDS);
    let next = 0;
    for (let offset = 0; offset < this.span; offset++) {
      const at = this.ringIndex(offset);
      if (this.ids[at] === HOLE) continue;
      out.set(this.digests.subarray(at * DIGEST_WORDS, (at + 1) * DIGEST_WORDS), next);
      next += DIGEST_WORDS;
    }
    return out;
  }

  /** The id first enqueued under the key of `digest`, if that was less than the window before `nowMs`. */
  lookup(digest: Uint32Array, nowMs: number): number | undefined {
    const slot = this.slotOf(digest);
    if (slot < 0) return undefined;
    const at = (this.table[slot] as number) - 1;
    return nowMs < (this.expiresAtMs[at] as number) ? (this.ids[at] as number) : undefined;
  }

  /** Records the key of `digest` for message `id` enqueued at `nowMs`, forgetting the oldest key when full. */
  remember(digest: Uint32Array, id: number, nowMs: number): void {
    if (!(id >= 1 && Number.isSafeInteger(id))) throw new Error(`message id ${id} is not a positive integer`);
    const slot = this.slotOf(digest);
    if (slot >= 0) {
      // A key remembered again leaves a hole where it was and goes to the back, keeping ring order equal
      // to expiry order; its record is overwritten, not forgotten.
      this.ids[(this.table[slot] as number) - 1] = HOLE;
      this.removeSlot(slot);
      this.count -= 1;
    }
    if (this.count >= this.maxKeys) this.forgetOldest();
    const expiresAtMs = nowMs + this.windowMs;
    this.append(digest, id, expiresAtMs);
    this.listener.remembered(digest, id, expiresAtMs);
  }

  /** Forgets the keys whose window ended at or before `nowMs`. */
  prune(nowMs: number): void {
    while (this.span > 0) {
      const at = this.head;
      if (this.ids[at] !== HOLE) {
        if ((this.expiresAtMs[at] as number) > nowMs) break;
        this.forget(at);
      }
      this.popFront();
    }
    let capacity = this.ringCapacity;
    while (capacity > MIN_CAPACITY && this.count < capacity * MIN_RING_LOAD) capacity = Math.max(MIN_CAPACITY, Math.ceil(capacity / 2));
    if (capacity !== this.ringCapacity) this.resizeRing(capacity);
  }

  /**
   * Rebuilds the keys of an empty index from their records (in any order), without telling the listener.
   * The index takes the batch's columns as its ring, sorted in place into (expiresAtMs, id) order, the
   * ring's order: so a million restored keys cost the ring, the table and, for the sort, 16 bytes each
   * while it runs; no second copy of the ring and never an object per key. A digest stored twice (a key
   * remembered again while held) keeps its later record; the earlier becomes a hole, as in remember().
   * The batch is left empty.
   */
  restore(records: DedupRecordBatch): void {
    if (this.span > 0) throw new Error(`restoring idempotency keys into an index already holding ${this.count}`);
    const keys = records.length;
    const order = records.expiryOrder();
    const columns = records.release();
    permute(order, columns);
    this.ringCapacity = columns.ids.length;
    this.digests = columns.digests;
    this.ids = columns.ids;
    this.expiresAtMs = columns.expiresAtMs;
    this.head = 0;
    this.table = new Uint32Array(tableCapacityFor(keys));
    for (let at = 0; at < keys; at++) {
      const earlier = this.insertOrReplaceSlot(at);
      if (earlier >= 0) {
        if (this.ids[earlier] === this.ids[at]) {
          throw new Error(`idempotency key digest ${digestHex(this.digests, at * DIGEST_WORDS)} is stored twice for one message: the stored records are corrupt`);
        }
        this.ids[earlier] = HOLE;
        this.count -= 1;
      }
      this.span += 1;
      this.count += 1;
    }
  }

  private forgetOldest(): void {
    while (this.ids[this.head] === HOLE) this.popFront();
    this.forget(this.head);
    this.popFront();
  }

  /** Unlinks the live entry at ring position `at` (the caller moves past it) and tells the listener. */
  private forget(at: number): void {
    this.removeSlot(this.slotOfEntry(at));
    this.count -= 1;
    this.listener.forgotten(this.digests.subarray(at * DIGEST_WORDS, (at + 1) * DIGEST_WORDS), this.ids[at] as number, this.expiresAtMs[at] as number);
  }

  private popFront(): void {
    this.head = this.head + 1 === this.ringCapacity ? 0 : this.head + 1;
    this.span -= 1;
  }

  private append(digest: Uint32Array, id: number, expiresAtMs: number): void {
    if (this.span === this.ringCapacity) this.resizeRing(this.fullRingCapacity());
    const at = this.ringIndex(this.span);
    this.digests.set(digest.subarray(0, DIGEST_WORDS), at * DIGEST_WORDS);
    this.ids[at] = id;
    this.expiresAtMs[at] = expiresAtMs;
    this.span += 1;
    this.count += 1;
    if (this.count > this.table.length * MAX_TABLE_LOAD) this.rebuildTable(this.table.length * 2);
    else this.insertSlot(at);
  }

  /**
   * The capacity to move a full ring to. Without holes the ring need never pass maxKeys (remember forgets
   * the oldest key first). With many holes compacting in place is enough; with a few it would free too
   * little to pay for the copy, so the ring grows, past maxKeys if need be: to under 5/3 of it, since it
   * only grows while holes are under a quarter of it. (Enqueue prunes before it remembers, so holes never
   * arise there: a key it remembers again has expired and was forgotten.)
   */
  private fullRingCapacity(): number {
    const holes = this.span - this.count;
    const grown = Math.ceil(this.ringCapacity * RING_GROWTH_FACTOR);
    if (holes === 0) return Math.min(grown, this.maxKeys);
    return holes >= this.ringCapacity * MIN_RING_LOAD ? this.ringCapacity : grown;
  }

  /** Ring position `offset` entries after the head. */
  private ringIndex(offset: number): number {
    const at = this.head + offset;
    return at >= this.ringCapacity ? at - this.ringCapacity : at;
  }

  /** The table slot of `digest`, or -1. */
  private slotOf(digest: Uint32Array): number {
    const mask = this.table.length - 1;
    for (let slot = (digest[0] as number) & mask; ; slot = (slot + 1) & mask) {
      const held = this.table[slot] as number;
      if (held === EMPTY) return -1;
      if (this.holds(held - 1, digest)) return slot;
    }
  }

  /** The table slot of the live ring entry at `at`. */
  private slotOfEntry(at: number): number {
    const mask = this.table.length - 1;
    let slot = this.home(at);
    while (this.table[slot] !== at + 1) slot = (slot + 1) & mask;
    return slot;
  }

  private holds(at: number, digest: Uint32Array): boolean {
    const base = at * DIGEST_WORDS;
    return (
      this.digests[base] === digest[0] &&
      this.digests[base + 1] === digest[1] &&
      this.digests[base + 2] === digest[2] &&
      this.digests[base + 3] === digest[3]
    );
  }

  /** Whether the ring entries at `a` and `b` have one digest. */
  private sameDigest(a: number, b: number): boolean {
    for (let word = 0; word < DIGEST_WORDS; word++) {
      if (this.digests[a * DIGEST_WORDS + word] !== this.digests[b * DIGEST_WORDS + word]) return false;
    }
    return true;
  }

  /** The home slot of the ring entry at `at`: its digest's first word is as good as any hash. */
  private home(at: number): number {
    return (this.digests[at * DIGEST_WORDS] as number) & (this.table.length - 1);
  }

  /** Indexes the ring entry at `at`, in place of an indexed entry with its digest if any: returns that one's position, or -1. */
  private insertOrReplaceSlot(at: number): number {
    const mask = this.table.length - 1;
    let slot = this.home(at);
    for (let held = this.table[slot] as number; held !== EMPTY; slot = (slot + 1) & mask, held = this.table[slot] as number) {
      if (this.sameDigest(held - 1, at)) {
        this.table[slot] = at + 1;
        return held - 1;
      }
    }
    this.table[slot] = at + 1;
    return -1;
  }

  private insertSlot(at: number): void {
    const mask = this.table.length - 1;
    let slot = this.home(at);
    while (this.table[slot] !== EMPTY) slot = (slot + 1) & mask;
    this.table[slot] = at + 1;
  }

  /** Backward-shift deletion: moves later entries of the probe run up, so no tombstones are needed. */
  private removeSlot(start: number): void {
    const mask = this.table.length - 1;
    let hole = start;
    for (let slot = (hole + 1) & mask; ; slot = (slot + 1) & mask) {
      const held = this.table[slot] as number;
      if (held === EMPTY) break;
      const home = this.home(held - 1);
      // The entry at `slot` may fill the hole only if its home is not cyclically within (hole, slot].
      const staysPut = hole <= slot ? hole < home && home <= slot : hole < home || home <= slot;
      if (staysPut) continue;
      this.table[hole] = held;
      hole = slot;
    }
    this.table[hole] = EMPTY;
  }

  /** Moves the live entries, in order, to the front of a ring of `capacity`, and re-indexes them. */
  private resizeRing(capacity: number): void {
    if (capacity < this.count || capacity > MAX_RING_CAPACITY) throw new Error(`dedup ring of ${capacity} entries cannot hold ${this.count} keys`);
    const digests = new Uint32Array(capacity * DIGEST_WORDS);
    const ids = new Float64Array(capacity);
    const expiresAtMs = new Float64Array(capacity);
    if (this.head === 0 && this.span === this.count) {
      // Nothing forgotten yet (a backlog growing): every entry keeps its position, so three block copies
      // do, and the table stays valid. Rebuilding it at each growth held the event loop for hundreds of
      // milliseconds near a million keys.
      digests.set(this.digests.subarray(0, this.span * DIGEST_WORDS));
      ids.set(this.ids.subarray(0, this.span));
      expiresAtMs.set(this.expiresAtMs.subarray(0, this.span));
      this.ringCapacity = capacity;
      this.digests = digests;
      this.ids = ids;
      this.expiresAtMs = expiresAtMs;
      return;
    }
    let next = 0;
    for (let offset = 0; offset < this.span; offset++) {
      const at = this.ringIndex(offset);
      if (this.ids[at] === HOLE) continue;
      // Word by word: a subarray per entry cost an object each, and a million of them held the event loop.
      for (let word = 0; word < DIGEST_WORDS; word++) digests[next * DIGEST_WORDS + word] = this.digests[at * DIGEST_WORDS + word] as number;
      ids[next] = this.ids[at] as number;
      expiresAtMs[next] = this.expiresAtMs[at] as number;
      next += 1;
    }
    this.ringCapacity = capacity;
    this.digests = digests;
    this.ids = ids;
    this.expiresAtMs = expiresAtMs;
    this.head = 0;
    this.span = next;
    this.rebuildTable(tableCapacityFor(this.count + 1));
  }

  /** Replaces the table by one of `capacity` slots indexing every live ring entry. */
  private rebuildTable(capacity: number): void {
    this.table = new Uint32Array(capacity);
    for (let offset = 0; offset < this.span; offset++) {
      const at = this.ringIndex(offset);
      if (this.ids[at] !== HOLE) this.insertSlot(at);
    }
  }
}

/** The smallest table (a power of two) that holds `keys` within MAX_TABLE_LOAD. */
function tableCapacityFor(keys: number): number {
  let capacity = MIN_CAPACITY;
  while (keys > capacity * MAX_TABLE_LOAD) capacity *= 2;
  return capacity;
}

/** Ring entries in columns: DIGEST_WORDS digest words, the id and the expiry of each. */
interface RingColumns {
  readonly digests: Uint32Array<ArrayBuffer>;
  readonly ids: Float64Array<ArrayBuffer>;
  readonly expiresAtMs: Float64Array<ArrayBuffer>;
}

/**
 * Stored records of one queue's idempotency keys, gathered for `DedupIndex.restore` in columns that
 * become the index's ring, so loading a million keys makes no object or string per key. The columns
 * double as they fill (few copies: a restart adds a million keys in a row), never beyond `maxRecords`,
 * since a queue never stores more keys than its index holds; `release` trims what a ring would not keep.
 */
export class DedupRecordBatch {
  /** Records added. */
  length = 0;
  private columns: RingColumns = ringColumns(MIN_CAPACITY);

  constructor(private readonly maxRecords: number) {}

  /** DIGEST_WORDS words per record. */
  get digests(): Uint32Array {
    return this.columns.digests;
  }

  get ids(): Float64Array {
    return this.columns.ids;
  }

  get expiresAtMs(): Float64Array {
    return this.columns.expiresAtMs;
  }

  /** Adds the record of the key whose digest is in `digest` at `offset`, first enqueued as `id`. */
  add(digest: Uint32Array, offset: number, id: number, expiresAtMs: number): void {
    if (!(id >= 1 && Number.isSafeInteger(id))) throw new Error(`stored idempotency key names message id ${id}: expected a positive integer`);
    if (this.length >= this.maxRecords) throw new Error(`more than ${this.maxRecords} idempotency keys stored for one queue: the stored records are corrupt`);
    if (this.length === this.columns.ids.length) this.grow();
    const at = this.length;
    const { digests, ids, expiresAtMs: expiries } = this.columns;
    for (let word = 0; word < DIGEST_WORDS; word++) digests[at * DIGEST_WORDS + word] = digest[offset + word] as number;
    ids[at] = id;
    expiries[at] = expiresAtMs;
    this.length += 1;
  }

  /**
   * Record positions in (expiresAtMs, id) order. Ids are unique within a queue, so each record has the
   * integer rank (expiresAtMs - earliest) × idSpan + (id - lowest id); while ranks stay exact (under
   * 2^53, as with any real window and id range), a radix sort on them, 16 bits a pass, orders a million
   * records several times faster than a comparison sort, which remains for ranges beyond that.
   */
  expiryOrder(): Uint32Array {
    const count = this.length;
    const { ids, expiresAtMs } = this.columns;
    const order = new Uint32Array(count);
    for (let at = 0; at < count; at++) order[at] = at;
    let earliest = Infinity;
    let latest = -Infinity;
    let lowestId = Infinity;
    let highestId = -Infinity;
    for (let at = 0; at < count; at++) {
      earliest = Math.min(earliest, expiresAtMs[at] as number);
      latest = Math.max(latest, expiresAtMs[at] as number);
      lowestId = Math.min(lowestId, ids[at] as number);
      highestId = Math.max(highestId, ids[at] as number);
    }
    const idSpan = highestId - lowestId + 1;
    const highestRank = (latest - earliest) * idSpan + idSpan - 1;
    const exact = Number.isSafeInteger(highestRank) && expiresAtMs.subarray(0, count).every(Number.isInteger);
    if (count < 2 || !exact) {
      return order.sort((a, b) => (expiresAtMs[a] as number) - (expiresAtMs[b] as number) || (ids[a] as number) - (ids[b] as number));
    }
    const ranks = new Float64Array(count);
    for (let at = 0; at < count; at++) ranks[at] = ((expiresAtMs[at] as number) - earliest) * idSpan + ((ids[at] as number) - lowestId);
    return radixOrder(ranks, order, highestRank);
  }

  /**
   * Hands the columns over (to become a ring) and starts empty again. Columns with more slack than a
   * grown ring's quarter are first cut to the records' size: doubling may have left up to half unused.
   */
  release(): RingColumns {
    const columns = this.columns;
    const fitted = Math.max(MIN_CAPACITY, this.length);
    this.columns = ringColumns(MIN_CAPACITY);
    this.length = 0;
    return columns.ids.length > fitted * RING_GROWTH_FACTOR ? resized(columns, fitted) : columns;
  }

  private grow(): void {
    this.columns = resized(this.columns, Math.min(this.columns.ids.length * 2, this.maxRecords));
  }
}

function ringColumns(capacity: number): RingColumns {
  return { digests: new Uint32Array(capacity * DIGEST_WORDS), ids: new Float64Array(capacity), expiresAtMs: new Float64Array(capacity) };
}

/** Digits per radix sort pass (16 bits). */
const RADIX = 65_536;

/** `order` (positions into `ranks`, distinct safe integers up to `highestRank`) sorted by rank, stably. */
function radixOrder(ranks: Float64Array, order: Uint32Array, highestRank: number): Uint32Array {
  let from: Uint32Array = order;
  let to: Uint32Array = new Uint32Array(order.length);
  const starts = new Uint32Array(RADIX);
  for (let unit = 1; unit <= highestRank; unit *= RADIX) {
    starts.fill(0);
    for (let at = 0; at < ranks.length; at++) {
      const digit = Math.floor((ranks[at] as number) / unit) % RADIX;
      starts[digit] = (starts[digit] as number) + 1;
    }
    let start = 0;
    for (let digit = 0; digit < RADIX; digit++) {
      const digitCount = starts[digit] as number;
      starts[digit] = start;
      start += digitCount;
    }
    for (let at = 0; at < from.length; at++) {
      const position = from[at] as number;
      const digit = Math.floor((ranks[position] as number) / unit) % RADIX;
      const next = starts[digit] as number;
      to[next] = position;
      starts[digit] = next + 1;
    }
    [from, to] = [to, from];
  }
  return from;
}

/** The first `capacity` entries of `columns` (zeros past their end) in new columns of `capacity`. */
function resized(columns: RingColumns, capacity: number): RingColumns {
  const copy = ringColumns(capacity);
  const kept = Math.min(capacity, columns.ids.length);
  copy.digests.set(columns.digests.subarray(0, kept * DIGEST_WORDS));
  copy.ids.set(columns.ids.subarray(0, kept));
  copy.expiresAtMs.set(columns.expiresAtMs.subarray(0, kept));
  return copy;
}

/** Reorders the first order.length entries of `columns` in place so entry `at` is the one at `order[at]`; spends `order`. */
function permute(order: Uint32Array, columns: RingColumns): void {
  const { digests, ids, expiresAtMs } = columns;
  const digest = new Uint32Array(DIGEST_WORDS);
  for (let start = 0; start < order.length; start++) {
    if (order[start] === start) continue;
    // Walk the cycle through `start`: hold its entry, pull each next one forward, mark each place done.
    for (let word = 0; word < DIGEST_WORDS; word++) digest[word] = digests[start * DIGEST_WORDS + word] as number;
    const id = ids[start] as number;
    const expiry = expiresAtMs[start] as number;
    let at = start;
    for (let from = order[at] as number; from !== start; at = from, from = order[at] as number) {
      digests.copyWithin(at * DIGEST_WORDS, from * DIGEST_WORDS, (from + 1) * DIGEST_WORDS);
      ids[at] = ids[from] as number;
      expiresAtMs[at] = expiresAtMs[from] as number;
      order[at] = at;
    }
    digests.set(digest, at * DIGEST_WORDS);
    ids[at] = id;
    expiresAtMs[at] = expiry;
    order[at] = at;
  }
}
