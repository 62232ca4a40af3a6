/**
 * The raftq client API: what an application holds. The wire shapes come from the generated proto types;
 * the implementation is GrpcRaftqClient (grpc-client.ts).
 */
import type { AckResponse__Output } from "../generated/raftq/v1/AckResponse.js";
import type { CreateQueueRequest__Output } from "../generated/raftq/v1/CreateQueueRequest.js";
import type { EnqueueBatchResponse__Output } from "../generated/raftq/v1/EnqueueBatchResponse.js";
import type { EnqueueResponse__Output } from "../generated/raftq/v1/EnqueueResponse.js";
import type { ExtendLeaseResponse__Output } from "../generated/raftq/v1/ExtendLeaseResponse.js";
import type { Member__Output } from "../generated/raftq/v1/Member.js";
import type { NackResponse__Output } from "../generated/raftq/v1/NackResponse.js";
import type { QueueStats__Output } from "../generated/raftq/v1/QueueStats.js";
import type { StatusResponse__Output } from "../generated/raftq/v1/StatusResponse.js";
import type { Delivery } from "./delivery.js";
import type { RaftqError } from "./errors.js";
import type { Publisher, PublisherOptions } from "./publisher.js";
import type { Subscription, SubscribeOptions } from "./subscription.js";

/** A message payload: bytes as they are, strings as UTF-8. */
export type Body = Uint8Array | string;

/** How to enqueue one message. */
export interface EnqueueOptions {
  /**
   * Deduplication key (at most 256 bytes): a repeat inside the queue's dedup window enqueues nothing and
   * returns the first id. Default: a fresh random UUID, so the client's own retries never duplicate.
   * `false` sends no key; the client then does not retry when the outcome is unknown (DEADLINE_EXCEEDED),
   * and a retried UNAVAILABLE (leadership lost mid-request) may enqueue the message twice.
   */
  idempotencyKey?: string | false;
  /** Keep the message invisible for this long after it is enqueued (0..43200000 ms). */
  delayMs?: number;
  /** Application metadata delivered with the message (at most 64 entries). */
  headers?: Readonly<Record<string, string>>;
}

/** One message of a batch: its body plus the per-message options of a single enqueue. */
export interface OutgoingMessage extends EnqueueOptions {
  /** The payload. */
  body: Body;
}

/**
 * Where an enqueued message went: its `id`, and `duplicate` when its key was already seen and nothing was
 * enqueued, which also happens when a retry of this client finds that its lost first attempt went through.
 */
export type EnqueueResult = EnqueueResponse__Output;

/** `ids[i]` and `duplicates[i]` describe message i of the batch. */
export type EnqueueBatchResult = EnqueueBatchResponse__Output;

/** How to lease messages. */
export interface DequeueOptions {
  /** Most messages to lease (1..1000, default 1). */
  maxMessages?: number;
  /** Lease length (1..43200000 ms; default: the queue's visibility timeout). */
  visibilityTimeoutMs?: number;
  /** Long polling: how long the server may wait for a message when none is ready (0..20000 ms, default 0). */
  waitMs?: number;
}

/** Messages named by id (unconditional) and/or by receipt (only the delivery attempt that receipt names). */
export interface MessageRefs {
  /** Message ids. */
  ids?: readonly number[];
  /** Receipts of deliveries. */
  receipts?: readonly string[];
}

/** Messages to give back, and when they become ready again. */
export interface NackRequestOptions extends MessageRefs {
  /** Ready again after this long (0..43200000 ms, default 0). */
  delayMs?: number;
}

/** Messages whose lease should last longer, and for how long. */
export interface ExtendLeaseRequestOptions extends MessageRefs {
  /** The leases end this long from now (1..43200000 ms; default: the queue's visibility timeout). */
  visibilityTimeoutMs?: number;
}

/** What an ack did: messages deleted, and receipts refused because the message was redelivered or gone. */
export type AckResult = AckResponse__Output;
/** What a nack did: messages given back, and receipts refused. */
export type NackResult = NackResponse__Output;
/** What a lease extension did: leases extended, and receipts refused. */
export type ExtendLeaseResult = ExtendLeaseResponse__Output;

/** A queue's settings; an omitted field takes the server default (see CreateQueueRequest in queue.proto). */
export type QueueSettings = Partial<Omit<CreateQueueRequest__Output, "queue">>;

