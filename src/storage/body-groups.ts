/**
 * Bodies stored by group (queue-storage.ts BODY_GROUP_IDS): the bodies of one group, all added by one
 * enqueue command, are one LevelDB record, written once and deleted with the group's last live body. An
 * enqueue of a hundred messages writes one body record instead of a hundred, and acking them deletes one.
 *
 * A record is [u16 n] then n × [u16 index in group][u32 bytes], then the n encoded bodies (writeBody)
 * in that order; little endian. Records are never changed once written, only deleted, and body ids are
 * never reused, so a record read once can be cached as it is.
 *
 * How many bodies of a group are live is kept in memory (GroupLiveCounts), rebuilt from the message
 * bookkeeping at start: a stored group always has at least one live body (the batch that removes the last
 * one deletes the record), so only counts of two or more need an entry.
 */
import { BODY_GROUP_IDS, bodyGroupOf, type StoredBody } from "../queue/queue-storage.js";
import { decodeBody, encodeHeaders, encodedBodyBytes, writeBody } from "./queue-keys.js";

const HEADER_BYTES = 2;
const DIRECTORY_ENTRY_BYTES = 6;

/** The bodies of one group added since the last persist, not yet on disk. */
export class BodyGroupBuilder {
  private readonly bodies = new Map<number, StoredBody>();

  get live(): number {
    return this.bodies.size;
  }

  add(bodyId: number, body: StoredBody): void {
    this.bodies.set(bodyId % BODY_GROUP_IDS, body);
  }

  /** Removes a body; false if it is not here. */
  remove(bodyId: number): boolean {
    return this.bodies.delete(bodyId % BODY_GROUP_IDS);
  }

  get(bodyId: number): StoredBody | undefined {
    return this.bodies.get(bodyId % BODY_GROUP_IDS);
  }

  /** The group's record, written in one pass (no intermediate buffer per body). */
  encoded(): Uint8Array {
    const parts = [...this.bodies].map(([index, body]) => {
      const headers = encodeHeaders(body.headers);
      return { index, body, headers, length: encodedBodyBytes(headers, body) };
    });
    const directoryBytes = HEADER_BYTES + DIRECTORY_ENTRY_BYTES * parts.length;
    const record = new Uint8Array(parts.reduce((sum, part) => sum + part.length, directoryBytes));
    const view = new DataView(record.buffer);
    view.setUint16(0, parts.length, true);
    let offset = directoryBytes;
    parts.forEach(({ index, body, headers, length }, at) => {
      view.setUint16(HEADER_BYTES + DIRECTORY_ENTRY_BYTES * at, index, true);
      view.setUint32(HEADER_BYTES + DIRECTORY_ENTRY_BYTES * at + 2, length, true);
      writeBody(view, record, offset, headers, body);
      offset += length;
    });
    return record;
  }
}

/** A stored group record, read: finds one body without decoding the others. */
export class BodyGroupRecord {
  /** Index in group -> [start, end) of its encoded body in `bytes`. */
  private readonly spans = new Map<number, readonly [number, number]>();

  constructor(
    readonly group: number,
    private readonly bytes: Uint8Array,
  ) {
    const malformed = (why: string) => new Error(`stored body group ${group} is malformed: ${why}`);
    if (bytes.byteLength < HEADER_BYTES) throw malformed("shorter than its header");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = view.getUint16(0, true);
    let offset = HEADER_BYTES + DIRECTORY_ENTRY_BYTES * count;
    for (let at = 0; at < count; at++) {
      const index = view.getUint16(HEADER_BYTES + DIRECTORY_ENTRY_BYTES * at, true);
      const length = view.getUint32(HEADER_BYTES + DIRECTORY_ENTRY_BYTES * at + 2, true);
      if (index >= BODY_GROUP_IDS || offset + length > bytes.byteLength) throw malformed(`entry ${at} lies outside the record`);
      this.spans.set(index, [offset, offset + length]);
      offset += length;
    }
    if (offset !== bytes.byteLength) throw malformed(`${bytes.byteLength - offset} bytes after the last body`);
  }

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  /** The body of `bodyId`, or undefined if the group never held it. */
  get(bodyId: number): StoredBody | undefined {
    const span = this.spans.get(bodyId % BODY_GROUP_IDS);
    return span === undefined ? undefined : decodeBody(this.bytes.subarray(span[0], span[1]));
  }
}

/** Most bytes of group records kept after a read: consecutive leases mostly read the same few groups. */
export const GROUP_CACHE_BYTES = 4 * 1024 * 1024;

/** The group records read last, least recently used first out. */
export class BodyGroupCache {
  private readonly records = new Map<number, BodyGroupRecord>();
  private bytes = 0;

  constructor(private readonly maxBytes = GROUP_CACHE_BYTES) {}

  get(group: number): BodyGroupRecord | undefined {
    const record = this.records.get(group);
    if (record !== undefined) {
      this.records.delete(group);
      this.records.set(group, record);
    }
    return record;
  }

  add(record: BodyGroupRecord): void {
    if (record.byteLength > this.maxBytes || this.records.has(record.group)) return;
    this.records.set(record.group, record);
    this.bytes += record.byteLength;
    for (const [group, oldest] of this.records) {
      if (this.bytes <= this.maxBytes) break;
      this.records.delete(group);
      this.bytes -= oldest.byteLength;
    }
  }

  /** Forgets a deleted group, so its memory goes at once. */
  delete(group: number): void {
    const record = this.records.get(group);
    if (record === undefined) return;
    this.records.delete(group);
    this.bytes -= record.byteLength;
  }

  clear(): void {
    this.records.clear();
    this.bytes = 0;
  }
}

/**
 * Live bodies per stored group, for groups with two or more (a stored group without an entry has one).
 * A million-message backlog enqueued a hundred at a time needs ten thousand entries.
 */
export class GroupLiveCounts {
  private readonly counts = new Map<number, number>();

  /** A group with `live` bodies was stored. */
  stored(group: number, live: number): void {
    if (live >= 2) this.counts.set(group, live);
  }

  /** A stored group lost one body; true if that was its last (the record must go). */
  removeOne(group: number): boolean {
    const count = this.counts.get(group);
    if (count === undefined) return true;
    if (count === 2) this.counts.delete(group);
    else this.counts.set(group, count - 1);
    return false;
  }

  clear(): void {
    this.counts.clear();
  }

  /**
   * Counts the groups of the live bodies a load found (`liveBodyIds`, any order), and returns the groups
   * of `droppedBodyIds` (purged or deleted messages not swept yet) that hold no live body: their records
   * can go.
   */
  restore(liveBodyIds: Float64Array, droppedBodyIds: Float64Array): number[] {
    const live = liveBodyIds.map(bodyGroupOf).sort();
    forEachRun(live, (group, count) => this.stored(group, count));
    const emptied: number[] = [];
    let at = 0;
    forEachRun(droppedBodyIds.map(bodyGroupOf).sort(), (group) => {
      while (at < live.length && live[at]! < group) at++;
      if (live[at] !== group) emptied.push(group);
    });
    return emptied;
  }
}

/** Calls `each` with every value of sorted `values` and how many times it occurs there. */
function forEachRun(values: Float64Array, each: (value: number, count: number) => void): void {
  for (let start = 0; start < values.length; ) {
    const value = values[start]!;
    let end = start + 1;
    while (end < values.length && values[end] === value) end++;
    each(value, end - start);
    start = end;
  }
}
