import * as grpc from "@grpc/grpc-js";
import type { EnqueueRequest } from "../generated/raftq/v1/EnqueueRequest.js";
import type { EnqueueStreamRequest } from "../generated/raftq/v1/EnqueueStreamRequest.js";
import type { EnqueueStreamResponse__Output } from "../generated/raftq/v1/EnqueueStreamResponse.js";
import type { StreamedAnswer__Output } from "../generated/raftq/v1/StreamedAnswer.js";
import { acceptsPackedFrames, packedFrames } from "../protocol/frames.js";
import { ReconnectPacer, backoffDelayMs } from "./backoff.js";
import type { Body, EnqueueOptions, EnqueueResult } from "./client.js";
import { RaftqError, errorFromStatus, isStreamBreak, leaderFromMetadata, toRaftqError } from "./errors.js";
import { enqueueRequest } from "./requests.js";
import type { StreamContext } from "./subscription.js";

/** How to publish. */
export interface PublisherOptions {
  /** Most messages sent and not yet answered (1..10000, default 64); `publish` waits while that many are out. */
  maxInFlight?: number;
}

/** How to publish one message: the options of a single enqueue. */
export type PublishOptions = EnqueueOptions;

/**
 * A pipelined producer for one queue over a single EnqueueStream. Each `publish` resolves when the
 * cluster answers that message (answers may come in any order). If the stream breaks, the unanswered
 * messages are sent again on a new stream with their idempotency keys, so none is enqueued twice.
 */
export interface Publisher {
  /** The queue published to. */
  readonly queue: string;

  /** Messages accepted by `publish` and not yet settled (answered, refused or timed out). */
  readonly inFlight: number;

  /**
   * Sends one message; resolves with its id once the cluster has enqueued it. Waits first while
   * `maxInFlight` messages are outstanding. Rejects with a RaftqError when the message is refused
   * (e.g. INVALID_ARGUMENT, RESOURCE_EXHAUSTED) or unanswered within the client's timeout
   * (DEADLINE_EXCEEDED: outcome unknown; publishing again with the same key is safe).
   */
  publish(body: Body, options?: PublishOptions): Promise<EnqueueResult>;

  /** Resolves once every message published so far is settled. */
  flush(): Promise<void>;

  /** Stops accepting messages, waits for the outstanding ones to settle, then ends the stream. */
  close(): Promise<void>;
}

/** The most `maxInFlight` a publisher accepts. */
export const MAX_PUBLISHER_IN_FLIGHT = 10_000;
export const DEFAULT_PUBLISHER_IN_FLIGHT = 64;


type EnqueueStream = grpc.ClientDuplexStream<EnqueueStreamRequest, EnqueueStreamResponse__Output>;

/** One EnqueueStream to one node. */
interface PublishStream {
  readonly call: EnqueueStream;
  readonly address: string;
  /** Opened to the leader another node named (see moveToLeader). */
  readonly afterMove: boolean;
  /** Whether any answer came on it. */
  answered: boolean;
  /** Messages to go in its next frame, written once the current turn of the event loop is over. */
  unsent: Outstanding[];
  /** Half-closed or over: nothing more is written to it. */
  ended: boolean;
  /** The node said it reads packed frames (an older one would read only each frame's first message). */
  packs: boolean;
}

/** A published message waiting for its answer. */
interface Outstanding {
  readonly seq: number;
  readonly message: EnqueueRequest;
  readonly resolve: (result: EnqueueResult) => void;
  readonly reject: (error: RaftqError) => void;
  /** Fires when the message's overall time (the client's timeoutMs) is up. */
  readonly deadline: NodeJS.Timeout;
  /** How often the cluster refused it with a retryable per-message error. */
  refusals: number;
  /** Set while it waits to be sent again after such a refusal. */
  retryTimer: NodeJS.Timeout | undefined;
  /** The stream it was last written to; undefined while it waits for a stream to be sent on. */
  sentOn: PublishStream | undefined;
}

