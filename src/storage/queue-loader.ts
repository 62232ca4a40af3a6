/**
 * Rebuilds the queue state machine's memory from one stored generation: the machine and queue records,
 * the idempotency keys, then every message's bookkeeping in big batches. Bodies are never read.
 */
import { DedupRecordBatch } from "../queue/dedup-index.js";
import { MAX_DEDUP_KEYS_PER_QUEUE } from "../queue/limits.js";
import type { QueueStorage } from "../queue/queue-storage.js";
import { QueueStateMachine } from "../queue/state-machine.js";
import type { BulkDrop } from "./queue-sweeper.js";
import {
  DEDUP_CHUNK_PREFIX,
  DEDUP_FRONT_PREFIX,
  atOrBefore,
  decodeDedupFront,
  parseDedupChunkKey,
  parseDedupFrontKey,
  readDedupChunk,
  type RingPosition,
} from "./dedup-chunks.js";
import {
  APPLIED_KEY,
  MACHINE_KEY,
  MESSAGE_PREFIX,
  QUEUE_PREFIX,
  decodeJson,
  decodeMeta,
  parseMessageKey,
  prefixRange,
  type AppliedRecord,
  type BoundedIteratorOptions,
  type GenerationSublevel,
  type MachineRecord,
  type QueueRecord,
} from "./queue-keys.js";

/** Records per read while scanning message bookkeeping or idempotency keys (about 60-70 bytes each with its key). */
const LOAD_BATCH_RECORDS = 10_000;
/** Bytes one read may hold: enough for a whole batch of bookkeeping records. */
const LOAD_AHEAD_BYTES = 1024 * 1024;

/** What an empty generation holds: no queues, log time 0, nothing applied. */
const EMPTY_MACHINE: MachineRecord = { lastNowMs: 0, createdTotal: 0, nextBodyId: 1 };
const NOTHING_APPLIED: AppliedRecord = { appliedIndex: 0, membership: null };

/** What a load tells the write buffer besides the machine it builds. */
export interface LoadSink {
  /** Records of deleted queues or purged messages, to delete in the background. */
  sweep(drop: BulkDrop): void;
  /** A stored chunk of a queue's idempotency keys, in seq order, with the position of its last key. */
  dedupChunkFound(incarnation: number, seq: number, last: RingPosition): void;
  /**
   * The body ids of the live messages (the restored machine's), and of the dropped ones not swept yet
   * (both any order). Called before the dropped messages are handed to sweep.
   */
  bodiesFound(live: Float64Array, dropped: Float64Array): void;
}

/**
 * Stored keys one queue may hold: its index's keys plus as many again, for keys stored twice (a key
 * remembered again while held). More means the records are corrupt.
 */
const MAX_STORED_KEYS_PER_QUEUE = 2 * MAX_DEDUP_KEYS_PER_QUEUE;
/** The front of a queue that never forgot a key. */
const NOTHING_FORGOTTEN: RingPosition = { expiresAtMs: -Infinity, id: 0 };

/** A rebuilt machine and where its state stands. */
export interface LoadedGeneration {
  readonly machine: QueueStateMachine;
  readonly applied: AppliedRecord;
}

/**
 * Reads generation `generation` into a new machine whose changes go to `storage`. Records of deleted
 * queues and purged messages that were not swept before the node stopped go to `sink.sweep`.
 */
