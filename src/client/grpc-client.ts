import type { AddMemberResponse__Output } from "../generated/raftq/v1/AddMemberResponse.js";
import type { CreateQueueResponse__Output } from "../generated/raftq/v1/CreateQueueResponse.js";
import type { DeleteQueueResponse__Output } from "../generated/raftq/v1/DeleteQueueResponse.js";
import type { DequeueResponse__Output } from "../generated/raftq/v1/DequeueResponse.js";
import type { ListQueuesResponse__Output } from "../generated/raftq/v1/ListQueuesResponse.js";
import type { PurgeQueueResponse__Output } from "../generated/raftq/v1/PurgeQueueResponse.js";
import type { RemoveMemberResponse__Output } from "../generated/raftq/v1/RemoveMemberResponse.js";
import type { StatusResponse__Output } from "../generated/raftq/v1/StatusResponse.js";
import type { TransferLeadershipResponse__Output } from "../generated/raftq/v1/TransferLeadershipResponse.js";
import type {
  AckResult,
  Body,
  ClusterMember,
  DequeueOptions,
  EnqueueBatchResult,
  EnqueueOptions,
  EnqueueResult,
  ExtendLeaseRequestOptions,
  ExtendLeaseResult,
  MessageRefs,
  NackRequestOptions,
  NackResult,
  NodeReport,
  NodeStatus,
  OutgoingMessage,
  QueueSettings,
  QueueStats,
  RaftqClient,
} from "./client.js";
import { AckCoalescer } from "./ack-coalescer.js";
import { LeasedDelivery, type Delivery, type LeaseActions } from "./delivery.js";
import { toRaftqError } from "./errors.js";
import { Invoker, type RetryPolicy, type UnaryStarter } from "./invoker.js";
import { closedError, NodePool } from "./node-pool.js";
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from "./options.js";
import { StreamPublisher, type Publisher, type PublisherOptions } from "./publisher.js";
import { batchMessage, enqueueRequest } from "./requests.js";
import { StreamSubscription, type StreamContext, type SubscribeOptions, type Subscription } from "./subscription.js";

/** Safe to repeat after an unknown outcome: reads, keyed writes, and writes whose repeat changes nothing. */
const REPEATABLE: RetryPolicy = { repeatable: true };
/** Repeating after an unknown outcome could act twice (or report wrongly): only UNAVAILABLE is retried. */
const ONCE: RetryPolicy = { repeatable: false };

const startStatus: UnaryStarter<StatusResponse__Output> = (node, metadata, callOptions, callback) =>
  node.cluster.Status({}, metadata, callOptions, callback);

/** The RaftqClient over gRPC: one channel per node, calls to the leader first. */
export class GrpcRaftqClient implements RaftqClient {
  private readonly options: ResolvedClientOptions;
  private readonly pool: NodePool;
  private readonly invoker: Invoker;
  /** Subscriptions and publishers still running, ended by `close()`. */
  private readonly streams = new Set<object>();
  /** What deliveries settle themselves with: single acks are joined into Ack calls of many receipts. */
  private readonly leaseActions: LeaseActions;

  constructor(options: ClientOptions) {
    this.options = resolveClientOptions(options);
    this.pool = new NodePool(this.options);
    this.invoker = new Invoker(this.pool, this.options);
    const acks = new AckCoalescer((queue, receipts) => this.ack(queue, { receipts }));
    this.leaseActions = {
      ackReceipt: (queue, receipt) => acks.ack(queue, receipt),
      nack: (queue, refs) => this.nack(queue, refs),
      extendLease: (queue, refs) => this.extendLease(queue, refs),
    };
  }

  get leaderAddress(): string | undefined {
    return this.pool.leaderAddress;
  }

  enqueue(queue: string, body: Body, options?: EnqueueOptions): Promise<EnqueueResult> {
    const request = enqueueRequest(queue, body, options);
    const policy = request.idempotencyKey === undefined ? ONCE : REPEATABLE;
    return this.invoker.call("enqueue", policy, (node, metadata, callOptions, callback) =>
      node.queue.Enqueue(request, metadata, callOptions, callback),
    );
  }

