/**
 * Snapshot transfer of the queue state: a reader streams every key and value of one generation, as it was
 * when the reader was opened, and a writer stages such a stream into a fresh generation.
 *
 * The stream is a sequence of records [u32 key bytes][key][u32 value bytes][value] (little endian),
 * closed by an end record whose key length is END_MARKER; chunks are slices of that stream of at most
 * MAX_SNAPSHOT_CHUNK_BYTES, so one record (a 4 MB body) may span several chunks. The end record lets the
 * writer tell a complete stream from a cut one.
 */
import type { AbstractIterator, AbstractSnapshot } from "abstract-level";
import type { Membership } from "../raft/types.js";
import type { StateSnapshotReader, StateSnapshotWriter } from "../node/state-machine.js";
import type { BoundedIteratorOptions, GenerationSublevel } from "./queue-keys.js";

/** Largest chunk a reader returns. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Bytes of entries a reader's iterator holds at once (plus at most one entry beyond). */
const READ_AHEAD_BYTES = 1024 * 1024;
/** Entries per iterator read. */
const READ_BATCH_ENTRIES = 1000;
/** Key length of the end record. */
const END_MARKER = 0xffffffff;
/** A key of a record longer than this is corruption, not data (real keys are under 200 bytes). */
const MAX_KEY_BYTES = 64 * 1024;
/** Largest value of a record (bodies are at most 4 MB plus 16 KiB of headers). */
const MAX_VALUE_BYTES = 8 * 1024 * 1024;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

type GenerationIterator = AbstractIterator<GenerationSublevel, string, Uint8Array>;

/** Streams one generation as chunks; opened synchronously so it sees the state as persisted right now. */
export class QueueSnapshotReader implements StateSnapshotReader {
  private readonly snapshot: AbstractSnapshot | undefined;
  private readonly iterator: GenerationIterator;
  /** Encoded bytes not yet returned, oldest first. */
  private readonly pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private exhausted = false;
  private closed = false;

  constructor(
    generation: GenerationSublevel,
    readonly appliedIndex: number,
    readonly membership: Membership | null,
  ) {
    // classic-level takes an implicit snapshot when the iterator is created; an explicit one says so.
    this.snapshot = generation.supports.explicitSnapshots ? generation.snapshot() : undefined;
    const options: BoundedIteratorOptions = { highWaterMarkBytes: READ_AHEAD_BYTES };
    if (this.snapshot !== undefined) options.snapshot = this.snapshot;
    this.iterator = generation.iterator(options);
  }

  async next(): Promise<Uint8Array | null> {
    if (this.closed) throw new Error("snapshot reader is closed");
    while (!this.exhausted && this.pendingBytes < MAX_SNAPSHOT_CHUNK_BYTES) {
      const entries = await this.iterator.nextv(READ_BATCH_ENTRIES);
      if (entries.length === 0) {
        this.exhausted = true;
        this.push(endRecord());
      }
      for (const [key, value] of entries) this.push(encodeRecord(key, value));
    }
    if (this.pendingBytes === 0) return null;
    return this.take(Math.min(MAX_SNAPSHOT_CHUNK_BYTES, this.pendingBytes));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.iterator.close();
    await this.snapshot?.close();
  }

  private push(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
  }

  private take(bytes: number): Uint8Array {
    const chunk = new Uint8Array(bytes);
    let filled = 0;
    while (filled < bytes) {
      const head = this.pending[0] as Uint8Array;
      const used = Math.min(head.byteLength, bytes - filled);
      chunk.set(head.subarray(0, used), filled);
      filled += used;
      if (used === head.byteLength) this.pending.shift();
      else this.pending[0] = head.subarray(used);
    }
    this.pendingBytes -= bytes;
    return chunk;
  }
}

function encodeRecord(key: string, value: Uint8Array): Uint8Array {
  const keyBytes = utf8.encode(key);
  const record = new Uint8Array(8 + keyBytes.byteLength + value.byteLength);
  const view = new DataView(record.buffer);
  view.setUint32(0, keyBytes.byteLength, true);
  record.set(keyBytes, 4);
  view.setUint32(4 + keyBytes.byteLength, value.byteLength, true);
  record.set(value, 8 + keyBytes.byteLength);
  return record;
}

function endRecord(): Uint8Array {
  const record = new Uint8Array(4);
  new DataView(record.buffer).setUint32(0, END_MARKER, true);
  return record;
}

/** A staging area: where records go, and how to give up on it. */
export interface StagingTarget {
  /** Waits until the staged generation is reserved and returns its sublevel. */
  ready(): Promise<GenerationSublevel>;
  /** Deletes everything staged. */
  discard(): Promise<void>;
}

/** Decodes a chunk stream and writes its records into a staged generation, one batch per chunk. */
export class QueueSnapshotWriter implements StateSnapshotWriter {
  /** Bytes of a record cut by a chunk boundary. */
  private carry = new Uint8Array(0);
  private complete = false;
  private aborted = false;

  constructor(private readonly target: StagingTarget) {}

  /** Whether the end record arrived, i.e. the whole state is staged. */
  get isComplete(): boolean {
    return this.complete && !this.aborted;
  }

  /** Whether abort was called (directly or by a newer staging). */
  get isAborted(): boolean {
    return this.aborted;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.aborted) throw new Error("snapshot staging was aborted (a newer transfer started, or abort was called)");
    if (this.complete) throw new Error("snapshot stream continues after its end record: the sender is broken");
    if (chunk.byteLength > MAX_SNAPSHOT_CHUNK_BYTES) {
      throw new Error(`snapshot chunk of ${chunk.byteLength} bytes exceeds ${MAX_SNAPSHOT_CHUNK_BYTES}: the sender is broken`);
    }
    const level = await this.target.ready();
    const bytes = concat(this.carry, chunk);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const batch: { type: "put"; key: string; value: Uint8Array }[] = [];
    let offset = 0;
    for (;;) {
      if (bytes.byteLength - offset < 4) break;
      const keyBytes = view.getUint32(offset, true);
      if (keyBytes === END_MARKER) {
        if (offset + 4 !== bytes.byteLength) throw new Error("snapshot stream has bytes after its end record: the sender is broken");
        this.complete = true;
        offset += 4;
        break;
      }
      if (keyBytes > MAX_KEY_BYTES) throw new Error(`snapshot record key of ${keyBytes} bytes: the stream is corrupt`);
      if (bytes.byteLength - offset < 8 + keyBytes) break;
      const valueBytes = view.getUint32(offset + 4 + keyBytes, true);
      if (valueBytes > MAX_VALUE_BYTES) throw new Error(`snapshot record value of ${valueBytes} bytes: the stream is corrupt`);
      const end = offset + 8 + keyBytes + valueBytes;
      if (bytes.byteLength < end) break;
      const key = fromUtf8.decode(bytes.subarray(offset + 4, offset + 4 + keyBytes));
      // A view, not a copy: LevelDB copies it into the batch, and a copy per record (a body group is up to
      // a MiB) only churned the allocator, leaving a joining node 50 MB larger.
      batch.push({ type: "put", key, value: bytes.subarray(offset + 8 + keyBytes, end) });
      offset = end;
    }
    this.carry = bytes.slice(offset);
    if (this.aborted) return;
    if (batch.length > 0) await level.batch(batch);
  }

  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    this.carry = new Uint8Array(0);
    await this.target.discard();
  }

  /** Marks this staging superseded without waiting for its deletion (the store deletes it in the background). */
  supersede(): void {
    this.aborted = true;
    this.carry = new Uint8Array(0);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a);
  joined.set(b, a.byteLength);
  return joined;
}
