import * as grpc from "@grpc/grpc-js";
import type { ProtoGrpcType } from "../generated/raft.js";
import type { RaftClient } from "../generated/raftq/v1/Raft.js";
import { FLOW_CONTROL_CHANNEL_OPTIONS } from "../protocol/flow-control.js";
import { loadProtos } from "../protocol/proto-files.js";

const raftProto = grpc.loadPackageDefinition(loadProtos(["raftq/v1/raft.proto"])) as unknown as ProtoGrpcType;

/** Raft's service definition, for the node's gRPC server. */
export const RAFT_SERVICE = raftProto.raftq.v1.Raft.service;

/** Large enough for a full Append batch (see RaftConfig.maxBytesPerAppend) plus framing. */
export const MAX_PEER_MESSAGE_BYTES = 64 * 1024 * 1024;

/** How long a broken link waits before reconnecting, doubling up to the maximum. */
export const RECONNECT_MIN_MS = 20;
export const RECONNECT_MAX_MS = 1000;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...FLOW_CONTROL_CHANNEL_OPTIONS,
  "grpc.max_send_message_length": MAX_PEER_MESSAGE_BYTES,
  "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.initial_reconnect_backoff_ms": RECONNECT_MIN_MS,
  "grpc.max_reconnect_backoff_ms": RECONNECT_MAX_MS,
};

/**
 * A Raft client for the peer at `address`. With `ownConnection`, the client does not share the TCP
 * connection other clients of that address use: a snapshot's megabytes then never queue up in front of
 * the heartbeats on the long-lived stream (a delayed heartbeat would start a needless election).
 */
export function raftClient(address: string, ownConnection = false): RaftClient {
  const options = ownConnection ? { ...CHANNEL_OPTIONS, "grpc.use_local_subchannel_pool": 1 } : CHANNEL_OPTIONS;
  return new raftProto.raftq.v1.Raft(address, grpc.credentials.createInsecure(), options);
}
