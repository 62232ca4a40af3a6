import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { QueueHandlers } from "../generated/raftq/v1/Queue.js";
import type { QueueClient } from "../generated/raftq/v1/Queue.js";
import { answerByMs, leaderMetadata, type ServerCall } from "./call-context.js";
import { toGrpcError } from "./grpc-errors.js";
import type { LeaderForwarder } from "./leader-forwarder.js";
import type { QueueLeader } from "./queue-leader.js";
import {
  ackCommand,
  checkQueueName,
  createQueueCommand,
  deliveryMessage,
  dequeueCommand,
  enqueueBatchCommand,
  enqueueCommand,
  extendLeaseCommand,
  nackCommand,
  statsMessage,
} from "./queue-requests.js";
import { enqueueStreamHandler, subscribeHandler } from "./queue-streams.js";

/** The generated client's unary method for the same RPC, used to forward a call to the leader. */
type ForwardMethod<Req, Res> = (client: QueueClient) => (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

/**
 * Serves a unary call: the leader runs `onLeader`, any other node forwards to the leader. Every answer
 * (errors too) names the leader in metadata so clients can go straight there.
 */
function unary<Req, Res>(
  leader: QueueLeader,
  forwarder: LeaderForwarder,
  logger: Logger,
  forward: ForwardMethod<NoInfer<Req>, NoInfer<Res>>,
  onLeader: (request: Req, answerByMs: number, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const deadlineMs = answerByMs(call);
    // Async so that a synchronous throw (e.g. no leader to forward to) still becomes a proper status.
    const work = (async () =>
      leader.node.isLeader() ? onLeader(call.request, deadlineMs, call) : forwarder.forwardUnary(call, deadlineMs, forward))();
    work.then(
      (response) => {
        call.sendMetadata(leaderMetadata(forwarder.leaderAddress()));
        callback(null, response);
      },
      (error: unknown) => {
        const status = toGrpcError(error);
        if (status.code === grpc.status.INTERNAL) logger.error({ err: error }, "internal error serving a call");
        callback({ code: status.code, details: status.message, metadata: leaderMetadata(forwarder.leaderAddress()) });
      },
    );
  };
}

/** The public Queue service of one node. */
export function queueServiceHandlers(leader: QueueLeader, forwarder: LeaderForwarder, shutdown: AbortSignal): QueueHandlers {
  const logger = leader.logger;
  const autoCreate = leader.autoCreateQueues;
  const sm = leader.stateMachine;
  return {
    Enqueue: unary(leader, forwarder, logger, (c) => c.enqueue, async (request, by) => {
      const command = enqueueCommand(request, autoCreate, Date.now());
      if (leader.unsafeAckBeforeCommit) {
        // A deliberate bug for proving the chaos checker (see ServerOptions): answers before commit.
        leader.propose(command, by).catch(() => undefined);
        return { id: 0, duplicate: false };
      }
      const result = await leader.propose(command, by);
      return { id: result.ids[0], duplicate: result.duplicates[0] };
    }),
    EnqueueBatch: unary(leader, forwarder, logger, (c) => c.enqueueBatch, async (request, by) => {
      const result = await leader.propose(enqueueBatchCommand(request.queue, request.messages, autoCreate, Date.now()), by);
      return { ids: [...result.ids], duplicates: [...result.duplicates] };
    }),
    Dequeue: unary(leader, forwarder, logger, (c) => c.dequeue, async (request, by, call) => {
      const { command, waitMs } = dequeueCommand(request, Date.now());
      const cancellation = cancellationOf(call, shutdown);
      try {
        const result = await leader.leaseWithWait(command, Date.now() + waitMs, by, cancellation.signal);
        return { messages: result.deliveries.map(deliveryMessage) };
      } finally {
        cancellation.dispose();
      }
    }),
    Ack: unary(leader, forwarder, logger, (c) => c.ack, async (request, by) => {
      const result = await leader.propose(ackCommand(request, Date.now()), by);
      return { acked: result.acked, refusedReceipts: [...result.refusedReceipts] };
    }),
    Nack: unary(leader, forwarder, logger, (c) => c.nack, async (request, by) => {
      const result = await leader.propose(nackCommand(request, Date.now()), by);
      return { nacked: result.nacked, refusedReceipts: [...result.refusedReceipts] };
    }),
    ExtendLease: unary(leader, forwarder, logger, (c) => c.extendLease, async (request, by) => {
      const result = await leader.propose(extendLeaseCommand(request, Date.now()), by);
      return { extended: result.extended, refusedReceipts: [...result.refusedReceipts] };
    }),
    CreateQueue: unary(leader, forwarder, logger, (c) => c.createQueue, async (request, by) => {
      return leader.propose(createQueueCommand(request, Date.now()), by);
    }),
    DeleteQueue: unary(leader, forwarder, logger, (c) => c.deleteQueue, async (request, by) => {
      checkQueueName(request.queue);
      return leader.propose({ kind: "deleteQueue", nowMs: Date.now(), queue: request.queue }, by);
    }),
    PurgeQueue: unary(leader, forwarder, logger, (c) => c.purgeQueue, async (request, by) => {
      checkQueueName(request.queue);
      return leader.propose({ kind: "purgeQueue", nowMs: Date.now(), queue: request.queue }, by);
    }),
    ListQueues: unary(leader, forwarder, logger, (c) => c.listQueues, async (_request, by) => {
      await leader.readBarrier(by);
      return { queues: sm.listQueues() };
    }),
    GetQueueStats: unary(leader, forwarder, logger, (c) => c.getQueueStats, async (request, by) => {
      checkQueueName(request.queue);
      await leader.readBarrier(by);
      const stats = sm.stats(request.queue, Date.now());
      if (!stats.ok) throw stats.error;
      return statsMessage(stats.value);
    }),
    Subscribe: subscribeHandler(leader, forwarder, shutdown),
    EnqueueStream: enqueueStreamHandler(leader, forwarder, shutdown),
  };
}

/** Aborts when the caller cancels or the server shuts down; dispose() once the call is answered. */
export function cancellationOf(call: ServerCall, shutdown: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  call.on("cancelled", abort);
  if (shutdown.aborted) abort();
  else shutdown.addEventListener("abort", abort, { once: true });
  return { signal: controller.signal, dispose: () => shutdown.removeEventListener("abort", abort) };
}