/** A Publisher over Queue.EnqueueStream. */
export class StreamPublisher implements Publisher {
  private readonly maxInFlight: number;
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly slotWaiters: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly pacer: ReconnectPacer;
  private slotsTaken = 0;
  private nextSeq = 1;
  private stream: PublishStream | undefined;
  /**
   * Streams half-closed after their node named another leader: new messages go to the leader, and these
   * end once the node has answered what was sent on them.
   */
  private readonly retiring = new Set<PublishStream>();
  /** A leader a stream moved to and that broke before answering: not moved to again (unreachable?). */
  private unreachableLeader: string | undefined;
  /** The next stream opened follows a move to the leader. */
  private moving = false;
  private reopenTimer: NodeJS.Timeout | undefined;
  private state: "open" | "closing" | "closed" = "open";
  private closing: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    options: PublisherOptions,
    private readonly context: StreamContext,
  ) {
    const maxInFlight = options.maxInFlight ?? DEFAULT_PUBLISHER_IN_FLIGHT;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_PUBLISHER_IN_FLIGHT) {
      throw new TypeError(`publisher maxInFlight must be an integer in 1..${MAX_PUBLISHER_IN_FLIGHT}, got ${maxInFlight}`);
    }
    this.maxInFlight = maxInFlight;
    const { initialBackoffMs, maxBackoffMs, timeoutMs } = context.options;
    this.pacer = new ReconnectPacer(initialBackoffMs, maxBackoffMs, timeoutMs);
  }

  get inFlight(): number {
    return this.slotsTaken;
  }

  async publish(body: Body, options?: PublishOptions): Promise<EnqueueResult> {
    if (this.state !== "open") throw publisherClosed(this.queue);
    const message = enqueueRequest(this.queue, body, options);
    await this.acquireSlot();
    if (this.isClosed()) {
      this.releaseSlot();
      throw publisherClosed(this.queue);
    }
    return new Promise<EnqueueResult>((resolve, reject) => {
      const seq = this.nextSeq++;
      const timeoutMs = this.context.options.timeoutMs;
      const entry: Outstanding = {
        seq,
        message,
        resolve,
        reject,
        deadline: setTimeout(() => this.settle(seq, unanswered(message, timeoutMs)), timeoutMs),
        refusals: 0,
        retryTimer: undefined,
        sentOn: undefined,
      };
      this.outstanding.set(seq, entry);
      this.send(entry);
    });
  }

  flush(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closing ??= this.closeGracefully();
    return this.closing;
  }

  /** Ends at once: outstanding messages are rejected with `error` (their outcome is unknown). */
  abort(error: RaftqError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.reopenTimer);
    this.stream?.call.cancel();
    this.stream = undefined;
    for (const stream of this.retiring) stream.call.cancel();
    this.retiring.clear();
    for (const entry of [...this.outstanding.values()]) this.settle(entry.seq, error);
    this.context.onEnded(this);
  }

  private async closeGracefully(): Promise<void> {
    if (this.state === "open") this.state = "closing";
    await this.flush();
    if (this.state === "closed") return;
    this.state = "closed";
    const stream = this.stream;
    this.stream = undefined;
    if (stream) await endStream(stream.call, this.context.options.attemptTimeoutMs);
    this.context.onEnded(this);
  }

  /** A method rather than a field test, so checks after an await are not narrowed away. */
  private isClosed(): boolean {
    return this.state === "closed";
  }

  private isIdle(): boolean {
    return this.slotsTaken === 0 && this.slotWaiters.length === 0;
  }

  /** Takes one of the maxInFlight slots, waiting in FIFO order when all are taken. */
  private async acquireSlot(): Promise<void> {
    if (this.slotsTaken < this.maxInFlight && this.slotWaiters.length === 0) {
      this.slotsTaken++;
      return;
    }
    await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  /** Frees a slot, handing it straight to the longest waiter if there is one. */
  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) {
      next();
      return;
    }
    this.slotsTaken--;
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private settle(seq: number, outcome: EnqueueResult | RaftqError): void {
    const entry = this.outstanding.get(seq);
    if (!entry) return;
    this.outstanding.delete(seq);
    clearTimeout(entry.deadline);
    clearTimeout(entry.retryTimer);
    if (outcome instanceof RaftqError) entry.reject(outcome);
    else entry.resolve(outcome);
    this.releaseSlot();
  }

  /**
   * Queues `entry` for the current stream's next frame. The messages published in one turn of the event
   * loop (a burst, or the replacements for a frame of answers) go in one frame once the node has said it
   * reads packed frames (until then, one a frame): gRPC's cost per frame is most of a small message's cost.
   */
  private send(entry: Outstanding): void {
    try {
      const stream = this.openStream();
      entry.sentOn = stream;
      if (!stream) return;
      stream.unsent.push(entry);
      if (stream.unsent.length === 1) setImmediate(() => this.writeUnsent(stream));
    } catch (thrown) {
      this.settle(entry.seq, toRaftqError(thrown, this.stream?.address));
    }
  }

  /** Writes the messages queued for `stream` that are still meant for it, in frames within the server's limits. */
  private writeUnsent(stream: PublishStream): void {
    const entries = stream.unsent.filter((entry) => entry.sentOn === stream && this.outstanding.has(entry.seq));
    stream.unsent = [];
    if (stream.ended) return;
    const toWire = (entry: Outstanding) => ({ seq: entry.seq, message: entry.message });
    const frames = stream.packs
      ? packedFrames(entries, (entry) => messageBytes(entry.message), toWire)
      : entries.map((entry) => ({ ...toWire(entry), more: [] }));
    for (const frame of frames) stream.call.write({ ...frame, packAnswers: true });
  }

  /** The current stream, opened (to the leader) if there is none; none while a reopen is pending. */
  private openStream(): PublishStream | undefined {
    if (this.stream) return this.stream;
    if (this.reopenTimer !== undefined || this.state === "closed") return undefined;
    const { pool } = this.context;
    const node = pool.pick();
    const call = node.queue.EnqueueStream();
    const stream: PublishStream = { call, address: node.address, afterMove: this.moving, answered: false, unsent: [], ended: false, packs: false };
    this.stream = stream;
    this.moving = false;
    call.on("metadata", (metadata: grpc.Metadata) => {
      stream.packs = acceptsPackedFrames(metadata);
      const leader = leaderFromMetadata(metadata);
      pool.learnLeader(leader);
      if (leader !== undefined && leader !== node.address) this.moveToLeader(stream, leader);
    });
    call.on("data", (frame: EnqueueStreamResponse__Output) => {
      stream.answered = true;
      this.answered(frame, node.address);
      for (const answer of frame.more) this.answered(answer, node.address);
    });
    call.on("error", () => {}); // the final status arrives through "status"
    call.on("status", (status: grpc.StatusObject) => this.streamEnded(stream, status));
    return stream;
  }

  /**
   * `stream` reached a follower, which relays every message to the leader: an extra hop for each one.
   * New messages go straight to the leader on a new stream; this one is half-closed, and ends once the
   * follower has relayed the answers to what was already sent on it.
   */
  private moveToLeader(stream: PublishStream, leader: string): void {
    if (this.stream !== stream || this.state === "closed" || leader === this.unreachableLeader) return;
    this.stream = undefined;
    this.moving = true;
    this.retiring.add(stream);
    this.writeUnsent(stream);
    stream.ended = true;
    stream.call.end();
  }

  private answered(answer: StreamedAnswer__Output, address: string): void {
    this.pacer.progressed();
    const entry = this.outstanding.get(answer.seq);
    if (!entry) return; // settled already: a timed-out message, or the second answer to a re-sent one
    if (!answer.error) {
      this.settle(entry.seq, { id: answer.id, duplicate: answer.duplicate });
      return;
    }
    const error = new RaftqError(answer.error.code, answer.error.message, { address });
    const keyed = entry.message.idempotencyKey !== undefined;
    const retryable = error.grpcCode === grpc.status.UNAVAILABLE || (keyed && error.grpcCode === grpc.status.DEADLINE_EXCEEDED);
    if (!retryable || this.state === "closed") {
      this.settle(entry.seq, error);
      return;
    }
    const { initialBackoffMs, maxBackoffMs } = this.context.options;
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (this.outstanding.has(entry.seq)) this.send(entry);
    }, backoffDelayMs(entry.refusals++, initialBackoffMs, maxBackoffMs));
  }

  /**
   * The stream is over. Unanswered keyed messages are sent again on a new stream after a backoff;
   * unanswered messages without a key are rejected, since sending them again could enqueue them twice.
   */
  private streamEnded(stream: PublishStream, status: grpc.StatusObject): void {
    stream.ended = true;
    if (this.stream === stream) this.stream = undefined;
    this.retiring.delete(stream);
    const unanswered = [...this.outstanding.values()].filter((entry) => entry.sentOn === stream);
    if (this.state === "closed" || unanswered.length === 0) return;
    const { pool } = this.context;
    const error =
      status.code === grpc.status.OK
        ? new RaftqError(grpc.status.UNAVAILABLE, `the publish stream to "${this.queue}" was ended by the server`, { address: stream.address })
        : errorFromStatus(status, stream.address);
    if (!isStreamBreak(status.code) || pool.isClosed) {
      pool.learnLeader(error.leader);
      this.failUnsent(unanswered, error);
      return;
    }
    // A leader this client cannot reach directly (another network, a NAT) is reached through a relay.
    if (stream.afterMove && !stream.answered) this.unreachableLeader = stream.address;
    pool.attemptFailed(stream.address, error.leader);
    for (const entry of unanswered) {
      entry.sentOn = undefined;
      if (entry.message.idempotencyKey === undefined) this.settle(entry.seq, outcomeUnknown(error));
    }
    const delayMs = this.pacer.failed();
    if (delayMs === undefined) {
      this.failUnsent(unanswered, error);
      return;
    }
    if (this.reopenTimer !== undefined) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      for (const entry of this.outstanding.values()) if (entry.sentOn === undefined && entry.retryTimer === undefined) this.send(entry);
    }, delayMs);
  }

  /**
   * Fails `entries` (unanswered on a stream that ended for good) and those waiting for a stream to be sent
   * on: none will come. Messages in flight on another stream still get their answers there.
   */
  private failUnsent(entries: readonly Outstanding[], error: RaftqError): void {
    const waiting = [...this.outstanding.values()].filter((entry) => entry.sentOn === undefined);
    for (const entry of [...entries, ...waiting]) this.settle(entry.seq, error);
  }
}

