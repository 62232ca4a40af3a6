import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { RaftBatch__Output } from "../generated/raftq/v1/RaftBatch.js";
import type { RaftStreamClosed } from "../generated/raftq/v1/RaftStreamClosed.js";
import type { StateSnapshotWriter } from "../node/state-machine.js";
import type { Message, NodeId } from "../raft/types.js";
import { messageFromWire } from "./raft-codec.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";

export interface RaftInboundOptions {
  /** This node's id: snapshots addressed to another node are refused. */
  readonly self: NodeId;
  /**
   * Hands a received message to the node (RaftNode.receive). A SnapshotMessage comes only once the
   * whole state it names is staged through `startRestore`'s writer.
   */
  readonly deliver: (message: Message) => void;
  /** Starts staging a received state (ReplicatedStateMachine.startRestore). */
  readonly startRestore: () => StateSnapshotWriter;
  readonly logger: Logger;
  /** An inbound snapshot transfer with no chunk moving for this long is dropped (default 30 s). */
  readonly snapshotIdleTimeoutMs?: number;
}

/** The server half of the peer links: delivers inbound messages and snapshots, and ends them at shutdown. */
export class RaftInbound {
  private readonly open = new Set<() => void>();
  private readonly snapshots: SnapshotReceiver;

  constructor(private readonly options: RaftInboundOptions) {
    this.snapshots = new SnapshotReceiver({
      self: options.self,
      startRestore: options.startRestore,
      deliver: options.deliver,
      logger: options.logger,
      ...(options.snapshotIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.snapshotIdleTimeoutMs }),
    });
  }

  /** The Raft service implementation. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      stream: (call: grpc.ServerReadableStream<RaftBatch__Output, RaftStreamClosed>, callback: grpc.sendUnaryData<RaftStreamClosed>) =>
        this.stream(call, callback),
      installSnapshot: this.snapshots.handle,
    };
  }

  /** Ends every inbound stream and transfer, so a graceful server shutdown need not wait for peers to hang up. */
  closeAll(): void {
    for (const finish of [...this.open]) finish();
    this.snapshots.closeAll();
  }

  /** Decodes every batch on an inbound stream and hands each message on. */
  private stream(call: grpc.ServerReadableStream<RaftBatch__Output, RaftStreamClosed>, callback: grpc.sendUnaryData<RaftStreamClosed>): void {
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
        if (typeof message === "string") this.options.logger.warn({ peer: call.getPeer() }, message);
        else this.options.deliver(message);
      }
    });
    call.on("end", finish);
    call.on("error", () => this.open.delete(finish));
  }
}
