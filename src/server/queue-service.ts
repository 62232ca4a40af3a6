import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { QueueHandlers } from "../generated/raftq/v1/Queue.js";
import type { QueueClient } from "../generated/raftq/v1/Queue.js";
import { answerByMs, cancellationOf, leaderMetadata, wasForwarded } from "./call-context.js";
import { MAX_WAIT_MS } from "../queue/limits.js";
import { toGrpcError } from "./grpc-errors.js";
import type { LeaderForwarder } from "./leader-forwarder.js";
import { waitForLeader } from "./leader-wait.js";
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

/** What every unary handler of one node shares. */
interface UnaryContext {
  readonly leader: QueueLeader;
  readonly forwarder: LeaderForwarder;
  readonly logger: Logger;
  /** Aborted when the server shuts down: long polls end and forwarded calls are cancelled. */
  readonly shutdown: AbortSignal;
}

/**
 * Serves a unary call: the leader runs `onLeader`, any other node forwards to the leader. Every answer
 * (errors too) names the leader in metadata so clients can go straight there. `waitMsOf` extends the
 * server's own time limit for a long poll.
 */
function unary<Req, Res>(
  context: UnaryContext,
  forward: ForwardMethod<NoInfer<Req>, NoInfer<Res>>,
  onLeader: (request: Req, answerByMs: number, signal: AbortSignal) => Promise<Res>,
  waitMsOf: (request: Req) => number = () => 0,
): grpc.handleUnaryCall<Req, Res> {
  const { leader, forwarder, logger, shutdown } = context;
  return (call, callback) => {
    const cancellation = cancellationOf(call, shutdown);
    // Async so that a synchronous throw (e.g. no leader to forward to) still becomes a proper status.
    const work = (async () => {
      const deadlineMs = answerByMs(call, waitMsOf(call.request));
      if (!leader.node.isLeader() && !wasForwarded(call)) await waitForLeader(leader.node, deadlineMs, cancellation.signal);
      return leader.node.isLeader()
        ? onLeader(call.request, deadlineMs, cancellation.signal)
        : forwarder.forwardUnary(call, deadlineMs, forward, cancellation.signal);
    })();
    // Disposed before the answer goes out: grpc-js reports most finished calls as cancelled (call-context.ts).
    work
      .finally(() => cancellation.dispose())
      .then(
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
  const context: UnaryContext = { leader, forwarder, logger: leader.logger, shutdown };
  const autoCreate = leader.autoCreateQueues;
  return {
    Enqueue: unary(context, (c) => c.enqueue, async (request, by) => {
      const command = enqueueCommand(request, autoCreate, Date.now());
      if (leader.unsafeAckBeforeCommit) {
        // A deliberate bug for proving the chaos checker (see ServerOptions): answers before commit.
        leader.propose(command, by).catch(() => undefined);
        return { id: 0, duplicate: false };
      }
      return leader.enqueueOne(command, by);
    }),
    EnqueueBatch: unary(context, (c) => c.enqueueBatch, async (request, by) => {
      const result = await leader.propose(enqueueBatchCommand(request.queue, request.messages, autoCreate, Date.now()), by);
      return { ids: [...result.ids], duplicates: [...result.duplicates] };
    }),
    Dequeue: unary(context, (c) => c.dequeue, async (request, by, signal) => {
      const { command, waitMs } = dequeueCommand(request, Date.now());
      const deliveries = await leader.leaseWithWait(command, Date.now() + waitMs, by, signal);
      return { messages: deliveries.map(deliveryMessage) };
    }, (request) => Math.min(request.waitMs, MAX_WAIT_MS)),
    Ack: unary(context, (c) => c.ack, async (request, by) => {
      const result = await leader.propose(ackCommand(request, Date.now()), by);
      return { acked: result.acked, refusedReceipts: [...result.refusedReceipts] };
    }),
    Nack: unary(context, (c) => c.nack, async (request, by) => {
      const result = await leader.propose(nackCommand(request, Date.now()), by);
      return { nacked: result.nacked, refusedReceipts: [...result.refusedReceipts] };
    }),
    ExtendLease: unary(context, (c) => c.extendLease, async (request, by) => {
      const result = await leader.propose(extendLeaseCommand(request, Date.now()), by);
      return { extended: result.extended, refusedReceipts: [...result.refusedReceipts] };
    }),
    CreateQueue: unary(context, (c) => c.createQueue, async (request, by) => {
      return leader.propose(createQueueCommand(request, Date.now()), by);
    }),
    DeleteQueue: unary(context, (c) => c.deleteQueue, async (request, by) => {
      checkQueueName(request.queue);
      return leader.propose({ kind: "deleteQueue", nowMs: Date.now(), queue: request.queue }, by);
    }),
    PurgeQueue: unary(context, (c) => c.purgeQueue, async (request, by) => {
      checkQueueName(request.queue);
      return leader.propose({ kind: "purgeQueue", nowMs: Date.now(), queue: request.queue }, by);
    }),
    ListQueues: unary(context, (c) => c.listQueues, async (_request, by) => {
      await leader.readBarrier(by);
      return { queues: leader.stateMachine.listQueues() };
    }),
    GetQueueStats: unary(context, (c) => c.getQueueStats, async (request, by) => {
      checkQueueName(request.queue);
      await leader.readBarrier(by);
      const stats = leader.stateMachine.stats(request.queue, Date.now());
      if (!stats.ok) throw stats.error;
      return statsMessage(stats.value);
    }),
    Subscribe: subscribeHandler(leader, forwarder, shutdown),
    EnqueueStream: enqueueStreamHandler(leader, forwarder, shutdown),
  };
}
