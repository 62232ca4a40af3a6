import * as grpc from "@grpc/grpc-js";
import type { ProtoGrpcType } from "../generated/queue.js";
import type { QueueClient } from "../generated/raftq/v1/Queue.js";
import type { ClusterClient } from "../generated/raftq/v1/Cluster.js";
import type { Membership, NodeId } from "../raft/types.js";
import { loadProtos } from "../protocol/proto-files.js";
import { FORWARDED_METADATA_KEY, LEADER_METADATA_KEY, type ServerCall } from "./call-context.js";
import { unavailable } from "./grpc-errors.js";
import type { PeerAddresses } from "./peers.js";

const queueProto = grpc.loadPackageDefinition(loadProtos(["raftq/v1/queue.proto"])) as unknown as ProtoGrpcType;

/** The public services' definitions, for the node's gRPC server. */
export const QUEUE_SERVICE = queueProto.raftq.v1.Queue.service;
export const CLUSTER_SERVICE = queueProto.raftq.v1.Cluster.service;

/** A unary method of a generated client, in its (request, metadata, options, callback) form. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

/** What the forwarder needs of the Raft node (RaftNode has it). */
export interface ForwardingNode {
  readonly id: NodeId;
  leaderId(): NodeId;
  /** The membership in force (applied): where each member is reached. */
  membership(): Membership;
}

/** Where a follower sends the calls it cannot serve itself: the current leader, over a cached channel. */
export class LeaderForwarder {
  private readonly queueClients = new Map<string, QueueClient>();
  private readonly clusterClients = new Map<string, ClusterClient>();

  constructor(
    private readonly node: ForwardingNode,
    /** The addresses of --peers: used for a node only until an applied membership names it. */
    private readonly peers: PeerAddresses,
    /** Where this node actually connects to reach a peer, when not its member address (ServerOptions.dialAddresses). */
    private readonly dialAddresses: PeerAddresses,
  ) {}

  /** The address node `id` is reached at as the membership (or --peers) says, if it is known. */
  memberAddress(id: NodeId): string | undefined {
    return this.node.membership().members.find((member) => member.id === id)?.address ?? this.peers.get(id);
  }

  /** The leader's member address, or "" when no leader is known. */
  leaderAddress(): string {
    return this.memberAddress(this.node.leaderId()) ?? "";
  }

  /** The client for the leader's Queue service; UNAVAILABLE when there is no leader to forward to. */
  queueClient(call: ServerCall): QueueClient {
    return this.clientFor(call, this.queueClients, (address) => new queueProto.raftq.v1.Queue(address, grpc.credentials.createInsecure()));
  }

  clusterClient(call: ServerCall): ClusterClient {
    return this.clientFor(call, this.clusterClients, (address) => new queueProto.raftq.v1.Cluster(address, grpc.credentials.createInsecure()));
  }

  private clientFor<C>(call: ServerCall, cache: Map<string, C>, make: (address: string) => C): C {
    if (call.metadata.get(FORWARDED_METADATA_KEY).length > 0) {
      throw unavailable(`node ${this.node.id} is not the leader either (leadership is moving): retry shortly`);
    }
    const leader = this.node.leaderId();
    const address = this.dialAddresses.get(leader) ?? this.memberAddress(leader);
    if (!address) throw unavailable(`node ${this.node.id} knows no leader right now (election in progress or no quorum): retry shortly`);
    let client = cache.get(address);
    if (!client) {
      client = make(address);
      cache.set(address, client);
    }
    return client;
  }

  /** Metadata and options for a forwarded call: marked as forwarded, same deadline as the original. */
  forwardedCall(call: ServerCall, answerByMs: number): { metadata: grpc.Metadata; options: grpc.CallOptions } {
    const metadata = call.metadata.clone();
    metadata.set(FORWARDED_METADATA_KEY, this.node.id);
    metadata.remove(LEADER_METADATA_KEY);
    return { metadata, options: { deadline: answerByMs } };
  }

  /**
   * Forwards a unary call to the leader and resolves with its answer (or rejects with its status). On
   * `signal` (this node shutting down, or the caller gone) the forwarded call is cancelled at once and
   * the caller told to retry, rather than holding the shutdown up.
   */
  forwardUnary<Req, Res>(call: grpc.ServerUnaryCall<Req, Res>, answerByMs: number, method: (client: QueueClient) => UnaryMethod<Req, Res>, signal: AbortSignal): Promise<Res> {
    const client = this.queueClient(call);
    return this.invoke(method(client).bind(client), call, answerByMs, signal);
  }

  forwardClusterUnary<Req, Res>(call: grpc.ServerUnaryCall<Req, Res>, answerByMs: number, method: (client: ClusterClient) => UnaryMethod<Req, Res>, signal: AbortSignal): Promise<Res> {
    const client = this.clusterClient(call);
    return this.invoke(method(client).bind(client), call, answerByMs, signal);
  }

  private invoke<Req, Res>(method: UnaryMethod<Req, Res>, call: grpc.ServerUnaryCall<Req, Res>, answerByMs: number, signal: AbortSignal): Promise<Res> {
    const { metadata, options } = this.forwardedCall(call, answerByMs);
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => {
        upstream.cancel();
        reject(unavailable(`node ${this.node.id} is shutting down while forwarding the call: retry on another node`));
      };
      const upstream = method(call.request, metadata, options, (error, response) => {
        signal.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve(response as Res);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  close(): void {
    for (const client of [...this.queueClients.values(), ...this.clusterClients.values()]) client.close();
    this.queueClients.clear();
    this.clusterClients.clear();
  }
}
