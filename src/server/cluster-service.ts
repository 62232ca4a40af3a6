import * as grpc from "@grpc/grpc-js";
import type { ClusterHandlers } from "../generated/raftq/v1/Cluster.js";
import type { StatusResponse } from "../generated/raftq/v1/StatusResponse.js";
import type { RaftNode } from "../node/raft-node.js";
import { Role, type NodeId } from "../raft/types.js";
import { answerByMs, cancellationOf, leaderMetadata } from "./call-context.js";
import { GrpcError, toGrpcError, unavailable } from "./grpc-errors.js";
import type { LeaderForwarder } from "./leader-forwarder.js";
import type { PeerAddresses } from "./peers.js";

/** How often a transfer checks whether leadership has moved. */
const TRANSFER_POLL_MS = 20;

/** This node's view of the cluster, as the Status RPC and `raftq status` show it. */
export function clusterStatus(node: RaftNode<unknown>, peers: PeerAddresses): StatusResponse {
  const status = node.status();
  return {
    nodeId: status.id,
    role: status.role,
    term: status.term,
    leaderId: status.leader,
    leaderAddress: peers.get(status.leader) ?? "",
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    members: [...peers].map(([id, address]) => ({ id, address, voter: true, matchIndex: status.matchIndex.get(id) ?? 0 })),
  };
}

/** The most caught-up follower: the one a leader should hand over to. */
export function bestTransferTarget(node: RaftNode<unknown>): NodeId | undefined {
  let best: { id: NodeId; match: number } | undefined;
  for (const [id, match] of node.status().matchIndex) {
    if (id !== node.id && (!best || match > best.match)) best = { id, match };
  }
  return best?.id;
}

/**
 * Hands leadership to `target` (or the most caught-up follower) and resolves with the new leader once
 * this node has stepped down, or rejects when that did not happen by `deadlineMs`.
 */
export async function handOverLeadership(node: RaftNode<unknown>, target: NodeId | undefined, deadlineMs: number): Promise<NodeId> {
  const to = target || bestTransferTarget(node);
  if (!to) throw new GrpcError(grpc.status.FAILED_PRECONDITION, `node ${node.id} has no follower to hand leadership to`);
  const started = node.transferLeadership(to);
  if (!started.ok) throw new GrpcError(grpc.status.FAILED_PRECONDITION, `cannot transfer leadership to ${to}: ${started.reason}`);
  while (Date.now() < deadlineMs) {
    if (!node.isLeader() && node.leaderId() !== "") return node.leaderId();
    await new Promise((resolve) => setTimeout(resolve, TRANSFER_POLL_MS));
  }
  throw unavailable(`leadership did not move to ${to} in time (is it reachable and caught up?): retry`);
}

/** The public Cluster service of one node. Status answers with this node's own view, never forwarded. */
export function clusterServiceHandlers(node: RaftNode<unknown>, peers: PeerAddresses, forwarder: LeaderForwarder, shutdown: AbortSignal): ClusterHandlers {
  return {
    Status(_call, callback) {
      callback(null, clusterStatus(node, peers));
    },
    TransferLeadership(call, callback) {
      const deadlineMs = answerByMs(call);
      const cancellation = cancellationOf(call, shutdown);
      const work = (async () =>
        node.status().role === Role.Leader
          ? { leaderId: await handOverLeadership(node, call.request.targetId, deadlineMs) }
          : forwarder.forwardClusterUnary(call, deadlineMs, (client) => client.transferLeadership, cancellation.signal))();
      work.then(
        (response) => callback(null, response),
        (error: unknown) => {
          const status = toGrpcError(error);
          callback({ code: status.code, details: status.message, metadata: leaderMetadata(forwarder.leaderAddress()) });
        },
      ).finally(() => cancellation.dispose());
    },
  };
}
