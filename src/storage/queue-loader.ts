/**
 * Rebuilds the queue state machine's memory from one stored generation: the machine and queue records,
 * the idempotency keys, then every message's bookkeeping in big batches. Bodies are never read.
 */
import { DedupRecordBatch } from "../queue/dedup-index.js";
import { DIGEST_WORDS } from "../queue/key-digest.js";
import { MAX_DEDUP_KEYS_PER_QUEUE } from "../queue/limits.js";
import type { QueueStorage } from "../queue/queue-storage.js";
import { QueueStateMachine } from "../queue/state-machine.js";
import type { BulkDrop } from "./queue-sweeper.js";
import {
  APPLIED_KEY,
  DEDUP_PREFIX,
  MACHINE_KEY,
  MESSAGE_PREFIX,
  QUEUE_PREFIX,
  decodeDedupInto,
  decodeJson,
  decodeMeta,
  parseDedupKey,
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

/** A rebuilt machine and where its state stands. */
export interface LoadedGeneration {
  readonly machine: QueueStateMachine;
  readonly applied: AppliedRecord;
}

/**
 * Reads generation `generation` into a new machine whose changes go to `storage`. Records of deleted
 * queues and purged messages that were not swept before the node stopped go to `sweep`.
 */
export async function loadGeneration(
  generation: GenerationSublevel,
  storage: QueueStorage,
  sweep: (drop: BulkDrop) => void,
): Promise<LoadedGeneration> {
  const appliedBytes = await generation.get(APPLIED_KEY);
  const machineBytes = await generation.get(MACHINE_KEY);
  const applied = appliedBytes === undefined ? NOTHING_APPLIED : decodeJson<AppliedRecord>(appliedBytes);
  const machineRecord = machineBytes === undefined ? EMPTY_MACHINE : decodeJson<MachineRecord>(machineBytes);

  const queues: QueueRecord[] = [];
  for await (const bytes of generation.values(prefixRange(QUEUE_PREFIX))) queues.push(decodeJson<QueueRecord>(bytes));

  // Idempotency keys go straight into columns per queue incarnation, which the queues' indexes adopt.
  const dedup = new Map<number, DedupRecordBatch>();
  const digest = new Uint32Array(DIGEST_WORDS);
  await scan(generation, DEDUP_PREFIX, (key, bytes) => {
    const incarnation = parseDedupKey(key, digest);
    let records = dedup.get(incarnation);
    if (records === undefined) dedup.set(incarnation, (records = new DedupRecordBatch(MAX_DEDUP_KEYS_PER_QUEUE)));
    decodeDedupInto(records, digest, bytes);
  });

  const live = new Set(queues.map((queue) => queue.incarnation));
  for (const [incarnation, records] of dedup) {
    if (live.has(incarnation)) continue;
    dedup.delete(incarnation);
    const count = records.length; // release() empties the batch
    sweep({ kind: "dedup", incarnation, digests: records.release().digests.slice(0, count * DIGEST_WORDS) });
  }

  const restore = QueueStateMachine.beginRestore(storage, { machine: machineRecord, queues, dedup });
  const dropped = new DroppedMessages();
  await scan(generation, MESSAGE_PREFIX, (key, bytes) => {
    const { incarnation, id } = parseMessageKey(key);
    const meta = decodeMeta(id, bytes);
    if (!restore.add(incarnation, meta)) dropped.add(incarnation, id, meta.bodyId);
  });
  for (const drop of dropped.drops()) sweep(drop);
  return { machine: restore.finish(), applied };
}

/** The dropped messages a load found, by queue incarnation, in columns. */
class DroppedMessages {
  private readonly byIncarnation = new Map<number, { ids: Float64Array; bodyIds: Float64Array; length: number }>();

  add(incarnation: number, id: number, bodyId: number): void {
    let columns = this.byIncarnation.get(incarnation);
    if (columns === undefined) this.byIncarnation.set(incarnation, (columns = { ids: new Float64Array(64), bodyIds: new Float64Array(64), length: 0 }));
    if (columns.length === columns.ids.length) {
      columns.ids = grown(columns.ids);
      columns.bodyIds = grown(columns.bodyIds);
    }
    columns.ids[columns.length] = id;
    columns.bodyIds[columns.length] = bodyId;
    columns.length += 1;
  }

  drops(): BulkDrop[] {
    return [...this.byIncarnation].map(([incarnation, { ids, bodyIds, length }]) => ({
      kind: "messages",
      incarnation,
      ids: ids.slice(0, length),
      bodyIds: bodyIds.slice(0, length),
    }));
  }
}

function grown(column: Float64Array): Float64Array {
  const bigger = new Float64Array(column.length * 2);
  bigger.set(column);
  return bigger;
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
