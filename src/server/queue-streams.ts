import * as grpc from "@grpc/grpc-js";
import type { Delivery as DeliveryMessage } from "../generated/raftq/v1/Delivery.js";
import type { EnqueueStreamRequest__Output } from "../generated/raftq/v1/EnqueueStreamRequest.js";
import type { EnqueueStreamResponse } from "../generated/raftq/v1/EnqueueStreamResponse.js";
import type { StreamedAnswer } from "../generated/raftq/v1/StreamedAnswer.js";
import type { StreamedEnqueue__Output } from "../generated/raftq/v1/StreamedEnqueue.js";
import type { SubscribeRequest__Output } from "../generated/raftq/v1/SubscribeRequest.js";
import { cycleTrace } from "../node/cycle-trace.js";
import { MAX_FRAME_MESSAGES, acceptsPackedFrames, advertisePackedFrames, packedFrames } from "../protocol/frames.js";
import { deliveryBytes } from "../queue/delivery-size.js";
import type { Delivery } from "../queue/results.js";
import { DEFAULT_PREFETCH } from "../queue/settings.js";
import { validatePrefetch } from "../queue/validation.js";
import { answerByMs, cancellationOf, leaderMetadata, wasForwarded, DEFAULT_CALL_TIMEOUT_MS } from "./call-context.js";
import { invalidArgument, toGrpcError, unavailable } from "./grpc-errors.js";
import type { LeaderForwarder } from "./leader-forwarder.js";
import { waitForLeader } from "./leader-wait.js";
import type { QueueLeader } from "./queue-leader.js";
import { deliveryMessage, enqueueCommand, leaseCommand } from "./queue-requests.js";

/** Most enqueues of one EnqueueStream being replicated at once; the stream is paused beyond it. */
const MAX_STREAM_IN_FLIGHT = 1024;

type SubscribeCall = grpc.ServerWritableStream<SubscribeRequest__Output, DeliveryMessage>;
type EnqueueStreamCall = grpc.ServerDuplexStream<EnqueueStreamRequest__Output, EnqueueStreamResponse>;

function endWithError(call: grpc.ServerWritableStream<unknown, unknown> | EnqueueStreamCall, error: unknown, leaderAddress: string): void {
  const status = toGrpcError(error);
  call.emit("error", { code: status.code, details: status.message, metadata: leaderMetadata(leaderAddress) });
}

/**
 * Serves a streaming call: the leader runs `onLeader`, any other node relays to the leader. The stream
 * ends when the work does; a failure ends it with a status naming the leader.
 */
function streamHandler<Call extends SubscribeCall | EnqueueStreamCall>(
  leader: QueueLeader,
  forwarder: LeaderForwarder,
  shutdown: AbortSignal,
  onLeader: (leader: QueueLeader, call: Call, signal: AbortSignal) => Promise<void>,
  relay: (forwarder: LeaderForwarder, call: Call, signal: AbortSignal) => Promise<void>,
): (call: Call) => void {
  return (call) => {
    const cancellation = cancellationOf(call, shutdown);
    // Async so that a synchronous throw (e.g. no leader to relay to) still ends the stream with a status.
    const work = (async () => {
      if (!leader.node.isLeader() && !wasForwarded(call)) await waitForLeader(leader.node, answerByMs(call), cancellation.signal);
      return leader.node.isLeader() ? onLeader(leader, call, cancellation.signal) : relay(forwarder, call, cancellation.signal);
    })();
    // Disposed before the stream ends: grpc-js may report the finished call as cancelled (call-context.ts).
    work
      .finally(() => cancellation.dispose())
      .then(
        () => call.end(),
        (error: unknown) => endWithError(call, error, forwarder.leaderAddress()),
      );
  };
}

/**
 * Push delivery: keeps up to `prefetch` deliveries leased to this stream and not yet acked, nacked or
 * expired, leasing more as those slots free up. A follower relays the leader's stream.
 */
export function subscribeHandler(leader: QueueLeader, forwarder: LeaderForwarder, shutdown: AbortSignal): grpc.handleServerStreamingCall<SubscribeRequest__Output, DeliveryMessage> {
  return streamHandler(leader, forwarder, shutdown, subscribeOnLeader, relaySubscribe);
}

