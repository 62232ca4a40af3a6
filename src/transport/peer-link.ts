import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { RaftBatch } from "../generated/raftq/v1/RaftBatch.js";
import type { RaftClient } from "../generated/raftq/v1/Raft.js";
import type { RaftStreamClosed } from "../generated/raftq/v1/RaftStreamClosed.js";
import type { StateSnapshotReader } from "../node/state-machine.js";
import type { Message, NodeId, SnapshotMessage } from "../raft/types.js";
import { messageToWire } from "./raft-codec.js";
import { RECONNECT_MAX_MS, RECONNECT_MIN_MS, raftClient } from "./raft-service.js";
import { streamSnapshot, type SnapshotTransferLimits } from "./snapshot-sender.js";

/** What a link tells its transport. */
export interface PeerLinkEvents {
  /** The stream to the peer broke (reset, refused). */
  readonly onPeerDown: (peer: NodeId) => void;
  /** A snapshot transfer to the peer failed or was cut short. */
  readonly onSnapshotFailed: (peer: NodeId) => void;
  /** The peer acknowledged a whole snapshot (it may still have refused to install it: the leader probes). */
  readonly onSnapshotSent: (peer: NodeId) => void;
}

/**
 * Everything this node sends to one peer: the long-lived message stream, reopened with backoff when it
 * breaks, and at most one snapshot transfer at a time.
 */
export class PeerLink {
  private readonly client: RaftClient;
  private call: grpc.ClientWritableStream<RaftBatch> | null = null;
  /** Set while the stream's buffer is full: new messages are dropped rather than queued without bound. */
  private congested = false;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private reconnectAtMs = 0;
  private openedAtMs = 0;
  private closed = false;
  private droppedMessages = 0;
  /** Cancels the snapshot transfer in progress, if any. */
  private snapshotTransfer: AbortController | null = null;

  constructor(
    private readonly peer: NodeId,
    /** Where the peer is dialled. */
    readonly address: string,
    private readonly logger: Logger,
    private readonly events: PeerLinkEvents,
  ) {
    this.client = raftClient(address);
  }

  send(messages: Message[]): void {
    const call = this.open();
    if (!call || this.congested) {
      this.droppedMessages += messages.length;
      return;
    }
    if (!call.write({ messages: messages.map(messageToWire) })) this.congested = true;
  }

  /** True while a snapshot transfer to the peer is in progress. */
  get sendingSnapshot(): boolean {
    return this.snapshotTransfer !== null;
  }

  /**
   * Streams `reader`'s state to the peer as `message` names, on a connection of its own; reports a
   * failure through `onSnapshotFailed`. The caller checks `sendingSnapshot` first.
   */
  sendSnapshot(message: SnapshotMessage, reader: StateSnapshotReader, limits: SnapshotTransferLimits): void {
    const transfer = new AbortController();
    this.snapshotTransfer = transfer;
    const client = raftClient(this.address, true);
    const startedMs = Date.now();
    this.logger.info({ peer: this.peer, index: message.snapshot.index }, "sending snapshot");
    streamSnapshot(client, message, reader, limits, transfer.signal)
      .then(
        () => {
          this.logger.info({ peer: this.peer, index: message.snapshot.index, ms: Date.now() - startedMs }, "snapshot sent");
          this.events.onSnapshotSent(this.peer);
        },
        (error: unknown) => {
          this.logger.warn({ peer: this.peer, index: message.snapshot.index, err: error instanceof Error ? error.message : String(error) }, "snapshot transfer failed");
          this.events.onSnapshotFailed(this.peer);
        },
      )
      .finally(() => {
        client.close();
        if (this.snapshotTransfer === transfer) this.snapshotTransfer = null;
      });
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
    this.events.onPeerDown(this.peer);
  }

  /** Ends the stream and cancels a snapshot transfer in progress (which then reports its failure). */
  close(): void {
    this.closed = true;
    this.snapshotTransfer?.abort();
    this.call?.end();
    this.call = null;
    this.client.close();
  }
}
