import * as grpc from "@grpc/grpc-js";

/** The gRPC status names a raftq call can fail with; `RaftqError.code` is one of them. */
export type RaftqErrorCode = keyof typeof grpc.status;

/** Metadata key under which every raftq node names the leader's address (host:port). */
export const LEADER_METADATA_KEY = "raftq-leader";

/** Details a RaftqError carries beyond its code and message. */
export interface RaftqErrorDetails {
  /** The underlying error (a grpc-js ServiceError, a socket error, ...). */
  cause?: unknown;
  /** host:port of the node that answered (or failed to), when known. */
  address?: string;
  /** host:port of the leader as named by the answering node, when it named one. */
  leader?: string;
}

/**
 * A failed raftq call. Branch on `code` or the predicates below, never on the message text.
 * DEADLINE_EXCEEDED means the outcome is unknown: the operation may or may not have happened.
 */
export class RaftqError extends Error {
  override readonly name = "RaftqError";
  /** The gRPC status name, e.g. "UNAVAILABLE" or "NOT_FOUND"; stable across releases. */
  readonly code: RaftqErrorCode;
  /** The numeric gRPC status code (`grpc.status`). */
  readonly grpcCode: grpc.status;
  /** host:port of the node that answered (or failed to), when known. */
  readonly address: string | undefined;
  /** host:port of the leader as named by the answering node, when it named one. */
  readonly leader: string | undefined;

  constructor(grpcCode: grpc.status, message: string, details: RaftqErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.grpcCode = grpcCode;
    this.code = statusName(grpcCode);
    this.address = details.address;
    this.leader = details.leader;
  }
}

/** The status name of a numeric gRPC code; unknown numbers map to "UNKNOWN". */
export function statusName(grpcCode: number): RaftqErrorCode {
  const name = grpc.status[grpcCode] as RaftqErrorCode | undefined;
  return name ?? "UNKNOWN";
}

/** Wraps anything a grpc-js call threw (ServiceError or not) into a RaftqError, naming the node. */
export function toRaftqError(error: unknown, address?: string): RaftqError {
  if (error instanceof RaftqError) return error;
  if (isServiceError(error)) {
    const leader = leaderFromMetadata(error.metadata);
    return new RaftqError(error.code, cleanDetails(error.details || error.message), { cause: error, address, leader });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new RaftqError(grpc.status.UNKNOWN, message, { cause: error, address });
}

/** grpc-js connection errors end in an empty "Resolution note:"; drop it. */
function cleanDetails(details: string): string {
  return details.replace(/\.?\s*Resolution note:\s*$/, "");
}

/** The RaftqError for the final status of a stream that ended with a non-OK code. */
export function errorFromStatus(status: grpc.StatusObject, address: string): RaftqError {
  return new RaftqError(status.code, cleanDetails(status.details || statusName(status.code)), {
    address,
    leader: leaderFromMetadata(status.metadata),
  });
}

/** The leader address a node put in response or trailer metadata, if any. */
export function leaderFromMetadata(metadata: grpc.Metadata | undefined): string | undefined {
  const value = metadata?.get(LEADER_METADATA_KEY)[0];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** How a long-lived stream may end for reasons of connection or leadership rather than of the request. */
const STREAM_BREAK_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.OK, // ended by the server while the client still wanted it: e.g. the node shut down
  grpc.status.CANCELLED, // cancelled by the server side (this process's own cancels are checked first)
  grpc.status.UNKNOWN, // a node failing while relaying to the leader
  grpc.status.INTERNAL, // a connection reset mid-stream
  grpc.status.UNAVAILABLE,
]);

/** True when a stream (Subscribe, EnqueueStream) that ended with `code` is worth opening again. */
export function isStreamBreak(code: grpc.status): boolean {
  return STREAM_BREAK_CODES.has(code);
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === "number" && "metadata" in error;
}

function hasCode(error: unknown, code: grpc.status): boolean {
  return error instanceof RaftqError && error.grpcCode === code;
}

/** True for errors raised by the raftq client. */
export function isRaftqError(error: unknown): error is RaftqError {
  return error instanceof RaftqError;
}

/**
 * True when the same call may succeed if repeated: no leader, no quorum, leadership lost, or no connection.
 * The client already retried it until its timeout; a caller may try again later.
 */
export function isRetryable(error: unknown): boolean {
  return hasCode(error, grpc.status.UNAVAILABLE);
}

/**
 * True when the call ran out of time and its outcome is unknown: it may have been applied.
 * Repeating it is safe for enqueues with the same idempotency key, acks, nacks, lease extensions and reads.
 */
export function isOutcomeUnknown(error: unknown): boolean {
  return hasCode(error, grpc.status.DEADLINE_EXCEEDED);
}

/** True when the request itself was invalid (bad queue name, oversize body, ...): fix it before retrying. */
export function isInvalidArgument(error: unknown): boolean {
  return hasCode(error, grpc.status.INVALID_ARGUMENT);
}

/** True when the queue (or message) named by the request does not exist. */
export function isNotFound(error: unknown): boolean {
  return hasCode(error, grpc.status.NOT_FOUND);
}

/** True when a queue already exists with different settings. */
export function isAlreadyExists(error: unknown): boolean {
  return hasCode(error, grpc.status.ALREADY_EXISTS);
}

/** True when the queue (or cluster) is full: consume messages or raise the queue's max_length. */
export function isQueueFull(error: unknown): boolean {
  return hasCode(error, grpc.status.RESOURCE_EXHAUSTED);
}

/** True when the cluster refused the request in its current state (e.g. an impossible leadership transfer). */
export function isFailedPrecondition(error: unknown): boolean {
  return hasCode(error, grpc.status.FAILED_PRECONDITION);
}

/** True when the call was cancelled by this process: the client or publisher was closed, or a signal aborted. */
export function isCancelled(error: unknown): boolean {
  return hasCode(error, grpc.status.CANCELLED);
}
