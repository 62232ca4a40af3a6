/** Status codes of refused queue operations; the values are gRPC's, so the server maps them one to one. */
export enum ErrorCode {
  InvalidArgument = 3,
  NotFound = 5,
  AlreadyExists = 6,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
}

/** A refused queue operation: a stable code and a message naming the cause and the fix. */
export class QueueError extends Error {
  override readonly name = "QueueError";

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** True for errors raised or returned by the queue module. */
export function isQueueError(error: unknown): error is QueueError {
  return error instanceof QueueError;
}
