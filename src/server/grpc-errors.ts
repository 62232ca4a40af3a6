import * as grpc from "@grpc/grpc-js";
import { isNodeError, NodeErrorCode } from "../node/errors.js";
import { isQueueError } from "../queue/errors.js";

/** An error already shaped for a gRPC caller: a status code and a message a person can act on. */
export class GrpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = "GrpcError";
  }
}

export function unavailable(message: string): GrpcError {
  return new GrpcError(grpc.status.UNAVAILABLE, message);
}

export function invalidArgument(message: string): GrpcError {
  return new GrpcError(grpc.status.INVALID_ARGUMENT, message);
}

export function deadlineExceeded(what: string): GrpcError {
  return new GrpcError(
    grpc.status.DEADLINE_EXCEEDED,
    `${what} did not complete in time; its outcome is unknown: retrying with the same idempotency key is safe`,
  );
}

/**
 * Maps any failure to a gRPC status. Queue errors keep their code; replication errors are UNAVAILABLE
 * (retryable), except a refused membership change (FAILED_PRECONDITION); anything else is INTERNAL and
 * logged by the caller, since it is a bug.
 */
export function toGrpcError(error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  if (isQueueError(error)) return new GrpcError(error.code as number as grpc.status, error.message);
  if (isNodeError(error)) {
    if (error.code === NodeErrorCode.Timeout) return new GrpcError(grpc.status.DEADLINE_EXCEEDED, error.message);
    // Retrying will not help until the cluster changes: the caller must look and decide.
    if (error.code === NodeErrorCode.MembershipChangePending || error.code === NodeErrorCode.InvalidMembershipChange) {
      return new GrpcError(grpc.status.FAILED_PRECONDITION, error.message);
    }
    return new GrpcError(grpc.status.UNAVAILABLE, error.message);
  }
  if (isServiceError(error)) return new GrpcError(error.code, error.details || error.message);
  return new GrpcError(grpc.status.INTERNAL, `internal error: ${error instanceof Error ? error.message : String(error)}`);
}

/** A status received from another node (when forwarding), passed on unchanged. */
export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === "number" && "metadata" in error;
}
