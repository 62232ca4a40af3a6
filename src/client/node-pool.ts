import { setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { ProtoGrpcType } from "../generated/queue.js";
import type { ClusterClient } from "../generated/raftq/v1/Cluster.js";
import type { QueueClient } from "../generated/raftq/v1/Queue.js";
import { loadProtos } from "../protocol/proto-files.js";
import { RaftqError } from "./errors.js";
import { MAX_NODES, type ResolvedClientOptions } from "./options.js";

/** One cluster node as the client sees it: one channel and the two service stubs sharing it. */
export interface NodeStubs {
  /** host:port, as configured or as named by `raftq-leader` metadata. */
  readonly address: string;
  readonly queue: QueueClient;
  readonly cluster: ClusterClient;
}

type RaftqServices = ProtoGrpcType["raftq"]["v1"];
let services: RaftqServices | undefined;

/** The Queue and Cluster stub constructors, loaded from the .proto once per process. */
function raftqServices(): RaftqServices {
  services ??= (grpc.loadPackageDefinition(loadProtos(["raftq/v1/queue.proto"])) as unknown as ProtoGrpcType).raftq.v1;
  return services;
}

/**
 * The channels to the cluster and the client's belief about who leads it.
 *
 * Calls go to the known leader; without one they go to the configured addresses in turn. The belief is
 * updated from every answer (`raftq-leader` metadata, Cluster.Status) and dropped when the leader fails.
 */
export class NodePool {
  private readonly nodes = new Map<string, { stubs: NodeStubs; channel: grpc.Channel }>();
  private leader: string | undefined;
  /** Index into the configured addresses of the next node to try when no leader is known. */
  private cursor = 0;
  private readonly closedController = new AbortController();

  constructor(private readonly options: ResolvedClientOptions) {
    // Every call sleeping between retries listens here; their number is the caller's concurrency, not a leak.
    setMaxListeners(0, this.closedController.signal);
  }

  /** host:port of the node believed to lead, if any. */
  get leaderAddress(): string | undefined {
    return this.leader;
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.closedController.signal.aborted;
  }

  /** Aborts when the pool closes, to cut backoff sleeps short. */
  get closedSignal(): AbortSignal {
    return this.closedController.signal;
  }

  /** The node the next attempt should go to: the leader if known, else the next configured address. */
  pick(): NodeStubs {
    const address = this.leader ?? this.options.addresses[this.cursor % this.options.addresses.length];
    if (address === undefined) throw new Error("unreachable: a client always has at least one address");
    return this.node(address);
  }

  /** The stubs for `address`, opening its channel on first use. */
  node(address: string): NodeStubs {
    if (this.isClosed) throw closedError();
    const known = this.nodes.get(address);
    if (known) return known.stubs;
    const { Queue, Cluster } = raftqServices();
    const channel = new grpc.Channel(address, this.options.credentials, this.options.channelOptions);
    const stubs: NodeStubs = {
      address,
      queue: new Queue(address, this.options.credentials, { channelOverride: channel }),
      cluster: new Cluster(address, this.options.credentials, { channelOverride: channel }),
    };
    this.nodes.set(address, { stubs, channel });
    return stubs;
  }

  /** Records the leader a node named; ignored when the pool already holds MAX_NODES unrelated channels. */
  learnLeader(address: string | undefined): void {
    if (address === undefined || address === "" || this.isClosed) return;
    if (!this.nodes.has(address) && this.nodes.size >= MAX_NODES) return;
    this.leader = address;
  }

  /**
   * Records that an attempt on `address` failed in a way worth retrying elsewhere. If the failing node
   * named another leader, that is where the next attempt goes; otherwise the belief in `address` is
   * dropped and the next configured address takes its turn.
   */
  attemptFailed(address: string, namedLeader: string | undefined): void {
    if (namedLeader !== undefined && namedLeader !== address) {
      this.learnLeader(namedLeader);
      return;
    }
    if (this.leader === address) this.leader = undefined;
    const index = this.options.addresses.indexOf(address);
    if (index >= 0) this.cursor = index + 1;
  }

  /** Closes every channel; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    if (this.isClosed) return;
    this.closedController.abort();
    for (const { channel } of this.nodes.values()) channel.close();
    this.nodes.clear();
  }
}

/** The error every call on a closed client or publisher fails with. */
export function closedError(): RaftqError {
  return new RaftqError(grpc.status.CANCELLED, "the raftq client is closed");
}