/** Half-closes the stream and waits for the server to finish it, cancelling after `graceMs`. */
function endStream(call: EnqueueStream, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => call.cancel(), graceMs);
    call.once("status", () => {
      clearTimeout(timer);
      resolve();
    });
    call.end();
  });
}

/** About the bytes `message` takes in a frame: its body, key and headers (UTF-8 counted at most 3 bytes a char). */
function messageBytes(message: EnqueueRequest): number {
  let bytes = (message.body?.length ?? 0) + 3 * ((message.idempotencyKey?.length ?? 0) + (message.queue?.length ?? 0));
  for (const [key, value] of Object.entries(message.headers ?? {})) bytes += 3 * (key.length + value.length);
  return bytes;
}

function publisherClosed(queue: string): RaftqError {
  return new RaftqError(grpc.status.CANCELLED, `the publisher for "${queue}" is closed`);
}

function unanswered(message: EnqueueRequest, timeoutMs: number): RaftqError {
  const retry =
    message.idempotencyKey === undefined
      ? "it may or may not have been enqueued"
      : `its outcome is unknown: publishing it again with idempotency key "${message.idempotencyKey}" is safe`;
  return new RaftqError(grpc.status.DEADLINE_EXCEEDED, `no answer for a message to "${message.queue}" within ${timeoutMs} ms; ${retry}`);
}

function outcomeUnknown(cause: RaftqError): RaftqError {
  return new RaftqError(
    grpc.status.UNAVAILABLE,
    `the publish stream broke before the message was answered (${cause.message}); it has no idempotency key, so it was not sent again and may or may not have been enqueued`,
    { cause, address: cause.address, leader: cause.leader },
  );
}