export async function loadGeneration(generation: GenerationSublevel, storage: QueueStorage, sink: LoadSink): Promise<LoadedGeneration> {
  const appliedBytes = await generation.get(APPLIED_KEY);
  const machineBytes = await generation.get(MACHINE_KEY);
  const applied = appliedBytes === undefined ? NOTHING_APPLIED : decodeJson<AppliedRecord>(appliedBytes);
  const machineRecord = machineBytes === undefined ? EMPTY_MACHINE : decodeJson<MachineRecord>(machineBytes);

  const queues: QueueRecord[] = [];
  for await (const bytes of generation.values(prefixRange(QUEUE_PREFIX))) queues.push(decodeJson<QueueRecord>(bytes));

  // Idempotency keys go straight into columns per queue incarnation, which the queues' indexes adopt.
  // A deleted queue's chunks and front are swept.
  const live = new Set(queues.map((queue) => queue.incarnation));
  const fronts = new Map<number, RingPosition>();
  const deadKeys: string[] = [];
  await scan(generation, DEDUP_FRONT_PREFIX, (key, bytes) => {
    const incarnation = parseDedupFrontKey(key);
    if (live.has(incarnation)) fronts.set(incarnation, decodeDedupFront(bytes));
    else deadKeys.push(key);
  });
  const dedup = new Map<number, DedupRecordBatch>();
  await scan(generation, DEDUP_CHUNK_PREFIX, (key, bytes) => {
    const { incarnation, seq } = parseDedupChunkKey(key);
    if (!live.has(incarnation)) {
      deadKeys.push(key);
      return;
    }
    let records = dedup.get(incarnation);
    if (records === undefined) dedup.set(incarnation, (records = new DedupRecordBatch(MAX_STORED_KEYS_PER_QUEUE)));
    const batch = records;
    const front = fronts.get(incarnation) ?? NOTHING_FORGOTTEN;
    let last: RingPosition = NOTHING_FORGOTTEN;
    readDedupChunk(bytes, (digest, id, expiresAtMs) => {
      last = { expiresAtMs, id };
      if (!atOrBefore(last, front)) batch.add(digest, 0, id, expiresAtMs);
    });
    sink.dedupChunkFound(incarnation, seq, last);
  });
  if (deadKeys.length > 0) sink.sweep({ kind: "keys", keys: deadKeys });

  const restore = QueueStateMachine.beginRestore(storage, { machine: machineRecord, queues, dedup });
  const droppedBodies = new NumberColumn();
  const droppedIds = new Map<number, NumberColumn>();
  await scan(generation, MESSAGE_PREFIX, (key, bytes) => {
    const { incarnation, id } = parseMessageKey(key);
    const meta = decodeMeta(id, bytes);
    if (restore.add(incarnation, meta)) return;
    droppedBodies.push(meta.bodyId);
    let ids = droppedIds.get(incarnation);
    if (ids === undefined) droppedIds.set(incarnation, (ids = new NumberColumn()));
    ids.push(id);
  });
  const machine = restore.finish();
  sink.bodiesFound(machine.liveBodyIds(), droppedBodies.values());
  for (const [incarnation, ids] of droppedIds) sink.sweep({ kind: "messages", incarnation, ids: ids.values() });
  return { machine, applied };
}

/** A growing list of numbers in one typed array (a load may find millions). */
class NumberColumn {
  private column = new Float64Array(64);
  private length = 0;

  push(value: number): void {
    if (this.length === this.column.length) {
      const bigger = new Float64Array(this.column.length * 2);
      bigger.set(this.column);
      this.column = bigger;
    }
    this.column[this.length++] = value;
  }

  values(): Float64Array {
    return this.column.subarray(0, this.length);
  }
}

/** Calls `each` with every record whose key starts with `prefix`, in key order, read in big batches. */
async function scan(generation: GenerationSublevel, prefix: string, each: (key: string, bytes: Uint8Array) => void): Promise<void> {
  const options: BoundedIteratorOptions = { ...prefixRange(prefix), highWaterMarkBytes: LOAD_AHEAD_BYTES };
  const iterator = generation.iterator(options);
  try {
    for (let batch = await iterator.nextv(LOAD_BATCH_RECORDS); batch.length > 0; batch = await iterator.nextv(LOAD_BATCH_RECORDS)) {
      for (const [key, bytes] of batch) each(key, bytes);
    }
  } finally {
    await iterator.close();
  }
}
