/** The raftq client SDK: `connect({ addresses })`, then enqueue, dequeue, subscribe and publish. */
import type { RaftqClient } from "./client.js";
import { GrpcRaftqClient } from "./grpc-client.js";
import type { ClientOptions } from "./options.js";

/** A client for the cluster at `options.addresses`; channels connect lazily, so this never blocks or fails on I/O. */
export function connect(options: ClientOptions): RaftqClient {
  return new GrpcRaftqClient(options);
}

export type {
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
export type { Delivery } from "./delivery.js";
export {
  RaftqError,
  isAlreadyExists,
  isCancelled,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isOutcomeUnknown,
  isQueueFull,
  isRaftqError,
  isRetryable,
  type RaftqErrorCode,
} from "./errors.js";
export { GrpcRaftqClient } from "./grpc-client.js";
export type { ClientOptions } from "./options.js";
export type { Publisher, PublisherOptions, PublishOptions } from "./publisher.js";
export type { Subscription, SubscribeOptions } from "./subscription.js";
