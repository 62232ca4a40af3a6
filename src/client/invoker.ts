import * as grpc from "@grpc/grpc-js";
import { backoffDelayMs, sleep } from "./backoff.js";
import { RaftqError, isOutcomeUnknown, isRetryable, leaderFromMetadata, toRaftqError } from "./errors.js";
import { closedError, type NodePool, type NodeStubs } from "./node-pool.js";
import type { ResolvedClientOptions } from "./options.js";

/** The shortest attempt worth starting before the overall timeout. */
const MIN_ATTEMPT_MS = 50;

/** Starts one unary call on a node; the invoker supplies metadata, deadline and callback. */
export type UnaryStarter<Response> = (
  node: NodeStubs,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Response>,
) => grpc.ClientUnaryCall;

/** What the retry loop may do with one operation. */
export interface RetryPolicy {
  /** Safe to repeat when the outcome is unknown (DEADLINE_EXCEEDED): idempotent or keyed operations. */
  readonly repeatable: boolean;
  /** How long the server may legitimately hold the call (long polling); added to both deadlines. */
  readonly serverWaitMs?: number;
}

/** A successful answer and the leader its metadata named. */
interface Answer<Response> {
  readonly response: Response;
  readonly leader: string | undefined;
}

/**
 * Runs unary calls against the cluster: leader first, retrying UNAVAILABLE (and DEADLINE_EXCEEDED for
 * repeatable operations) on the next candidate node with backoff, until the call's overall timeout.
 * INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, RESOURCE_EXHAUSTED, FAILED_PRECONDITION and every other
 * code are returned to the caller at once.
 */
export class Invoker {
  /** Calls in flight, cancelled by `cancelAll` when the client closes. */
  private readonly active = new Set<grpc.ClientUnaryCall>();

  constructor(
    private readonly pool: NodePool,
    private readonly options: ResolvedClientOptions,
  ) {}

  /** Runs `start` until it succeeds, fails for good, or `timeoutMs` (+ serverWaitMs) has passed. */
  async call<Response>(operation: string, policy: RetryPolicy, start: UnaryStarter<Response>): Promise<Response> {
    const serverWaitMs = policy.serverWaitMs ?? 0;
    const startedAt = Date.now();
    const giveUpAt = startedAt + this.options.timeoutMs + serverWaitMs;
    for (let attempt = 0; ; attempt++) {
      const node = this.pool.pick();
      const attemptMs = Math.min(this.options.attemptTimeoutMs + serverWaitMs, giveUpAt - Date.now());
      try {
        const answer = await this.once(node, attemptMs, start);
        this.pool.learnLeader(answer.leader);
        return answer.response;
      } catch (thrown) {
        const error = toRaftqError(thrown, node.address);
        if (this.pool.isClosed) throw closedError();
        const retryable = isRetryable(error) || (policy.repeatable && isOutcomeUnknown(error));
        if (!retryable) {
          this.pool.learnLeader(error.leader);
          throw error;
        }
        this.pool.attemptFailed(node.address, error.leader);
        const delayMs = backoffDelayMs(attempt, this.options.initialBackoffMs, this.options.maxBackoffMs);
        // An attempt squeezed into the last few ms would only end in a deadline of our own making.
        const minAttemptMs = Math.min(MIN_ATTEMPT_MS, this.options.attemptTimeoutMs);
        if (giveUpAt - (Date.now() + delayMs) < minAttemptMs) throw gaveUp(operation, error, attempt + 1, Date.now() - startedAt);
        await sleep(delayMs, this.pool.closedSignal);
      }
    }
  }

  /** One attempt on one node with a deadline of `timeoutMs`; rejects with the raw grpc-js error. */
  once<Response>(node: NodeStubs, timeoutMs: number, start: UnaryStarter<Response>): Promise<Answer<Response>> {
    return new Promise((resolve, reject) => {
      let headerLeader: string | undefined;
      let trailerLeader: string | undefined;
      const call = start(node, new grpc.Metadata(), { deadline: Date.now() + Math.max(1, timeoutMs) }, (error, response) => {
        // grpc-js runs this callback just before it emits "status"; settle after it so trailers are seen.
        queueMicrotask(() => {
          this.active.delete(call);
          if (error) reject(error);
          else if (response === undefined) reject(new RaftqError(grpc.status.INTERNAL, "empty response", { address: node.address }));
          else resolve({ response, leader: trailerLeader ?? headerLeader });
        });
      });
      this.active.add(call);
      call.on("metadata", (metadata: grpc.Metadata) => {
        headerLeader = leaderFromMetadata(metadata);
      });
      call.on("status", (status: grpc.StatusObject) => {
        trailerLeader = leaderFromMetadata(status.metadata);
      });
    });
  }

  /** Cancels every call in flight; they fail with CANCELLED. */
  cancelAll(): void {
    for (const call of this.active) call.cancel();
    this.active.clear();
  }
}

/** The last error of a retried call, its message saying how long the client kept trying. */
function gaveUp(operation: string, last: RaftqError, attempts: number, elapsedMs: number): RaftqError {
  const message = `${operation}: ${last.message} (gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${elapsedMs} ms)`;
  return new RaftqError(last.grpcCode, message, { cause: last, address: last.address, leader: last.leader });
}