async function subscribeOnLeader(leader: QueueLeader, call: SubscribeCall, signal: AbortSignal): Promise<void> {
  const request = call.request;
  const prefetch = request.prefetch === 0 ? DEFAULT_PREFETCH : request.prefetch;
  const problem = validatePrefetch(prefetch);
  if (problem) throw problem;
  // Validate the queue and lease settings once, up front.
  leaseCommand(request.queue, prefetch, request.visibilityTimeoutMs, Date.now());
  call.sendMetadata(leaderMetadata(""));
  /** receipt → lease end (ms): deliveries that hold a prefetch slot. */
  const outstanding = new Map<string, number>();
  // A slot frees when its ack is proposed, not applied: the next lease then rides in the ack's Raft batch,
  // and commits only if the ack before it in the log does. (An ack the state machine refuses, for a
  // receipt delivered again since, lets the stream hold one delivery more than prefetch for a while.)
  const stopListening = leader.waiter.onAcksProposed(request.queue, (receipts) => {
    let freed = false;
    for (const receipt of receipts) freed = outstanding.delete(receipt) || freed;
    if (freed) leader.waiter.wakeAll();
  });
  try {
    await leaseWhileRoom(leader, call, signal, prefetch, outstanding);
  } finally {
    stopListening();
  }
}

/** Keeps `prefetch` deliveries outstanding on the stream until it ends or leadership is lost. */
async function leaseWhileRoom(leader: QueueLeader, call: SubscribeCall, signal: AbortSignal, prefetch: number, outstanding: Map<string, number>): Promise<void> {
  const request = call.request;
  while (!signal.aborted) {
    if (!leader.node.isLeader()) throw unavailable(`node ${leader.node.id} lost leadership: resubscribe`);
    const now = Date.now();
    for (const [receipt, leaseEndMs] of outstanding) {
      if (leaseEndMs <= now || !leader.stateMachine.isLeased(request.queue, receipt)) outstanding.delete(receipt);
    }
    const room = prefetch - outstanding.size;
    const known = leader.stateMachine.settingsOf(request.queue) !== undefined;
    if (room > 0 && (!known || leader.stateMachine.hasReady(request.queue, now))) {
      const command = leaseCommand(request.queue, room, request.visibilityTimeoutMs, now);
      const deliveries = await leader.lease(command, now + DEFAULT_CALL_TIMEOUT_MS);
      const visibilityMs = request.visibilityTimeoutMs || leader.stateMachine.settingsOf(request.queue)?.visibilityTimeoutMs || 0;
      for (const delivery of deliveries) outstanding.set(delivery.receipt, now + visibilityMs);
      writeDeliveries(call, deliveries);
      if (deliveries.length > 0) continue;
    }
    const nextLeaseEndMs = Math.min(...outstanding.values());
    await leader.waiter.sleep(request.queue, Math.min(nextLeaseEndMs, Date.now() + DEFAULT_CALL_TIMEOUT_MS), signal);
  }
}

/** Writes a lease's deliveries: packed into frames if the subscriber asked for it, else one a frame. */
function writeDeliveries(call: SubscribeCall, deliveries: readonly Delivery[]): void {
  if (!call.request.packDeliveries) {
    for (const delivery of deliveries) call.write(deliveryMessage(delivery));
    return;
  }
  for (const frame of packedFrames(deliveries, deliveryBytes, deliveryMessage)) call.write(frame);
}

async function relaySubscribe(forwarder: LeaderForwarder, call: SubscribeCall, signal: AbortSignal): Promise<void> {
  const client = forwarder.queueClient(call);
  const { metadata } = forwarder.forwardedCall(call, Infinity);
  const upstream = client.subscribe(call.request, metadata);
  call.sendMetadata(leaderMetadata(forwarder.leaderAddress()));
  signal.addEventListener("abort", () => upstream.cancel(), { once: true });
  await new Promise<void>((resolve, reject) => {
    upstream.on("data", (delivery: DeliveryMessage) => call.write(delivery));
    upstream.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
    upstream.on("end", () => resolve());
  });
}

/**
 * Pipelined enqueue: each message is proposed as soon as its frame arrives (joined with the other enqueues
 * of the same turn into one log entry) and answered by seq once it commits, in whatever order commits
 * land. A follower relays the stream's frames to the leader as they are.
 */
export function enqueueStreamHandler(leader: QueueLeader, forwarder: LeaderForwarder, shutdown: AbortSignal): grpc.handleBidiStreamingCall<EnqueueStreamRequest__Output, EnqueueStreamResponse> {
  return streamHandler(leader, forwarder, shutdown, enqueueStreamOnLeader, relayEnqueueStream);
}

