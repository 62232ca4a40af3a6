import * as grpc from "@grpc/grpc-js";
import type { Delivery__Output } from "../generated/raftq/v1/Delivery.js";
import type { SubscribeRequest } from "../generated/raftq/v1/SubscribeRequest.js";
import { ReconnectPacer, sleep } from "./backoff.js";
import { LeasedDelivery, type Delivery, type LeaseActions } from "./delivery.js";
import { RaftqError, errorFromStatus, isStreamBreak, leaderFromMetadata } from "./errors.js";
import type { NodePool } from "./node-pool.js";
import type { ResolvedClientOptions } from "./options.js";

/** How to subscribe. */
export interface SubscribeOptions {
  /** Most deliveries leased to this subscription and not yet acked or nacked (1..1000, default 10). */
  prefetch?: number;
  /** Lease length of every delivery (1..43200000 ms; default: the queue's visibility timeout). */
  visibilityTimeoutMs?: number;
  /** Ends the subscription when aborted, like `close()`. */
  signal?: AbortSignal;
}

/**
 * A push consumer: iterate it with `for await`. It resubscribes (to the leader) when the stream breaks
 * or the leader changes, and throws only when the subscription cannot go on (e.g. NOT_FOUND, or no node
 * answered for the client's timeout). Deliveries not yet acked when it ends return to the queue when
 * their leases end.
 */
export interface Subscription extends AsyncIterableIterator<Delivery, undefined, undefined> {
  /** The queue consumed. */
  readonly queue: string;

  /** The next delivery; done once the subscription has ended. Rejects with a RaftqError when it cannot go on. */
  next(): Promise<IteratorResult<Delivery, undefined>>;

  /** Ends the subscription (what `break` in a `for await` calls) and resolves once it has ended. */
  return(): Promise<IteratorResult<Delivery, undefined>>;

  /** Ends the subscription: the stream is cancelled and a pending `next()` resolves as done. */
  close(): void;
}

/** What a long-lived stream needs from its client. */
export interface StreamContext {
  readonly pool: NodePool;
  readonly options: ResolvedClientOptions;
  /** Called once when `owner` (a subscription or publisher) has ended for good. */
  readonly onEnded: (owner: object) => void;
  /**
   * When no leader is known yet, asks the node a new stream would go to which node leads (one Status
   * call; a failure is left to the stream's own attempt to report). A stream opened on a follower is
   * relayed through it for as long as it lives.
   */
  readonly findLeader: () => Promise<void>;
}


/**
 * A Subscription over Queue.Subscribe. The grpc stream is read in flowing mode without local limit:
 * the server never leases more than `prefetch` unacked deliveries to it, which bounds the buffer.
 */
export class StreamSubscription implements Subscription {
  private readonly buffered: Delivery[] = [];
  private readonly stopped = new AbortController();
  private readonly generator: AsyncGenerator<Delivery, undefined, undefined>;
  private wake: (() => void) | undefined;
  private call: grpc.ClientReadableStream<Delivery__Output> | undefined;
  private closed = false;

  constructor(
    readonly queue: string,
    private readonly request: SubscribeRequest,
    private readonly actions: LeaseActions,
    private readonly context: StreamContext,
    private readonly signal?: AbortSignal,
  ) {
    this.generator = this.run();
    if (signal?.aborted) this.close();
    else signal?.addEventListener("abort", this.close, { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Delivery, undefined>> {
    return this.generator.next();
  }

  async return(): Promise<IteratorResult<Delivery, undefined>> {
    this.close();
    return this.generator.return(undefined);
  }

  readonly close = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener("abort", this.close);
    this.call?.cancel();
    this.stopped.abort();
    this.notify();
    this.context.onEnded(this);
  };

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async *run(): AsyncGenerator<Delivery, undefined, undefined> {
    const { pool, options } = this.context;
    const pacer = new ReconnectPacer(options.initialBackoffMs, options.maxBackoffMs, options.timeoutMs);
    try {
      await this.context.findLeader();
      while (!this.closed && !pool.isClosed) {
        const node = pool.pick();
        const openedAtMs = Date.now();
        const attempt = { progressed: false, finished: undefined as grpc.StatusObject | undefined };
        const call = node.queue.Subscribe(this.request);
        this.call = call;
        // Headers alone are no progress: a relaying follower sends them before it finds out there is no leader.
        call.on("metadata", (metadata: grpc.Metadata) => pool.learnLeader(leaderFromMetadata(metadata)));
        call.on("data", (frame: Delivery__Output) => {
          attempt.progressed = true;
          this.buffered.push(new LeasedDelivery(this.queue, frame, this.actions));
          for (const message of frame.more) this.buffered.push(new LeasedDelivery(this.queue, message, this.actions));
          this.notify();
        });
        call.on("error", () => {}); // the final status arrives through "status"
        call.on("status", (status: grpc.StatusObject) => {
          attempt.finished = status;
          this.notify();
        });

        while (!this.closed) {
          const delivery = this.buffered.shift();
          if (delivery) yield delivery;
          else if (attempt.finished) break;
          else await new Promise<void>((resolve) => (this.wake = resolve));
        }
        call.cancel();
        this.call = undefined;
        const status = attempt.finished;
        if (this.closed || pool.isClosed || status === undefined) return undefined;

        const error =
          status.code === grpc.status.OK
            ? new RaftqError(grpc.status.UNAVAILABLE, `the subscription to "${this.queue}" was ended by the server`, { address: node.address })
            : errorFromStatus(status, node.address);
        if (!isStreamBreak(status.code)) {
          pool.learnLeader(error.leader);
          throw error;
        }
        if (attempt.progressed || Date.now() - openedAtMs >= options.attemptTimeoutMs) pacer.progressed();
        pool.attemptFailed(node.address, error.leader);
        const delayMs = pacer.failed();
        if (delayMs === undefined) throw error;
        await sleep(delayMs, this.stopped.signal);
      }
      return undefined;
    } finally {
      this.close();
    }
  }
}
