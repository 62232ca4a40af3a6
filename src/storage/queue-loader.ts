/**
 * Rebuilds the queue state machine's memory from one stored generation: the machine and queue records,
 * the idempotency keys, then every message's bookkeeping in big batches. Bodies are never read.
 */
import type { QueueStorage } from "../queue/queue-storage.js";
import { QueueStateMachine } from "../queue/state-machine.js";
import {
  APPLIED_KEY,
  DEDUP_PREFIX,
  MACHINE_KEY,
  MESSAGE_PREFIX,
  QUEUE_PREFIX,
  decodeDedup,
  decodeJson,
  decodeMeta,
  parseDedupKey,
  parseMessageKey,
  prefixRange,
  type AppliedRecord,
  type BoundedIteratorOptions,
  type DedupRecord,
  type GenerationSublevel,
  type MachineRecord,
  type QueueRecord,
} from "./queue-keys.js";

/** Records per read while scanning message bookkeeping (about 70 bytes each with its key). */
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

/** Reads generation `generation` into a new machine whose changes go to `storage`. */
export async function loadGeneration(generation: GenerationSublevel, storage: QueueStorage): Promise<LoadedGeneration> {
  const appliedBytes = await generation.get(APPLIED_KEY);
  const machineBytes = await generation.get(MACHINE_KEY);
  const applied = appliedBytes === undefined ? NOTHING_APPLIED : decodeJson<AppliedRecord>(appliedBytes);
  const machineRecord = machineBytes === undefined ? EMPTY_MACHINE : decodeJson<MachineRecord>(machineBytes);

  const queues: QueueRecord[] = [];
  for await (const bytes of generation.values(prefixRange(QUEUE_PREFIX))) queues.push(decodeJson<QueueRecord>(bytes));

  const dedup = new Map<number, DedupRecord[]>();
  for await (const [key, bytes] of generation.iterator(prefixRange(DEDUP_PREFIX))) {
    const parsed = parseDedupKey(key);
    const records = dedup.get(parsed.incarnation) ?? [];
    records.push(decodeDedup(parsed.key, bytes));
    dedup.set(parsed.incarnation, records);
  }

  const restore = QueueStateMachine.beginRestore(storage, { machine: machineRecord, queues, dedup });
  const options: BoundedIteratorOptions = { ...prefixRange(MESSAGE_PREFIX), highWaterMarkBytes: LOAD_AHEAD_BYTES };
  const iterator = generation.iterator(options);
  try {
    for (let batch = await iterator.nextv(LOAD_BATCH_RECORDS); batch.length > 0; batch = await iterator.nextv(LOAD_BATCH_RECORDS)) {
      for (const [key, bytes] of batch) {
        const { incarnation, id } = parseMessageKey(key);
        restore.add(incarnation, decodeMeta(id, bytes));
      }
    }
  } finally {
    await iterator.close();
  }
  return { machine: restore.finish(), applied };
}
