import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { ProtoGrpcType } from "../generated/raft.js";
import type { RaftBatch, RaftBatch__Output } from "../generated/raftq/v1/RaftBatch.js";
import type { RaftClient } from "../generated/raftq/v1/Raft.js";
import type { RaftStreamClosed } from "../generated/raftq/v1/RaftStreamClosed.js";
import type { Message, NodeId } from "../raft/types.js";
import { loadProtos } from "../protocol/proto-files.js";
import { messageFromWire, messageToWire } from "./raft-codec.js";

const raftProto = grpc.loadPackageDefinition(loadProtos(["raftq/v1/raft.proto"])) as unknown as ProtoGrpcType;

/** Raft's service definition, for the node's gRPC server. */
export const RAFT_SERVICE = raftProto.raftq.v1.Raft.service;

/** Large enough for a full Append batch (see RaftConfig.maxBytesPerAppend) plus framing. */
export const MAX_PEER_MESSAGE_BYTES = 64 * 1024 * 1024;

/** How long a broken link waits before reconnecting, doubling up to the maximum. */
const RECONNECT_MIN_MS = 20;
const RECONNECT_MAX_MS = 1000;

/** Carries Raft messages between nodes. Best effort: Raft tolerates lost, late and duplicated messages. */
export interface PeerTransport {
  send(messages: readonly Message[]): void;
  close(): void;
}

/** Notified when a link to a peer breaks (reset, refused): the node may react faster than a timeout. */
export type PeerDownHandler = (peer: NodeId) => void;

/** One node's outbound streams, one long-lived client stream per peer. */
export class GrpcPeerTransport implements PeerTransport {
  private readonly links = new Map<NodeId, PeerLink>();

  constructor(peers: ReadonlyMap<NodeId, string>, logger: Logger, onPeerDown: PeerDownHandler) {
    for (const [id, address] of peers) this.links.set(id, new PeerLink(id, address, logger, onPeerDown));
  }

  send(messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      const batch = byPeer.get(message.to);
      if (batch) batch.push(message);
      else byPeer.set(message.to, [message]);
    }
    for (const [peer, batch] of byPeer) this.links.get(peer)?.send(batch);
  }

  close(): void {
    for (const link of this.links.values()) link.close();
  }
}

/** The outbound stream to one peer, reopened with backoff when it breaks. */
class PeerLink {
  private readonly client: RaftClient;
  private call: grpc.ClientWritableStream<RaftBatch> | null = null;
  /** Set while the stream's buffer is full: new messages are dropped rather than queued without bound. */
  private congested = false;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private reconnectAtMs = 0;
  private openedAtMs = 0;
  private closed = false;
  private droppedMessages = 0;

  constructor(
    private readonly peer: NodeId,
    address: string,
    private readonly logger: Logger,
    private readonly onPeerDown: PeerDownHandler,
  ) {
    this.client = new raftProto.raftq.v1.Raft(address, grpc.credentials.createInsecure(), {
      "grpc.max_send_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.initial_reconnect_backoff_ms": RECONNECT_MIN_MS,
      "grpc.max_reconnect_backoff_ms": RECONNECT_MAX_MS,
    });
  }

  send(messages: Message[]): void {
    const call = this.open();
    if (!call || this.congested) {
      this.droppedMessages += messages.length;
      return;
    }
    if (!call.write({ messages: messages.map(messageToWire) })) this.congested = true;
  }

  private open(): grpc.ClientWritableStream<RaftBatch> | null {
    if (this.call || this.closed || Date.now() < this.reconnectAtMs) return this.call;
    const call = this.client.stream((error: grpc.ServiceError | null, _closed?: RaftStreamClosed) => this.broken(call, error));
    call.on("drain", () => {
      this.congested = false;
    });
    this.call = call;
    this.congested = false;
    this.openedAtMs = Date.now();
    return call;
  }

  private broken(call: grpc.ClientWritableStream<RaftBatch>, error: grpc.ServiceError | null): void {
    if (this.call !== call) return;
    this.call = null;
    if (this.closed) return;
    // A stream that lived a while was healthy: reconnect fast. One that died at once backs off.
    const livedMs = Date.now() - this.openedAtMs;
    this.reconnectDelayMs = livedMs > RECONNECT_MAX_MS ? RECONNECT_MIN_MS : Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
    this.reconnectAtMs = Date.now() + this.reconnectDelayMs;
    this.logger.debug({ peer: this.peer, err: error?.message, dropped: this.droppedMessages }, "peer stream closed");
    this.onPeerDown(this.peer);
  }

  close(): void {
    this.closed = true;
    this.call?.end();
    this.call = null;
    this.client.close();
  }
}

/** The server half of the peer streams: delivers inbound messages, and can end the streams at shutdown. */
export class RaftInbound {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly deliver: (message: Message) => void,
    private readonly logger: Logger,
  ) {}

  /** The Raft service implementation: decodes every batch on an inbound stream and hands each message on. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      stream: (call: grpc.ServerReadableStream<RaftBatch__Output, RaftStreamClosed>, callback: grpc.sendUnaryData<RaftStreamClosed>) => {
        let finished = false;
        const finish = (): void => {
          if (finished) return;
          finished = true;
          this.open.delete(finish);
          callback(null, {});
        };
        this.open.add(finish);
        call.on("data", (batch: RaftBatch__Output) => {
          for (const wire of batch.messages) {
            const message = messageFromWire(wire);
            if (typeof message === "string") this.logger.warn({ peer: call.getPeer() }, message);
            else this.deliver(message);
          }
        });
        call.on("end", finish);
        call.on("error", () => this.open.delete(finish));
      },
    };
  }

  /** Ends every inbound stream, so a graceful server shutdown need not wait for peers to hang up. */
  closeAll(): void {
    for (const finish of [...this.open]) finish();
  }
}
