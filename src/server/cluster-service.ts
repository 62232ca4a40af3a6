import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import type { ClusterClient, ClusterHandlers } from "../generated/raftq/v1/Cluster.js";
import type { Member } from "../generated/raftq/v1/Member.js";
import type { StatusResponse } from "../generated/raftq/v1/StatusResponse.js";
import { isNodeError, NodeErrorCode } from "../node/errors.js";
import type { MembershipChange } from "../raft/membership.js";
import type { NodeId, RaftStatus } from "../raft/types.js";
import { answerByMs, cancellationOf, leaderMetadata, withDeadline } from "./call-context.js";
import { GrpcError, toGrpcError, unavailable } from "./grpc-errors.js";
import type { ForwardingNode, LeaderForwarder, UnaryMethod } from "./leader-forwarder.js";
import { addressProblem, nodeIdProblem } from "./peers.js";

/** How often a transfer checks whether leadership has moved, and a membership change whether it may go. */
const POLL_MS = 20;

/** What the Cluster service needs of the Raft node (RaftNode has it). */
export interface ClusterNode extends ForwardingNode {
  status(): RaftStatus;
  isLeader(): boolean;
  transferLeadership(target: NodeId): { ok: true } | { ok: false; reason: string };
  /** Resolves once the change is committed and applied here; rejects with a NodeError otherwise. */
  proposeMembershipChange(change: MembershipChange): Promise<void>;
}

/** The applied membership as the Cluster service reports it, with each member's replication progress. */
export function clusterMembers(node: ClusterNode): Member[] {
  const { matchIndex } = node.status();
  return node.membership().members.map(({ id, address, voter }) => ({ id, address, voter, matchIndex: matchIndex.get(id) ?? 0 }));
}

/** This node's view of the cluster, as the Status RPC and `raftq status` show it. */
export function clusterStatus(node: ClusterNode, forwarder: LeaderForwarder): StatusResponse {
  const status = node.status();
  return {
    nodeId: status.id,
    role: status.role,
    term: status.term,
    leaderId: status.leader,
    leaderAddress: forwarder.leaderAddress(),
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    members: clusterMembers(node),
  };
}

/** The most caught-up voting follower: the one a leader should hand over to (a learner cannot lead). */
export function bestTransferTarget(node: ClusterNode): NodeId | undefined {
  const voters = new Set(node.membership().members.filter((member) => member.voter).map((member) => member.id));
  let best: { id: NodeId; match: number } | undefined;
  for (const [id, match] of node.status().matchIndex) {
    if (id !== node.id && voters.has(id) && (!best || match > best.match)) best = { id, match };
  }
  return best?.id;
}

/**
 * Hands leadership to `target` (or the most caught-up follower) and resolves with the new leader once
 * this node has stepped down, or rejects when that did not happen by `deadlineMs`. With
 * `waitForNewLeader` false it resolves as soon as this node is no longer the leader, with "" when no new
 * leader is known yet (a node about to stop needs no more: the target may have begun its election and
 * then stopped too).
 */
export async function handOverLeadership(node: ClusterNode, target: NodeId | undefined, deadlineMs: number, waitForNewLeader = true): Promise<NodeId> {
  const to = target || bestTransferTarget(node);
  if (!to) throw new GrpcError(grpc.status.FAILED_PRECONDITION, `node ${node.id} has no follower to hand leadership to`);
  const started = node.transferLeadership(to);
  if (!started.ok) throw new GrpcError(grpc.status.FAILED_PRECONDITION, `cannot transfer leadership to ${to}: ${started.reason}`);
  while (Date.now() < deadlineMs) {
    if (!node.isLeader() && (node.leaderId() !== "" || !waitForNewLeader)) return node.leaderId();
    // Given up by the core: the target's connection broke, or an election timeout passed.
    if (node.isLeader() && node.status().transferTarget !== to) {
      throw unavailable(`the handover to ${to} was given up (it went away or did not take over in time): retry`);
    }
    await sleep(POLL_MS);
  }
  throw unavailable(`leadership did not move to ${to} in time (is it reachable and caught up?): retry`);
}

/**
 * Adds node `id` at `address` as a learner, on the leader; resolves with the members once the change is
 * applied. Idempotent for a member already at that address, so a retry after an unknown outcome is safe.
 */
