/**
 * The follower's half of a snapshot transfer: stages the state arriving on an InstallSnapshot call and
 * hands the snapshot to the node only once every chunk is safely written.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { SnapshotAck } from "../generated/raftq/v1/SnapshotAck.js";
import type { SnapshotChunk__Output } from "../generated/raftq/v1/SnapshotChunk.js";
import type { StateSnapshotWriter } from "../node/state-machine.js";
import type { NodeId, SnapshotMessage } from "../raft/types.js";
import { GrpcError } from "../server/grpc-errors.js";
import { IdleWatchdog } from "./idle-watchdog.js";
import { MAX_SNAPSHOT_CHUNK_BYTES, snapshotMessageFromWire } from "./snapshot-header.js";
import { DEFAULT_SNAPSHOT_LIMITS } from "./snapshot-sender.js";

export interface SnapshotReceiverOptions {
  /** This node: a snapshot addressed to another node is refused. */
  readonly self: NodeId;
  /** Starts staging a received state (ReplicatedStateMachine.startRestore). */
  readonly startRestore: () => StateSnapshotWriter;
  /** Hands the snapshot to the node (RaftNode.receive), once its whole state is staged. */
  readonly deliver: (message: SnapshotMessage) => void;
  readonly logger: Logger;
  /** A transfer with no chunk arriving or written for this long is dropped. */
  readonly idleTimeoutMs?: number;
}

/** One inbound transfer: the call it arrives on, and how to make it stop. */
class InboundTransfer {
  /** Set when this side ended the transfer (superseded, stalled, shutting down). */
  failure: GrpcError | null = null;
  term = 0;
  readonly finished: Promise<void>;
  finish: () => void = () => undefined;

  constructor(private readonly call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>) {
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  /** Ends the transfer: the read loop throws at its next step, and the writer is aborted. */
  fail(error: GrpcError): void {
    this.failure ??= error;
    this.call.destroy(error);
  }
}

/**
 * Receives snapshots one at a time. A newer transfer (from a leader of at least the same term)
 * supersedes one in progress, which is then dropped: its writer is aborted before the new one starts,
 * since a state machine stages one state at a time.
 */
export class SnapshotReceiver {
  private current: InboundTransfer | null = null;
  private readonly idleTimeoutMs: number;

  constructor(private readonly options: SnapshotReceiverOptions) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_SNAPSHOT_LIMITS.idleTimeoutMs;
  }

  /** The InstallSnapshot method implementation. */
  readonly handle = (call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, callback: grpc.sendUnaryData<SnapshotAck>): void => {
    const transfer = new InboundTransfer(call);
    this.receive(call, transfer).then(
      () => callback(null, {}),
      (thrown: unknown) => {
        const error = transfer.failure ?? asGrpcError(thrown);
        this.options.logger.warn({ peer: call.getPeer(), err: error.message }, "snapshot transfer dropped");
        callback({ code: error.code, details: error.message });
      },
    );
  };

  /** Drops the transfer in progress, so a graceful shutdown need not wait for it. */
  closeAll(): void {
    this.current?.fail(new GrpcError(grpc.status.UNAVAILABLE, `node ${this.options.self} is shutting down`));
  }

  private async receive(call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, transfer: InboundTransfer): Promise<void> {
    const watchdog = new IdleWatchdog(this.idleTimeoutMs, () =>
      transfer.fail(new GrpcError(grpc.status.DEADLINE_EXCEEDED, `no snapshot chunk arrived for ${this.idleTimeoutMs} ms`)),
    );
    let message: SnapshotMessage | null = null;
    let writer: StateSnapshotWriter | null = null;
    let complete = false;
    let chunks = 0;
    let bytes = 0;
    try {
      for await (const chunk of call as AsyncIterable<SnapshotChunk__Output>) {
        watchdog.touch();
        if (complete) throw protocolError("a chunk arrived after the end marker");
        if (chunk.part === "header" && chunk.header) {
          if (message) throw protocolError("a second header arrived");
          message = this.parseHeader(chunk.header);
          await this.claim(transfer, message.term);
          writer = this.options.startRestore();
        } else if (chunk.part === "data" && chunk.data) {
          if (!writer) throw protocolError("data arrived before the header");
          if (chunk.data.byteLength > MAX_SNAPSHOT_CHUNK_BYTES) {
            throw protocolError(`a ${chunk.data.byteLength}-byte chunk arrived; at most ${MAX_SNAPSHOT_CHUNK_BYTES} are accepted`);
          }
          chunks++;
          bytes += chunk.data.byteLength;
          await writer.write(chunk.data);
          watchdog.touch();
        } else if (chunk.part === "end" && chunk.end) {
          if (!writer) throw protocolError("the end marker arrived before the header");
          if (chunk.end.chunks !== chunks || chunk.end.bytes !== bytes) {
            throw protocolError(`the sender sent ${chunk.end.chunks} chunks (${chunk.end.bytes} bytes) but ${chunks} (${bytes} bytes) arrived`);
          }
          complete = true;
        } else {
          throw protocolError("an empty chunk arrived");
        }
        if (transfer.failure) throw transfer.failure;
      }
      if (transfer.failure) throw transfer.failure;
      if (!message || !complete) throw protocolError("the stream ended before the snapshot was complete");
      this.options.logger.info({ from: message.from, index: message.snapshot.index, chunks, bytes }, "snapshot received");
      this.release(transfer);
      this.options.deliver(message);
    } catch (error) {
      // The stream broke or this side gave up: what was staged must not be mistaken for a whole state.
      if (writer) await writer.abort().catch((abortError: unknown) => this.options.logger.error({ err: abortError }, "aborting a snapshot staging failed"));
      throw error;
    } finally {
      watchdog.stop();
      this.release(transfer);
      transfer.finish();
    }
  }

  private parseHeader(header: NonNullable<SnapshotChunk__Output["header"]>): SnapshotMessage {
    const message = snapshotMessageFromWire(header);
    if (typeof message === "string") throw protocolError(message);
    if (message.to !== this.options.self) {
      throw protocolError(`the snapshot is addressed to node "${message.to}" but reached node "${this.options.self}": check the peer addresses`);
    }
    return message;
  }

  /** Makes `transfer` the one in progress, after the one it supersedes has let go of its staging. */
  private async claim(transfer: InboundTransfer, term: number): Promise<void> {
    const previous = this.current;
    if (previous && previous.term > term) {
      throw new GrpcError(grpc.status.FAILED_PRECONDITION, `a snapshot of a newer term (${previous.term}) is being received`);
    }
    transfer.term = term;
    this.current = transfer;
    if (previous) {
      previous.fail(new GrpcError(grpc.status.ABORTED, "superseded by a newer snapshot transfer"));
      await previous.finished;
    }
    if (transfer.failure) throw transfer.failure;
  }

  private release(transfer: InboundTransfer): void {
    if (this.current === transfer) this.current = null;
  }
}

function protocolError(problem: string): GrpcError {
  return new GrpcError(grpc.status.INVALID_ARGUMENT, `snapshot transfer refused: ${problem}`);
}

function asGrpcError(error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new GrpcError(grpc.status.UNAVAILABLE, `snapshot transfer broken: ${message}`);
}