function enqueueStreamOnLeader(leader: QueueLeader, call: EnqueueStreamCall, signal: AbortSignal): Promise<void> {
  call.sendMetadata(advertisePackedFrames(leaderMetadata("")));
  return new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    let ended = false;
    let closed = false;
    const answers = new AnswerWriter(call);
    const close = (error?: Error): void => {
      if (closed) return;
      closed = true;
      stopWatching();
      answers.flush();
      if (error) reject(error);
      else resolve();
    };
    // A deposed leader ends the stream (naming the new leader), so the client reopens it there and
    // re-sends what is unanswered with the same idempotency keys, instead of retrying here forever.
    const stopWatching = leader.node.onLeadershipChange(() => {
      if (!leader.node.isLeader()) close(unavailable(`node ${leader.node.id} is no longer the leader: reopen the stream to the leader`));
    });
    const finishIfDone = (): void => {
      if (ended && inFlight === 0) close();
    };
    const answered = (answer: StreamedAnswer): void => {
      inFlight--;
      if (!closed) answers.add(answer);
      if (inFlight < MAX_STREAM_IN_FLIGHT) call.resume();
      finishIfDone();
    };
    signal.addEventListener("abort", () => close(), { once: true });
    call.on("data", (frame: EnqueueStreamRequest__Output) => {
      if (frame.packAnswers) answers.packed = true;
      const messages = messagesOf(frame);
      cycleTrace?.record("frame-in", messages.length);
      inFlight += messages.length;
      if (inFlight >= MAX_STREAM_IN_FLIGHT) call.pause();
      const byMs = answerByMs(call);
      if (messages.length > MAX_FRAME_MESSAGES) {
        const refusal = invalidArgument(`a frame carries at most ${MAX_FRAME_MESSAGES} messages, this one ${messages.length}: send fewer per frame`);
        for (const { seq } of messages) answered(refusalOf(seq, refusal));
        return;
      }
      for (const message of messages) void answerOne(leader, message, byMs).then(answered);
    });
    call.on("end", () => {
      ended = true;
      finishIfDone();
    });
  });
}

/** The messages a frame carries: its own (if set, or if nothing else is) and those in `more`. */
function messagesOf(frame: EnqueueStreamRequest__Output): StreamedEnqueue__Output[] {
  if (frame.more.length === 0) return [frame];
  return frame.message ? [frame, ...frame.more] : frame.more;
}

/**
 * Writes a stream's answers: one frame each, or, once the client has asked for packed answers, all those
 * settled in one turn of the event loop in one frame (most of a batch commits together).
 */
class AnswerWriter {
  packed = false;
  private pending: StreamedAnswer[] = [];
  private scheduled = false;

  constructor(private readonly call: EnqueueStreamCall) {}

  add(answer: StreamedAnswer): void {
    if (!this.packed) {
      this.call.write(answer);
      return;
    }
    this.pending.push(answer);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const answers = this.pending;
    this.pending = [];
    cycleTrace?.record("answers-out", answers.length);
    for (const frame of packedFrames(answers, answerBytes, (answer) => answer)) this.call.write(frame);
  }
}

/** One streamed enqueue, its failure reported in the answer rather than ending the stream. */
async function answerOne(leader: QueueLeader, request: StreamedEnqueue__Output, byMs: number): Promise<StreamedAnswer> {
  try {
    if (!request.message) throw invalidArgument(`request seq ${request.seq} has no message: set the message field`);
    if (!leader.node.isLeader()) throw unavailable(`node ${leader.node.id} is no longer the leader: resend to the leader`);
    const result = await leader.enqueueOne(enqueueCommand(request.message, leader.autoCreateQueues, Date.now()), byMs);
    return { seq: request.seq, id: result.id, duplicate: result.duplicate };
  } catch (error) {
    return refusalOf(request.seq, error);
  }
}

/** About the bytes of an answer: its error message dominates (the rest is a few varints). */
function answerBytes(answer: StreamedAnswer): number {
  return 32 + 3 * (answer.error?.message?.length ?? 0);
}

function refusalOf(seq: number, error: unknown): StreamedAnswer {
  const status = toGrpcError(error);
  return { seq, error: { code: status.code, message: status.message } };
}

function relayEnqueueStream(forwarder: LeaderForwarder, call: EnqueueStreamCall, signal: AbortSignal): Promise<void> {
  const client = forwarder.queueClient(call);
  const { metadata } = forwarder.forwardedCall(call, Infinity);
  const upstream = client.enqueueStream(metadata);
  // The client may pack its frames only if the leader reads them, whatever this node's version.
  upstream.on("metadata", (received: grpc.Metadata) => {
    const headers = leaderMetadata(forwarder.leaderAddress());
    call.sendMetadata(acceptsPackedFrames(received) ? advertisePackedFrames(headers) : headers);
  });
  signal.addEventListener("abort", () => upstream.cancel(), { once: true });
  return new Promise<void>((resolve, reject) => {
    call.on("data", (request: EnqueueStreamRequest__Output) => upstream.write(request));
    call.on("end", () => upstream.end());
    upstream.on("data", (response: EnqueueStreamResponse) => call.write(response));
    upstream.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
    upstream.on("end", () => resolve());
  });
}