/** Message counts of one queue: ready, inFlight, delayed and the lifetime totals. */
export type QueueStats = QueueStats__Output;

/** One node's view of the cluster: its id, role, term, commit and applied index, leader and members. */
export type NodeStatus = StatusResponse__Output;

/** One member of the cluster: its id, address, whether it votes (false: a learner) and its replication progress. */
export type ClusterMember = Member__Output;

/** What one configured node said when asked for its status, or why it could not be asked. */
export type NodeReport =
  | { readonly address: string; readonly reachable: true; readonly status: NodeStatus }
  | { readonly address: string; readonly reachable: false; readonly error: RaftqError };

/**
 * A connection to a raftq cluster. Every call goes to the leader when known (learned from any answer),
 * else to the configured nodes in turn, and is retried on UNAVAILABLE within the client's timeout.
 * Failures are RaftqError; branch with the predicates of errors.ts (isNotFound, isQueueFull, ...).
 */
export interface RaftqClient {
  /** host:port of the node this client believes leads the cluster, if it knows one. */
  readonly leaderAddress: string | undefined;

  /** Appends one message to `queue` (created with defaults if missing); retries never duplicate it. */
  enqueue(queue: string, body: Body, options?: EnqueueOptions): Promise<EnqueueResult>;

  /** Appends up to 1000 messages to `queue`, all or nothing, in order; every message gets a key by default. */
  enqueueBatch(queue: string, messages: readonly OutgoingMessage[]): Promise<EnqueueBatchResult>;

  /** Leases up to `maxMessages` ready messages, lowest id first; an empty array when none became ready. */
  dequeue(queue: string, options?: DequeueOptions): Promise<Delivery[]>;

  /** Deletes delivered messages for good. */
  ack(queue: string, refs: MessageRefs): Promise<AckResult>;

  /** Gives leased messages back; they become ready again after `delayMs`. */
  nack(queue: string, refs: NackRequestOptions): Promise<NackResult>;

  /** Keeps leased messages: their leases end `visibilityTimeoutMs` from now. */
  extendLease(queue: string, refs: ExtendLeaseRequestOptions): Promise<ExtendLeaseResult>;

  /**
   * Streams deliveries of `queue` as they become ready, at most `prefetch` unacked at a time.
   * Reconnects (to the leader) when the stream breaks; ends on `break`, `return()`, `close()` or the signal.
   */
  subscribe(queue: string, options?: SubscribeOptions): Subscription;

  /** A pipelined publisher for `queue` over one stream, with at most `maxInFlight` unanswered messages. */
  publisher(queue: string, options?: PublisherOptions): Publisher;

  /** Creates a queue; true if created, false if it existed with identical settings (ALREADY_EXISTS if different). */
  createQueue(queue: string, settings?: QueueSettings): Promise<boolean>;

  /** Deletes a queue and all its messages; false when there was no such queue. */
  deleteQueue(queue: string): Promise<boolean>;

  /** Drops every message of a queue, keeping its settings; returns how many were dropped. */
  purgeQueue(queue: string): Promise<number>;

  /** Names of all queues, sorted. */
  listQueues(): Promise<string[]>;

  /** Message counts of one queue as of now. */
  queueStats(queue: string): Promise<QueueStats>;

  /** The status of the node at `address` (one attempt), or, without it, of the leader (or any node answering). */
  status(address?: string): Promise<NodeStatus>;

  /** The status of every configured node, asked in parallel; unreachable nodes are reported, not thrown. */
  clusterStatus(): Promise<NodeReport[]>;

  /** Hands leadership to node `targetId` (or the most up-to-date follower); returns the new leader's id. */
  transferLeadership(targetId?: string): Promise<string>;

  /**
   * Adds node `id`, reached at `address`, as a learner; the leader promotes it to voter once it has caught
   * up. Resolves with the members once the change is applied on the leader. Adding a member again at the
   * same address changes nothing (so retries are safe); at another address it fails with ALREADY_EXISTS.
   */
  addMember(id: string, address: string): Promise<ClusterMember[]>;

  /** Removes node `id` (voter or learner); resolves with the remaining members once the change is applied. */
  removeMember(id: string): Promise<ClusterMember[]>;

  /** Cancels calls, subscriptions and publishers in flight and closes every channel. */
  close(): void;
}
