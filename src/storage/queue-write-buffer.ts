/**
 * The QueueStorage of a node: it collects the state machine's changes between two persists and writes
 * them as one LevelDB batch, and serves bodies from those collected changes first, then from disk. Until a
 * batch is written its bodies stay in memory; once written, memory holds only the few group records read
 * last (body-groups.ts).
 */
import type { RootBatch } from "./level-raft-storage.js";
import type { LoadSink } from "./queue-loader.js";
import { QueueSweeper, type BulkDrop } from "./queue-sweeper.js";
import type { MessageMeta } from "../queue/message-meta.js";
import { bodyGroupOf, type QueueRecord, type QueueStorage, type StoredBody } from "../queue/queue-storage.js";
import { BodyGroupBuilder, BodyGroupCache, BodyGroupRecord, GroupLiveCounts } from "./body-groups.js";
import { DedupChunkBuilder, DedupChunkLog, dedupChunkKey, dedupFrontKey, encodeDedupFront, type RingPosition } from "./dedup-chunks.js";
import {
  bodyGroupKey,
  encodeJson,
  MetaEncoder,
  messageKey,
  queueKey,
  type GenerationSublevel,
} from "./queue-keys.js";

/** The changes of one batch: keyed writes (the last one per key wins), bulk drops, queues to re-record. */
class PendingChanges {
  /** Key -> new value, or null to delete. */
  readonly writes = new Map<string, Uint8Array | null>();
  readonly drops: BulkDrop[] = [];
  readonly dirtyQueues = new Set<string>();
  /** Per queue incarnation, the idempotency keys remembered, and how far the ring's front moved. */
  readonly dedupChunks = new Map<number, DedupChunkBuilder>();
  readonly dedupFronts = new Map<number, RingPosition>();
  /** The body groups added, by group. */
  readonly bodyGroups = new Map<number, BodyGroupBuilder>();
  /** Encodes this batch's message records. */
  readonly metas = new MetaEncoder();
}

/** Reads the current persisted record of a queue when a batch is written. */
export type QueueRecordSource = (name: string) => QueueRecord | undefined;

/** Collects changes for the next persist and reads bodies through them. */
export class QueueWriteBuffer implements QueueStorage {
  private pending = new PendingChanges();
  /** The changes being written right now: still the freshest truth for reads until the write lands. */
  private writing: PendingChanges | undefined;

  /** Deletes what purges and queue deletions drop, once the batch that dropped it is on disk. */
  readonly sweeper: QueueSweeper;
  /** The stored idempotency key chunks of each queue incarnation. */
  private readonly dedupLogs = new Map<number, DedupChunkLog>();
  /** Live bodies of the stored body groups, and the group records read last. */
  private readonly liveBodies = new GroupLiveCounts();
  private readonly groupCache = new BodyGroupCache();

  /**
   * `generation` is the sublevel of the current state, replaced when a snapshot is installed (switchTo).
   * `onSweepError` hears of a failed background delete.
   */
  constructor(
    private current: GenerationSublevel,
    onSweepError: (error: unknown) => void,
  ) {
    this.sweeper = new QueueSweeper(current, onSweepError);
  }

  get generation(): GenerationSublevel {
    return this.current;
  }

  /** The state is now generation `generation` (a snapshot was installed): unwritten changes are void. */
  switchTo(generation: GenerationSublevel): void {
    this.pending = new PendingChanges();
    this.dedupLogs.clear();
    this.liveBodies.clear();
    this.groupCache.clear();
    this.current = generation;
    this.sweeper.switchTo(generation);
  }

  queueChanged(name: string): void {
    this.pending.dirtyQueues.add(name);
  }

  queueDropped(name: string, incarnation: number): void {
    this.pending.dirtyQueues.add(name);
    this.pending.dedupChunks.delete(incarnation);
    this.pending.dedupFronts.delete(incarnation);
    const chunks = this.dedupLogs.get(incarnation)?.liveSeqs() ?? [];
    this.dedupLogs.delete(incarnation);
    this.pending.drops.push({ kind: "keys", keys: [...chunks.map((seq) => dedupChunkKey(incarnation, seq)), dedupFrontKey(incarnation)] });
  }

  messageChanged(incarnation: number, meta: MessageMeta): void {
    this.pending.writes.set(messageKey(incarnation, meta.id), this.pending.metas.encode(meta));
  }

  messageRemoved(incarnation: number, id: number): void {
    this.pending.writes.set(messageKey(incarnation, id), null);
  }

  messagesDropped(incarnation: number, ids: Float64Array, bodyIds: Float64Array): void {
    if (ids.length === 0) return;
    // Emptied groups go first: a restart finds a group record only through the bookkeeping of its bodies.
    const emptied: string[] = [];
    for (const bodyId of bodyIds) {
      const group = this.removeBody(bodyId);
      if (group !== undefined) emptied.push(bodyGroupKey(group));
    }
    this.pending.drops.push({ kind: "keys", keys: emptied }, { kind: "messages", incarnation, ids });
  }

  bodyAdded(bodyId: number, body: StoredBody): void {
    const group = bodyGroupOf(bodyId);
    let builder = this.pending.bodyGroups.get(group);
    if (builder === undefined) this.pending.bodyGroups.set(group, (builder = new BodyGroupBuilder()));
    builder.add(bodyId, body);
  }

  bodyRemoved(bodyId: number): void {
    const group = this.removeBody(bodyId);
    if (group !== undefined) this.pending.writes.set(bodyGroupKey(group), null);
  }