export async function addMember(node: ClusterNode, id: NodeId, address: string, deadlineMs: number): Promise<Member[]> {
  const members = node.membership().members;
  const existing = members.find((member) => member.id === id);
  if (existing?.address === address) return clusterMembers(node);
  if (existing) {
    throw new GrpcError(grpc.status.ALREADY_EXISTS, `node id "${id}" is already a member at ${existing.address}: remove it first to change its address, or pick another id`);
  }
  const holder = members.find((member) => member.address === address);
  if (holder) throw new GrpcError(grpc.status.ALREADY_EXISTS, `address ${address} already belongs to member "${holder.id}": remove it first, or use another address`);
  await applyChange(node, { kind: "add-learner", id, address }, deadlineMs);
  return clusterMembers(node);
}

/** Removes member `id` (voter or learner), on the leader; resolves with the members once the change is applied. */
export async function removeMember(node: ClusterNode, id: NodeId, deadlineMs: number): Promise<Member[]> {
  if (!node.membership().members.some((member) => member.id === id)) {
    throw new GrpcError(grpc.status.FAILED_PRECONDITION, `node "${id}" is not a member of the cluster (already removed?): see \`raftq cluster status\``);
  }
  await applyChange(node, { kind: "remove", id }, deadlineMs);
  return clusterMembers(node);
}

/**
 * Proposes `change` and resolves once it is applied. Changes go one at a time, and one may be under way
 * that the caller did not start (the leader promoting a learner that caught up, another operator's change):
 * the call then waits for it to be applied and proposes its own, until the deadline, rather than failing
 * for being a moment early.
 */
async function applyChange(node: ClusterNode, change: MembershipChange, deadlineMs: number): Promise<void> {
  for (;;) {
    try {
      return await withDeadline(
        node.proposeMembershipChange(change),
        deadlineMs,
        () =>
          new GrpcError(
            grpc.status.DEADLINE_EXCEEDED,
            `the membership change (${change.kind} ${change.id}) was not applied in time; its outcome is unknown: check \`raftq cluster status\` and retry`,
          ),
      );
    } catch (error) {
      if (!isNodeError(error, NodeErrorCode.MembershipChangePending) || Date.now() + POLL_MS >= deadlineMs) throw error;
    }
    await sleep(POLL_MS);
  }
}

/** The public Cluster service of one node. Status answers with this node's own view, never forwarded. */
export function clusterServiceHandlers(node: ClusterNode, forwarder: LeaderForwarder, shutdown: AbortSignal): ClusterHandlers {
  /** Serves `call` here when this node leads, else forwards it to the leader; answers naming the leader either way. */
  const onLeader = <Req, Res>(
    call: grpc.ServerUnaryCall<Req, Res>,
    callback: grpc.sendUnaryData<Res>,
    method: (client: ClusterClient) => UnaryMethod<Req, Res>,
    serve: (deadlineMs: number) => Promise<Res>,
  ): void => {
    const deadlineMs = answerByMs(call);
    const cancellation = cancellationOf(call, shutdown);
    const work = (async () => (node.isLeader() ? serve(deadlineMs) : forwarder.forwardClusterUnary(call, deadlineMs, method, cancellation.signal)))();
    // Disposed before the answer goes out: grpc-js reports most finished calls as cancelled (call-context.ts).
    work
      .finally(() => cancellation.dispose())
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          const status = toGrpcError(error);
          callback({ code: status.code, details: status.message, metadata: leaderMetadata(forwarder.leaderAddress()) });
        },
      );
  };
  return {
    Status(_call, callback) {
      callback(null, clusterStatus(node, forwarder));
    },
    TransferLeadership(call, callback) {
      onLeader(call, callback, (client) => client.transferLeadership, async (deadlineMs) => ({
        leaderId: await handOverLeadership(node, call.request.targetId, deadlineMs),
      }));
    },
    AddMember(call, callback) {
      const { id, address } = call.request;
      const problem = nodeIdProblem(id) ?? addressProblem(address);
      if (problem) return callback({ code: grpc.status.INVALID_ARGUMENT, details: problem });
      onLeader(call, callback, (client) => client.addMember, async (deadlineMs) => ({ members: await addMember(node, id, address, deadlineMs) }));
    },
    RemoveMember(call, callback) {
      const { id } = call.request;
      const problem = nodeIdProblem(id);
      if (problem) return callback({ code: grpc.status.INVALID_ARGUMENT, details: problem });
      onLeader(call, callback, (client) => client.removeMember, async (deadlineMs) => ({ members: await removeMember(node, id, deadlineMs) }));
    },
  };
}
