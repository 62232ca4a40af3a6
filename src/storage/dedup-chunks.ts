/**
 * How a queue's idempotency keys are stored: as the log its DedupIndex ring is. Every batch appends one
 * chunk record per queue incarnation holding the keys remembered in it (digest, first id, expiry: 32
 * bytes each), and one front record says how far the ring's front has moved: every key remembered up to
 * and including the (expiry, id) it names is forgotten. Keys are remembered in (expiry, id) order, so a
 * chunk whose last key is at or behind the front is deleted in the same batch that moves the front.
 *
 * So a million keys cost a thousand-odd records, not a million: one LevelDB operation per batch rather
 * than per message, and a restart reads big values instead of a million small records. A key remembered
 * again while still held (it never is by enqueue, which prunes first) is in two chunks; the later wins.
 *
 *   d/<incarnation>/<seq>     chunk: seq (14 hex digits) numbers one incarnation's chunks in order
 *   e/<incarnation>           front: (expiry, id) of the last key forgotten, 16 bytes
 */
import { DIGEST_WORDS } from "../queue/key-digest.js";

export const DEDUP_CHUNK_PREFIX = "d/";
export const DEDUP_FRONT_PREFIX = "e/";

const INCARNATION_DIGITS = 8;
const SEQ_DIGITS = 14;
const ENTRY_BYTES = DIGEST_WORDS * 4 + 16;
const FRONT_BYTES = 16;
const CHUNK_KEY_LENGTH = DEDUP_CHUNK_PREFIX.length + INCARNATION_DIGITS + 1 + SEQ_DIGITS;
const FRONT_KEY_LENGTH = DEDUP_FRONT_PREFIX.length + INCARNATION_DIGITS;

/** A position in a ring: keys are ordered by expiry, then by id. */
export interface RingPosition {
  readonly expiresAtMs: number;
  readonly id: number;
}