  enqueueBatch(queue: string, messages: readonly OutgoingMessage[]): Promise<EnqueueBatchResult> {
    const request = { queue, messages: messages.map(batchMessage) };
    const policy = request.messages.every((message) => message.idempotencyKey !== undefined) ? REPEATABLE : ONCE;
    return this.invoker.call("enqueueBatch", policy, (node, metadata, callOptions, callback) =>
      node.queue.EnqueueBatch(request, metadata, callOptions, callback),
    );
  }

  async dequeue(queue: string, options: DequeueOptions = {}): Promise<Delivery[]> {
    const request = {
      queue,
      maxMessages: options.maxMessages ?? 1,
      visibilityTimeoutMs: options.visibilityTimeoutMs ?? 0,
      waitMs: options.waitMs ?? 0,
    };
    // A repeat after a lost answer leases other messages; those of the lost answer return when their leases end.
    const policy: RetryPolicy = { repeatable: true, serverWaitMs: request.waitMs };
    const response = await this.invoker.call<DequeueResponse__Output>("dequeue", policy, (node, metadata, callOptions, callback) =>
      node.queue.Dequeue(request, metadata, callOptions, callback),
    );
    return response.messages.map((message) => new LeasedDelivery(queue, message, this.leaseActions));
  }

  ack(queue: string, refs: MessageRefs): Promise<AckResult> {
    const request = { queue, ids: [...(refs.ids ?? [])], receipts: [...(refs.receipts ?? [])] };
    return this.invoker.call("ack", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.Ack(request, metadata, callOptions, callback),
    );
  }

  nack(queue: string, refs: NackRequestOptions): Promise<NackResult> {
    const request = { queue, ids: [...(refs.ids ?? [])], receipts: [...(refs.receipts ?? [])], delayMs: refs.delayMs ?? 0 };
    return this.invoker.call("nack", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.Nack(request, metadata, callOptions, callback),
    );
  }

  extendLease(queue: string, refs: ExtendLeaseRequestOptions): Promise<ExtendLeaseResult> {
    const request = {
      queue,
      ids: [...(refs.ids ?? [])],
      receipts: [...(refs.receipts ?? [])],
      visibilityTimeoutMs: refs.visibilityTimeoutMs ?? 0,
    };
    return this.invoker.call("extendLease", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.ExtendLease(request, metadata, callOptions, callback),
    );
  }

  subscribe(queue: string, options: SubscribeOptions = {}): Subscription {
    if (this.pool.isClosed) throw closedError();
    const request = { queue, prefetch: options.prefetch ?? 0, visibilityTimeoutMs: options.visibilityTimeoutMs ?? 0, packDeliveries: true };
    const subscription = new StreamSubscription(queue, request, this.leaseActions, this.streamContext(), options.signal);
    if (!options.signal?.aborted) this.streams.add(subscription);
    return subscription;
  }

  publisher(queue: string, options: PublisherOptions = {}): Publisher {
    if (this.pool.isClosed) throw closedError();
    const publisher = new StreamPublisher(queue, options, this.streamContext());
    this.streams.add(publisher);
    return publisher;
  }

  async createQueue(queue: string, settings: QueueSettings = {}): Promise<boolean> {
    const request = { ...settings, queue };
    const response = await this.invoker.call<CreateQueueResponse__Output>("createQueue", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.CreateQueue(request, metadata, callOptions, callback),
    );
    return response.created;
  }

  async deleteQueue(queue: string): Promise<boolean> {
    const response = await this.invoker.call<DeleteQueueResponse__Output>("deleteQueue", ONCE, (node, metadata, callOptions, callback) =>
      node.queue.DeleteQueue({ queue }, metadata, callOptions, callback),
    );
    return response.deleted;
  }

