/**
 * The seam between the queue state machine and where its state is kept. The state machine keeps only
 * delivery bookkeeping in memory and reports every durable change here, in apply order; bodies and headers
 * go here at enqueue and are read back here when a lease is answered. The durable implementation buffers
 * the changes until the node persists them (src/storage/queue-write-buffer.ts); MemoryQueueStorage keeps
 * bodies in a Map for unit tests of the queue logic.
 */
import type { MessageMeta } from "./message-meta.js";
import type { QueueSettings } from "./settings.js";

/**
 * Body ids come in groups: the ids from g × BODY_GROUP_IDS to (g + 1) × BODY_GROUP_IDS - 1 form group g,
 * and only the new messages of one enqueue command share a group (together at most BODY_GROUP_BYTES of
 * payload, or a single bigger message). A group's bodies are therefore added in one apply, so storage can
 * keep them as one record and delete it with its last body: far fewer records than messages.
 */
export const BODY_GROUP_IDS = 1024;
/** Payload bytes after which a command's next body opens a new group. */
export const BODY_GROUP_BYTES = 1024 * 1024;

/** The group of body id `bodyId` (see BODY_GROUP_IDS). */
export function bodyGroupOf(bodyId: number): number {
  return Math.floor(bodyId / BODY_GROUP_IDS);
}

/** A message's body and headers, as stored once per message and shared by its dead-lettered copy. */
export interface StoredBody {
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** Everything about one queue except its messages and idempotency keys. */
export interface QueueRecord {
  readonly name: string;
  readonly incarnation: number;
  readonly settings: QueueSettings;
  readonly nextId: number;
  readonly enqueuedTotal: number;
  readonly ackedTotal: number;
  readonly deadLetteredTotal: number;
  readonly purgedTotal: number;
  /**
   * The highest id the last purge dropped (0: never purged). Records of messages at or below it may
   * still be on disk for a while (they are deleted in the background); a restart skips them.
   */
  readonly purgedThroughId?: number;
}

/** The state machine's own counters. */
export interface MachineRecord {
  /** Log time: the largest nowMs applied so far. */
  readonly lastNowMs: number;
  /** Queues ever created; numbers each queue's incarnation. */
  readonly createdTotal: number;
  /** The body id the next new message gets. */
  readonly nextBodyId: number;
}

/** Receives the state machine's durable changes, and serves the bodies it does not hold. */
export interface QueueStorage {
  /** Queue `name` was created or changed (settings or counters); its record is read when persisted. */
  queueChanged(name: string): void;
  /** A queue incarnation was deleted: its record and its idempotency keys go; its messages go via messagesDropped. */
  queueDropped(name: string, incarnation: number): void;
  /** A message was added or its bookkeeping changed. */
  messageChanged(incarnation: number, meta: MessageMeta): void;
  /** A message left its queue (its body goes separately, unless dead-lettering keeps it). */
  messageRemoved(incarnation: number, id: number): void;
  /** Many messages and their bodies went at once (purge, queue deletion); the arrays are index-aligned. */
  messagesDropped(incarnation: number, ids: Float64Array, bodyIds: Float64Array): void;
  /** A new message's body and headers. */
  bodyAdded(bodyId: number, body: StoredBody): void;
  /** A body no message refers to any more (each body added is removed once: here or in messagesDropped). */
  bodyRemoved(bodyId: number): void;
  /** An idempotency key (its DIGEST_WORDS-word digest, key-digest.ts) was remembered; keys come in ring order. */
  dedupRemembered(incarnation: number, digest: Uint32Array, id: number, expiresAtMs: number): void;
  /** The oldest idempotency key held, remembered for `id` until `expiresAtMs`, was forgotten. */
  dedupForgotten(incarnation: number, id: number, expiresAtMs: number): void;
  /** The bodies of `bodyIds`, by position; undefined where a body is gone. */
  readBodies(bodyIds: readonly number[]): Promise<(StoredBody | undefined)[]>;
}

/** QueueStorage that keeps bodies in memory and forgets everything else (tests of the queue logic). */
export class MemoryQueueStorage implements QueueStorage {
  private readonly bodies = new Map<number, StoredBody>();

  /** Number of bodies held (a test checks none leak). */
  get bodyCount(): number {
    return this.bodies.size;
  }

  queueChanged(): void {}
  queueDropped(): void {}
  messageChanged(): void {}
  messageRemoved(): void {}
  dedupRemembered(): void {}
  dedupForgotten(): void {}

  messagesDropped(_incarnation: number, _ids: Float64Array, bodyIds: Float64Array): void {
    for (const bodyId of bodyIds) this.bodyRemoved(bodyId);
  }

  bodyAdded(bodyId: number, body: StoredBody): void {
    if (this.bodies.has(bodyId)) throw new Error(`body ${bodyId} added twice: body ids must be unique`);
    this.bodies.set(bodyId, body);
  }

  bodyRemoved(bodyId: number): void {
    // Durable storage counts each group's live bodies: a body removed twice would delete a group early.
    if (!this.bodies.delete(bodyId)) throw new Error(`body ${bodyId} removed but not held: a body is removed once`);
  }

  readBodies(bodyIds: readonly number[]): Promise<(StoredBody | undefined)[]> {
    return Promise.resolve(bodyIds.map((bodyId) => this.bodies.get(bodyId)));
  }
}