/** Whether `a` is at or before `b`. */
export function atOrBefore(a: RingPosition, b: RingPosition): boolean {
  return a.expiresAtMs < b.expiresAtMs || (a.expiresAtMs === b.expiresAtMs && a.id <= b.id);
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

function parseHex(text: string, what: string, key: string): number {
  const value = /^[0-9a-f]+$/.test(text) ? parseInt(text, 16) : Number.NaN;
  if (!(value >= 0 && Number.isSafeInteger(value))) throw new Error(`queue ${what} key ${JSON.stringify(key)} is malformed`);
  return value;
}

export function dedupChunkKey(incarnation: number, seq: number): string {
  return `${DEDUP_CHUNK_PREFIX}${hex(incarnation, INCARNATION_DIGITS)}/${hex(seq, SEQ_DIGITS)}`;
}

export function parseDedupChunkKey(key: string): { incarnation: number; seq: number } {
  const incarnationEnd = DEDUP_CHUNK_PREFIX.length + INCARNATION_DIGITS;
  if (key.length !== CHUNK_KEY_LENGTH || !key.startsWith(DEDUP_CHUNK_PREFIX) || key[incarnationEnd] !== "/") {
    throw new Error(`queue idempotency key chunk ${JSON.stringify(key)} is malformed: expected ${DEDUP_CHUNK_PREFIX}<8 hex digits>/<14 hex digits>`);
  }
  return {
    incarnation: parseHex(key.slice(DEDUP_CHUNK_PREFIX.length, incarnationEnd), "idempotency key chunk", key),
    seq: parseHex(key.slice(incarnationEnd + 1), "idempotency key chunk", key),
  };
}

export function dedupFrontKey(incarnation: number): string {
  return `${DEDUP_FRONT_PREFIX}${hex(incarnation, INCARNATION_DIGITS)}`;
}

export function parseDedupFrontKey(key: string): number {
  if (key.length !== FRONT_KEY_LENGTH || !key.startsWith(DEDUP_FRONT_PREFIX)) {
    throw new Error(`queue idempotency key front ${JSON.stringify(key)} is malformed: expected ${DEDUP_FRONT_PREFIX}<8 hex digits>`);
  }
  return parseHex(key.slice(DEDUP_FRONT_PREFIX.length), "idempotency key front", key);
}

export function encodeDedupFront(front: RingPosition): Uint8Array {
  const bytes = new Uint8Array(FRONT_BYTES);
  const view = new DataView(bytes.buffer);
  view.setFloat64(0, front.expiresAtMs, true);
  view.setFloat64(8, front.id, true);
  return bytes;
}

export function decodeDedupFront(bytes: Uint8Array): RingPosition {
  if (bytes.byteLength !== FRONT_BYTES) throw new Error(`queue idempotency key front of ${bytes.byteLength} bytes: expected ${FRONT_BYTES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { expiresAtMs: view.getFloat64(0, true), id: view.getFloat64(8, true) };
}

/** The keys one batch remembers for one incarnation, encoded as they come. */
export class DedupChunkBuilder {
  private bytes = new Uint8Array(ENTRY_BYTES * 16);
  private view = new DataView(this.bytes.buffer);
  private count = 0;
  /** The position of the last key added. */
  last: RingPosition = { expiresAtMs: 0, id: 0 };

  add(digest: Uint32Array, id: number, expiresAtMs: number): void {
    if ((this.count + 1) * ENTRY_BYTES > this.bytes.byteLength) {
      const bigger = new Uint8Array(this.bytes.byteLength * 2);
      bigger.set(this.bytes);
      this.bytes = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.count * ENTRY_BYTES;
    for (let word = 0; word < DIGEST_WORDS; word++) this.view.setUint32(at + word * 4, digest[word] as number, true);
    this.view.setFloat64(at + DIGEST_WORDS * 4, id, true);
    this.view.setFloat64(at + DIGEST_WORDS * 4 + 8, expiresAtMs, true);
    this.count += 1;
    this.last = { expiresAtMs, id };
  }

  encoded(): Uint8Array {
    return this.bytes.subarray(0, this.count * ENTRY_BYTES);
  }
}

/** Calls `each` with every key of a stored chunk, in order; `digest` is reused between calls. */
export function readDedupChunk(bytes: Uint8Array, each: (digest: Uint32Array, id: number, expiresAtMs: number) => void): void {
  if (bytes.byteLength === 0 || bytes.byteLength % ENTRY_BYTES !== 0) {
    throw new Error(`queue idempotency key chunk of ${bytes.byteLength} bytes: expected a positive multiple of ${ENTRY_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const digest = new Uint32Array(DIGEST_WORDS);
  for (let at = 0; at < bytes.byteLength; at += ENTRY_BYTES) {
    for (let word = 0; word < DIGEST_WORDS; word++) digest[word] = view.getUint32(at + word * 4, true);
    each(digest, view.getFloat64(at + DIGEST_WORDS * 4, true), view.getFloat64(at + DIGEST_WORDS * 4 + 8, true));
  }
}

/** One incarnation's stored chunks, oldest first, with the position of each one's last key. */
export class DedupChunkLog {
  private readonly seqs: number[] = [];
  private readonly lasts: RingPosition[] = [];
  private head = 0;
  /** The seq the next chunk gets. */
  nextSeq = 1;

  /** A chunk stored (written now, or found by a restart, in seq order). */
  stored(seq: number, last: RingPosition): void {
    this.seqs.push(seq);
    this.lasts.push(last);
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
  }

  /** Takes out the chunks all of whose keys are at or behind `front`, and returns their seqs. */
  takeCoveredBy(front: RingPosition): number[] {
    const covered: number[] = [];
    while (this.head < this.seqs.length && atOrBefore(this.lasts[this.head]!, front)) covered.push(this.seqs[this.head++]!);
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs.splice(0, this.head);
      this.lasts.splice(0, this.head);
      this.head = 0;
    }
    return covered;
  }

  /** The seqs of every chunk still stored. */
  liveSeqs(): number[] {
    return this.seqs.slice(this.head);
  }
}
