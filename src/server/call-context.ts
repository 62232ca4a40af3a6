import * as grpc from "@grpc/grpc-js";

/** Server-side bound on any call that names no deadline of its own. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;
/** Answer this long before the caller's deadline, so the answer can still reach it. */
const DEADLINE_MARGIN_MS = 50;

/** What every kind of server call has: its deadline, metadata and cancellation. */
export interface ServerCall {
  getDeadline(): grpc.Deadline;
  readonly metadata: grpc.Metadata;
  on(event: "cancelled", listener: () => void): unknown;
}

/** Metadata key carrying the leader's address (as written in --peers) on every answer. */
export const LEADER_METADATA_KEY = "raftq-leader";
/** Set on calls one node forwards to the leader, so a call never hops twice. */
export const FORWARDED_METADATA_KEY = "raftq-forwarded";

/**
 * The wall-clock time (ms) by which the server must answer `call`: the caller's deadline, bounded by the
 * server's own limit, which a long poll extends by its wait.
 */
export function answerByMs(call: ServerCall, waitMs = 0): number {
  const deadline = call.getDeadline();
  const callerMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const boundMs = Date.now() + DEFAULT_CALL_TIMEOUT_MS + waitMs;
  return (Number.isFinite(callerMs) ? Math.min(callerMs, boundMs) : boundMs) - DEADLINE_MARGIN_MS;
}

export function wasForwarded(call: ServerCall): boolean {
  return call.metadata.get(FORWARDED_METADATA_KEY).length > 0;
}

/** Metadata naming the leader, for clients to go straight there next time. */
export function leaderMetadata(leaderAddress: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (leaderAddress) metadata.set(LEADER_METADATA_KEY, leaderAddress);
  return metadata;
}

/** Rejects with `onTimeout()` if `promise` has not settled by `deadlineMs`. */
export function withDeadline<T>(promise: Promise<T>, deadlineMs: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadlineMs - Date.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Aborts when the caller cancels or the server shuts down; dispose() once the work is done, before the
 * answer goes out. After that a cancellation is ignored: grpc-js reports most finished calls as
 * "cancelled" when their stream closes, and aborting then built a DOMException (with its stack trace) per
 * call for nothing.
 */
export function cancellationOf(call: ServerCall, shutdown: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let answered = false;
  const abort = (): void => {
    if (!answered) controller.abort();
  };
  call.on("cancelled", abort);
  if (shutdown.aborted) abort();
  else shutdown.addEventListener("abort", abort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      answered = true;
      shutdown.removeEventListener("abort", abort);
    },
  };
}