  async purgeQueue(queue: string): Promise<number> {
    const response = await this.invoker.call<PurgeQueueResponse__Output>("purgeQueue", ONCE, (node, metadata, callOptions, callback) =>
      node.queue.PurgeQueue({ queue }, metadata, callOptions, callback),
    );
    return response.purged;
  }

  async listQueues(): Promise<string[]> {
    const response = await this.invoker.call<ListQueuesResponse__Output>("listQueues", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.ListQueues({}, metadata, callOptions, callback),
    );
    return response.queues;
  }

  queueStats(queue: string): Promise<QueueStats> {
    return this.invoker.call("queueStats", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.queue.GetQueueStats({ queue }, metadata, callOptions, callback),
    );
  }

  async status(address?: string): Promise<NodeStatus> {
    const status =
      address === undefined
        ? await this.invoker.call("status", REPEATABLE, startStatus)
        : await this.statusOf(address, this.options.timeoutMs);
    this.pool.learnLeader(status.leaderAddress);
    return status;
  }

  async clusterStatus(): Promise<NodeReport[]> {
    const reports = await Promise.all(
      this.options.addresses.map(async (address): Promise<NodeReport> => {
        try {
          return { address, reachable: true, status: await this.statusOf(address, this.options.attemptTimeoutMs) };
        } catch (thrown) {
          return { address, reachable: false, error: toRaftqError(thrown, address) };
        }
      }),
    );
    const leader = reports.find((report) => report.reachable && report.status.role === "leader");
    if (leader?.reachable) this.pool.learnLeader(leader.status.leaderAddress || leader.address);
    return reports;
  }

  async transferLeadership(targetId?: string): Promise<string> {
    const request = targetId === undefined ? {} : { targetId };
    const response = await this.invoker.call<TransferLeadershipResponse__Output>("transferLeadership", ONCE, (node, metadata, callOptions, callback) =>
      node.cluster.TransferLeadership(request, metadata, callOptions, callback),
    );
    return response.leaderId;
  }

  async addMember(id: string, address: string): Promise<ClusterMember[]> {
    // Repeating an add that went through finds the member at the same address: a no-op success.
    const response = await this.invoker.call<AddMemberResponse__Output>("addMember", REPEATABLE, (node, metadata, callOptions, callback) =>
      node.cluster.AddMember({ id, address }, metadata, callOptions, callback),
    );
    return response.members;
  }

  async removeMember(id: string): Promise<ClusterMember[]> {
    // Repeating a remove that went through would report the member unknown: not retried on an unknown outcome.
    const response = await this.invoker.call<RemoveMemberResponse__Output>("removeMember", ONCE, (node, metadata, callOptions, callback) =>
      node.cluster.RemoveMember({ id }, metadata, callOptions, callback),
    );
    return response.members;
  }

  close(): void {
    if (this.pool.isClosed) return;
    const error = closedError();
    for (const stream of [...this.streams]) {
      if (stream instanceof StreamPublisher) stream.abort(error);
      else if (stream instanceof StreamSubscription) stream.close();
    }
    this.invoker.cancelAll();
    this.pool.close();
  }

  /** One Status attempt on the node at `address`. */
  private async statusOf(address: string, timeoutMs: number): Promise<NodeStatus> {
    try {
      const answer = await this.invoker.once(this.pool.node(address), timeoutMs, startStatus);
      return answer.response;
    } catch (thrown) {
      throw toRaftqError(thrown, address);
    }
  }

  private streamContext(): StreamContext {
    return {
      pool: this.pool,
      options: this.options,
      onEnded: (owner) => this.streams.delete(owner),
      findLeader: async () => {
        if (this.pool.leaderAddress !== undefined || this.pool.isClosed) return;
        try {
          const status = await this.statusOf(this.pool.pick().address, this.options.attemptTimeoutMs);
          this.pool.learnLeader(status.leaderAddress);
        } catch {
          // The stream's own attempt reports what is wrong with that node.
        }
      },
    };
  }
}
