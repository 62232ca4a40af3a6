/**
 * Shared helpers for the client tests: an in-process fake raftq node whose Queue and Cluster methods are
 * scripted per test, clients with fast retry settings, and polling instead of sleeps.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach } from "vitest";
import { GrpcRaftqClient } from "../../src/client/grpc-client.js";
import type { ClientOptions } from "../../src/client/options.js";
import type { ProtoGrpcType } from "../../src/generated/queue.js";
import type { ClusterHandlers } from "../../src/generated/raftq/v1/Cluster.js";
import type { QueueHandlers } from "../../src/generated/raftq/v1/Queue.js";
import { loadProtos } from "../../src/protocol/proto-files.js";

/** The methods a fake node answers; the others answer UNIMPLEMENTED. */
export type FakeHandlers = Partial<QueueHandlers> & Partial<ClusterHandlers>;

/** A fake node listening on 127.0.0.1 at a port the OS chose. */
export interface FakeNode {
  readonly address: string;
  stop(): void;
}

const services = (grpc.loadPackageDefinition(loadProtos(["raftq/v1/queue.proto"])) as unknown as ProtoGrpcType).raftq.v1;

/** Starts a fake node answering with `handlers`. */
export async function startFakeNode(handlers: FakeHandlers): Promise<FakeNode> {
  const server = new grpc.Server();
  const pick = (names: readonly string[]): grpc.UntypedServiceImplementation =>
    Object.fromEntries(Object.entries(handlers).filter(([name]) => names.includes(name))) as grpc.UntypedServiceImplementation;
  server.addService(services.Queue.service, pick(Object.keys(services.Queue.service)));
  server.addService(services.Cluster.service, pick(Object.keys(services.Cluster.service)));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** An address where nothing listens: a port the OS handed out and that was closed again. */
export async function deadAddress(): Promise<string> {
  const node = await startFakeNode({});
  node.stop();
  return node.address;
}

/** Trailing metadata naming `leader` as the cluster's leader, as every raftq node sends it. */
export function leaderMetadata(leader: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("raftq-leader", leader);
  return metadata;
}

/** A gRPC error status for a handler's callback (or a stream's "error" event), optionally naming the leader. */
export function grpcError(code: grpc.status, details: string, leader?: string): Partial<grpc.StatusObject> {
  return { code, details, ...(leader === undefined ? {} : { metadata: leaderMetadata(leader) }) };
}

/** Retry settings that keep tests fast: millisecond backoffs, a few seconds overall. */
export const FAST_RETRIES = { timeoutMs: 3_000, attemptTimeoutMs: 1_000, initialBackoffMs: 2, maxBackoffMs: 20 } as const;

/** Polls `predicate` until it holds, failing after `timeoutMs`; the only way tests wait for events. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Per-test fixtures: fake nodes and clients created through it are stopped and closed after each test.
 * Call at the top of a describe block.
 */
export function useFakeCluster(): {
  node(handlers: FakeHandlers): Promise<FakeNode>;
  client(addresses: readonly string[], options?: Partial<ClientOptions>): GrpcRaftqClient;
} {
  const nodes: FakeNode[] = [];
  const clients: GrpcRaftqClient[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    for (const node of nodes.splice(0)) node.stop();
  });
  return {
    async node(handlers) {
      const node = await startFakeNode(handlers);
      nodes.push(node);
      return node;
    },
    client(addresses, options = {}) {
      const client = new GrpcRaftqClient({ ...FAST_RETRIES, ...options, addresses });
      clients.push(client);
      return client;
    },
  };
}
