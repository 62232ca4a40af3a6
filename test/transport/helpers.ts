/**
 * Shared helpers for the transport tests: a real gRPC server running RaftInbound on a free port, a
 * GrpcPeerTransport towards it, and in-memory snapshot readers and writers that count what they did.
 */
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach } from "vitest";
import { freePorts } from "../../src/chaos/ports.js";
import type { StateSnapshotReader, StateSnapshotWriter } from "../../src/node/state-machine.js";
import { MessageType, type Membership, type Message, type NodeId, type SnapshotMessage } from "../../src/raft/types.js";
import { GrpcPeerTransport, type GrpcPeerTransportOptions } from "../../src/transport/peer-transport.js";
import { RaftInbound } from "../../src/transport/raft-inbound.js";
import { MAX_PEER_MESSAGE_BYTES, RAFT_SERVICE } from "../../src/transport/raft-service.js";

export const silentLogger = pino({ level: "silent" });

export const MEMBERSHIP: Membership = {
  members: [
    { id: "n1", address: "127.0.0.1:7001", voter: true },
    { id: "n2", address: "127.0.0.1:7002", voter: true },
  ],
};

/** The Snapshot message a leader n1 sends to `to` for a state at `index`. */
export function snapshotMessage(to: NodeId, index: number): SnapshotMessage {
  return { type: MessageType.Snapshot, from: "n1", to, term: 3, snapshot: { index, term: 2, membership: MEMBERSHIP } };
}

/** Chunk `i` of a fake state: its bytes say which chunk it is, so order and integrity can be checked. */
export function chunkOf(i: number, bytes: number): Uint8Array {
  const chunk = Buffer.alloc(bytes);
  for (let offset = 0; offset + 4 <= bytes; offset += 4) chunk.writeUInt32BE((i * 7919 + offset) >>> 0, offset);
  return chunk;
}

/** Knobs of a fake reader. */
export interface FakeReaderOptions {
  readonly chunks: number;
  readonly chunkBytes: number;
  readonly appliedIndex?: number;
  /** Chunk number whose read never resolves (a stalled state read). */
  readonly stallAt?: number;
  /** Called before each read, with the number of chunks read so far. */
  readonly onRead?: (read: number) => void;
}

/** An in-memory StateSnapshotReader that produces `chunks` chunks of `chunkBytes`. */
export class FakeReader implements StateSnapshotReader {
  readonly appliedIndex: number;
  readonly membership = MEMBERSHIP;
  read = 0;
  closed = false;

  constructor(private readonly options: FakeReaderOptions) {
    this.appliedIndex = options.appliedIndex ?? 100;
  }

  next(): Promise<Uint8Array | null> {
    if (this.closed) return Promise.reject(new Error("read after close"));
    if (this.read === this.options.stallAt) return new Promise(() => undefined);
    this.options.onRead?.(this.read);
    if (this.read >= this.options.chunks) return Promise.resolve(null);
    return Promise.resolve(chunkOf(this.read++, this.options.chunkBytes));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** An in-memory StateSnapshotWriter; `writeDelayMs` makes it a slow disk. */
export class FakeWriter implements StateSnapshotWriter {
  readonly chunks: Uint8Array[] = [];
  aborted = false;

  constructor(private readonly writeDelayMs = 0) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.aborted) throw new Error("write after abort");
    if (this.writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
    this.chunks.push(Buffer.from(chunk));
  }

  abort(): Promise<void> {
    this.aborted = true;
    return Promise.resolve();
  }
}

/** A receiving node: RaftInbound on a real gRPC server, recording what it delivered and staged. */
export interface ReceivingNode {
  readonly id: NodeId;
  readonly address: string;
  readonly delivered: Message[];
  /** One writer per startRestore() call, in order. */
  readonly writers: FakeWriter[];
  /** Written chunks of every writer when each message was delivered. */
  readonly writtenAtDelivery: number[];
  readonly inbound: RaftInbound;
  stop(): void;
}

/**
 * Per-test fixtures: receiving nodes and transports created through it are stopped after each test.
 * Call at the top of a describe block.
 */
export function useTransportFixtures(): {
  receiver(id: NodeId, options?: { writeDelayMs?: number; idleTimeoutMs?: number }): Promise<ReceivingNode>;
  transport(options: Partial<GrpcPeerTransportOptions> & Pick<GrpcPeerTransportOptions, "peers">): GrpcPeerTransport;
} {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });
  return {
    async receiver(id, options = {}) {
      const [port] = await freePorts(1);
      const address = `127.0.0.1:${port}`;
      const delivered: Message[] = [];
      const writers: FakeWriter[] = [];
      const writtenAtDelivery: number[] = [];
      const inbound = new RaftInbound({
        self: id,
        deliver: (message) => {
          delivered.push(message);
          writtenAtDelivery.push(writers.at(-1)?.chunks.length ?? 0);
        },
        startRestore: () => {
          const writer = new FakeWriter(options.writeDelayMs);
          writers.push(writer);
          return writer;
        },
        logger: silentLogger,
        ...(options.idleTimeoutMs === undefined ? {} : { snapshotIdleTimeoutMs: options.idleTimeoutMs }),
      });
      const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES });
      server.addService(RAFT_SERVICE, inbound.handlers());
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
      );
      const stop = (): void => server.forceShutdown();
      stops.push(stop);
      return { id, address, delivered, writers, writtenAtDelivery, inbound, stop };
    },
    transport(options) {
      const transport = new GrpcPeerTransport({
        logger: silentLogger,
        onPeerDown: () => undefined,
        onSnapshotFailed: () => undefined,
        openSnapshot: () => {
          throw new Error("this test sends no snapshot");
        },
        ...options,
      });
      stops.push(() => transport.close());
      return transport;
    },
  };
}

/** Polls `predicate` until it holds, failing after `timeoutMs`; the only way these tests wait for events. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
