/**
 * The queue state machine of a node, kept in LevelDB (the root's "queue" sublevel, beside the Raft log):
 * the ReplicatedStateMachine the node driver applies entries to. Memory holds the delivery bookkeeping
 * (QueueStateMachine); bodies, headers and every record live on disk, written once per persist together
 * with the applied index and membership, so the persisted state is a complete snapshot at that index.
 */
import type {
  AppliedState,
  CompanionOperation,
  ReplicatedStateMachine,
  StateSnapshotReader,
  StateSnapshotWriter,
} from "../node/state-machine.js";
import type { Entry, Membership, SnapshotMeta } from "../raft/types.js";
import type { Delivery, LeasedMessage, QueueApplyResult } from "../queue/results.js";
import type { QueueStateMachine } from "../queue/state-machine.js";
import { hasRootEncodings, type RootBatch, type RootLevel } from "./level-raft-storage.js";
import { QueueGenerations } from "./queue-generations.js";
import { APPLIED_KEY, MACHINE_KEY, encodeJson, generationPut, queueSublevel, type AppliedRecord } from "./queue-keys.js";
import { loadGeneration } from "./queue-loader.js";
import { QueueSnapshotReader, QueueSnapshotWriter } from "./queue-snapshot.js";
import { QueueWriteBuffer } from "./queue-write-buffer.js";

/** The durable queue state machine of one node. */
/** A snapshot being received: its writer, and its generation number once reserved. */
interface Staging {
  readonly writer: QueueSnapshotWriter;
  readonly reserved: Promise<number>;
  generation?: number;
}

export class QueueStore implements ReplicatedStateMachine<QueueApplyResult> {
  private staging: Staging | undefined;
  /** The applied record staged into a batch not yet written. */
  private staged: AppliedRecord | undefined;

  private constructor(
    private readonly generations: QueueGenerations,
    private readonly buffer: QueueWriteBuffer,
    private current: QueueStateMachine,
    private persisted: AppliedRecord,
  ) {}

  /**
   * Opens the queue state in `root` (creating it if new), deletes what a crash left staged or retired (in
   * the background), and rebuilds memory from the current generation, reading bookkeeping only. Records
   * of purged messages and deleted queues are deleted in the background; `onSweepError` hears if that
   * fails (what is left waits for the next open).
   */
  static async open(root: RootLevel, onSweepError: (error: unknown) => void = () => undefined): Promise<QueueStore> {
    if (!hasRootEncodings(root)) throw new Error("the queue state needs a root database made by newRootLevel (string keys, byte values)");
    const generations = await QueueGenerations.open(queueSublevel(root));
    const buffer = new QueueWriteBuffer(generations.level(), onSweepError);
    try {
      const { machine, applied } = await loadGeneration(buffer.generation, buffer, buffer.loadSink());
      return new QueueStore(generations, buffer, machine, applied);
    } catch (error) {
      await generations.close();
      throw error;
    }
  }

  /**
   * The queue state in memory, for reads (stats, long-poll checks). It is replaced when a snapshot is
   * installed (reload), so read this property each time rather than keeping the object.
   */
  get machine(): QueueStateMachine {
    return this.current;
  }

  /** Where the persisted state stands: read once at start, before the log after it is replayed. */
  appliedState(): AppliedState {
    return { appliedIndex: this.persisted.appliedIndex, membership: this.persisted.membership };
  }

  apply(entry: Entry): QueueApplyResult {
    if (entry.index <= this.persisted.appliedIndex) {
      throw new Error(`entry ${entry.index} applied again: the state already holds entries through ${this.persisted.appliedIndex}`);
    }
    return this.current.applyEncoded(entry.data);
  }

  stageWrites(batch: RootBatch, appliedIndex: number, membership: Membership): void {
    if (appliedIndex < this.persisted.appliedIndex) {
      throw new Error(`persist at index ${appliedIndex} would move the applied index back from ${this.persisted.appliedIndex}`);
    }
    const applied: AppliedRecord = { appliedIndex, membership };
    const machine = this.current;
    const records = new Map([
      [MACHINE_KEY, encodeJson(machine.machineRecord())],
      [APPLIED_KEY, encodeJson(applied)],
    ]);
    this.buffer.stage(batch, (name) => machine.queueRecord(name), records);
    this.staged = applied;
  }

  writesDone(): void {
    this.buffer.written();
    if (this.staged !== undefined) this.persisted = this.staged;
    this.staged = undefined;
  }

  /** Writes everything applied since the last write on its own (one LevelDB batch, not synced). */
  async persist(appliedIndex: number, membership: Membership): Promise<void> {
    const batch = this.buffer.generation.db.batch();
    try {
      this.stageWrites(batch, appliedIndex, membership);
      await batch.write();
    } catch (error) {
      await batch.close().catch(() => undefined);
      throw error;
    }
    this.writesDone();
  }

  /** The deliveries of a lease with bodies and headers; messages gone since are left out. */
  readDeliveries(leased: readonly LeasedMessage[]): Promise<Delivery[]> {
    return this.current.readDeliveries(leased);
  }

  /** The view is of the persisted state: entries applied since the last persist are not in it. */
  openSnapshot(): StateSnapshotReader {
    return new QueueSnapshotReader(this.buffer.generation, this.persisted.appliedIndex, this.persisted.membership);
  }

  startRestore(): StateSnapshotWriter {
    const previous = this.staging;
    if (previous !== undefined && !previous.writer.isAborted) {
      previous.writer.supersede();
      previous.reserved.then(
        (generation) => this.generations.discardStagingInBackground(generation),
        () => undefined,
      );
    }
    const reserved = this.generations.beginStaging();
    const writer = new QueueSnapshotWriter({
      ready: async () => this.generations.level(await reserved),
      discard: async () => this.generations.discardStaging(await reserved),
    });
    const staging: Staging = { writer, reserved };
    // Registered before any write can await `reserved`, so the number is known once a chunk is staged.
    // A failure is reported by write(); this copy must not surface as an unhandled rejection.
    reserved.then(
      (generation) => (staging.generation = generation),
      () => undefined,
    );
    this.staging = staging;
    return writer;
  }

  installOperations(meta: SnapshotMeta): readonly CompanionOperation[] {
    const staging = this.staging;
    if (staging === undefined || !staging.writer.isComplete) {
      throw new Error("installOperations with no complete staged snapshot: stream the whole snapshot first");
    }
    const generation = staging.generation;
    if (generation === undefined) throw new Error("installOperations before the staged generation was reserved");
    const applied: AppliedRecord = { appliedIndex: meta.index, membership: meta.membership };
    return [
      ...this.generations.switchOperations(generation),
      generationPut(this.generations.level(generation), APPLIED_KEY, encodeJson(applied)),
    ];
  }

  async reload(): Promise<void> {
    await this.generations.followPointer();
    this.staging = undefined;
    this.buffer.switchTo(this.generations.level());
    const { machine, applied } = await loadGeneration(this.buffer.generation, this.buffer, this.buffer.loadSink());
    this.current = machine;
    this.persisted = applied;
  }

  /** Resolves once the background deletions (old or aborted generations, dropped records) are done. */
  async settled(): Promise<void> {
    await Promise.all([this.generations.settled(), this.buffer.sweeper.settled()]);
  }

  /** Stops background deletions (the next open resumes them). The root database stays open for its owner. */
  async close(): Promise<void> {
    await Promise.all([this.generations.close(), this.buffer.sweeper.close()]);
  }
}