  /** Counts a body out of its group; returns the group if its stored record must now be deleted. */
  private removeBody(bodyId: number): number | undefined {
    const group = bodyGroupOf(bodyId);
    const building = this.pending.bodyGroups.get(group);
    if (building !== undefined) {
      // Its whole group is still in memory (one command adds a group): nothing stored to delete.
      if (!building.remove(bodyId)) throw new Error(`body ${bodyId} removed, but its group is being written without it`);
      if (building.live === 0) this.pending.bodyGroups.delete(group);
      return undefined;
    }
    if (!this.liveBodies.removeOne(group)) return undefined;
    this.groupCache.delete(group);
    return group;
  }

  dedupRemembered(incarnation: number, digest: Uint32Array, id: number, expiresAtMs: number): void {
    let chunk = this.pending.dedupChunks.get(incarnation);
    if (chunk === undefined) this.pending.dedupChunks.set(incarnation, (chunk = new DedupChunkBuilder()));
    chunk.add(digest, id, expiresAtMs);
  }

  dedupForgotten(incarnation: number, id: number, expiresAtMs: number): void {
    this.pending.dedupFronts.set(incarnation, { expiresAtMs, id });
  }

  /** Where a load of this buffer's generation reports what it found besides the state. */
  loadSink(): LoadSink {
    return {
      sweep: (drop) => this.sweeper.add(drop),
      dedupChunkFound: (incarnation, seq, last) => this.dedupLog(incarnation).stored(seq, last),
      bodiesFound: (live, dropped) => {
        const emptied = this.liveBodies.restore(live, dropped);
        this.sweeper.add({ kind: "keys", keys: emptied.map(bodyGroupKey) });
      },
    };
  }

  /** Bodies of live messages, by position (undefined: no such body). */
  async readBodies(bodyIds: readonly number[]): Promise<(StoredBody | undefined)[]> {
    const bodies: (StoredBody | undefined)[] = new Array<StoredBody | undefined>(bodyIds.length);
    /** Positions whose group must be read from disk, by group. */
    const unread = new Map<number, number[]>();
    bodyIds.forEach((bodyId, at) => {
      const group = bodyGroupOf(bodyId);
      const held = this.pending.bodyGroups.get(group) ?? this.writing?.bodyGroups.get(group) ?? this.groupCache.get(group);
      if (held !== undefined) {
        bodies[at] = held.get(bodyId);
        return;
      }
      const positions = unread.get(group);
      if (positions === undefined) unread.set(group, [at]);
      else positions.push(at);
    });
    if (unread.size === 0) return bodies;
    const groups = [...unread.keys()];
    const records = await this.generation.getMany(groups.map(bodyGroupKey));
    groups.forEach((group, index) => {
      const bytes = records[index];
      if (bytes === undefined) return;
      const record = new BodyGroupRecord(group, bytes);
      this.groupCache.add(record);
      for (const at of unread.get(group)!) bodies[at] = record.get(bodyIds[at]!);
    });
    return bodies;
  }

  /**
   * Adds everything changed since the last call, plus `extra` puts (machine and applied records), to
   * `batch` (on the node's root, written with the Raft step); call written() once it is on disk. Bulk
   * drops are not in it: they are deleted in the background once this batch is written (queue-sweeper.ts).
   */
  stage(batch: RootBatch, queueRecordOf: QueueRecordSource, extra: ReadonlyMap<string, Uint8Array>): void {
    const changes = this.pending;
    this.pending = new PendingChanges();
    this.writing = changes;
    const target = new GenerationBatch(batch, this.generation);
    for (const [key, value] of changes.writes) {
      if (value === null) target.del(key);
      else target.put(key, value);
    }
    for (const [group, builder] of changes.bodyGroups) {
      target.put(bodyGroupKey(group), builder.encoded());
      this.liveBodies.stored(group, builder.live);
    }
    for (const [incarnation, chunk] of changes.dedupChunks) {
      const log = this.dedupLog(incarnation);
      const seq = log.nextSeq;
      target.put(dedupChunkKey(incarnation, seq), chunk.encoded());
      log.stored(seq, chunk.last);
    }
    for (const [incarnation, front] of changes.dedupFronts) {
      target.put(dedupFrontKey(incarnation), encodeDedupFront(front));
      for (const seq of this.dedupLog(incarnation).takeCoveredBy(front)) target.del(dedupChunkKey(incarnation, seq));
    }
    for (const name of changes.dirtyQueues) {
      const record = queueRecordOf(name);
      if (record === undefined) target.del(queueKey(name));
      else target.put(queueKey(name), encodeJson(record));
    }
    for (const [key, value] of extra) target.put(key, value);
  }

  private dedupLog(incarnation: number): DedupChunkLog {
    let log = this.dedupLogs.get(incarnation);
    if (log === undefined) this.dedupLogs.set(incarnation, (log = new DedupChunkLog()));
    return log;
  }

  /** The batch of the last stage() is on disk: its changes are read from there from now on. */
  written(): void {
    for (const drop of this.writing?.drops ?? []) this.sweeper.add(drop);
    this.writing = undefined;
  }
}

/**
 * Puts and deletes in one generation, through a batch on the root. The keys carry the generation's
 * prefix already, and no options: abstract-level's handling of a `sublevel` option (or any options
 * object) cost about 10 µs a put on a busy node, a fifth of a follower's time under EnqueueBatch. The
 * bytes stored are the same as through the sublevel: its prefix and a UTF-8 key, the value as is.
 */
class GenerationBatch {
  private readonly prefix: string;

  constructor(
    private readonly batch: RootBatch,
    generation: GenerationSublevel,
  ) {
    this.prefix = generation.prefix;
  }

  put(key: string, value: Uint8Array): void {
    this.batch.put(this.prefix + key, value);
  }

  del(key: string): void {
    this.batch.del(this.prefix + key);
  }
}
