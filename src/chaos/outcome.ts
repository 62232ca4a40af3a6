/**
 * How a failed client call enters the history: `fail` only when the error proves the operation did not
 * happen, `info` (unknown) otherwise. UNAVAILABLE is unknown, not a failure: it also means "leadership was
 * lost after the entry was proposed", and such an entry may still commit.
 */
import { isRaftqError } from "../client/index.js";
import type { OpError, OpFunction, PendingOp } from "./history.js";

/** Codes a node answers before anything is proposed: the operation certainly did not happen. */
const DEFINITE_FAILURES: ReadonlySet<string> = new Set([
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "UNIMPLEMENTED",
]);

/** Longest error message kept in the history. */
const MAX_MESSAGE_CHARS = 300;

/** The code and message of anything a client call threw. */
export function opError(thrown: unknown): OpError {
  const code = isRaftqError(thrown) ? thrown.code : "UNKNOWN";
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return { code, message: message.slice(0, MAX_MESSAGE_CHARS) };
}

/** True when the error proves the operation did not happen. */
export function isDefiniteFailure(error: OpError): boolean {
  return DEFINITE_FAILURES.has(error.code);
}

/** Completes `op` as fail or info according to what was thrown; returns which. */
export function completeWithError<F extends OpFunction>(op: PendingOp<F>, thrown: unknown): "fail" | "info" {
  const error = opError(thrown);
  if (isDefiniteFailure(error)) {
    op.fail(error);
    return "fail";
  }
  op.info(error);
  return "info";
}
