/**
 * Raw gRPC access to one node, bypassing the SDK (which validates, retries and follows the leader): the
 * generated Queue and Cluster stubs, a grpc.health.v1 stub, and one helper that runs a unary call with a
 * deadline and reports its status code, details and the `raftq-leader` metadata instead of throwing.
 */
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import type { HealthCheckRequest } from "grpc-health-check/build/src/generated/grpc/health/v1/HealthCheckRequest.js";
import type { HealthCheckResponse__Output } from "grpc-health-check/build/src/generated/grpc/health/v1/HealthCheckResponse.js";
import { expect } from "vitest";
import { LEADER_METADATA_KEY } from "../../src/client/errors.js";
import type { ProtoGrpcType } from "../../src/generated/queue.js";
import type { ClusterClient } from "../../src/generated/raftq/v1/Cluster.js";
import type { QueueClient } from "../../src/generated/raftq/v1/Queue.js";
import { loadProtos } from "../../src/protocol/proto-files.js";

/** A grpc.health.v1.Health client, typed with the message types grpc-health-check generates from its proto. */
export interface HealthClient extends grpc.Client {
  Check(
    argument: HealthCheckRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<HealthCheckResponse__Output>,
  ): grpc.ClientUnaryCall;
  Check(argument: HealthCheckRequest, callback: grpc.requestCallback<HealthCheckResponse__Output>): grpc.ClientUnaryCall;
}

/** Every public service of one node, over one channel. */
export interface NodeStubs {
  readonly queue: QueueClient;
  readonly cluster: ClusterClient;
  readonly health: HealthClient;
  close(): void;
}

const raftq = (grpc.loadPackageDefinition(loadProtos(["raftq/v1/queue.proto"])) as unknown as ProtoGrpcType).raftq.v1;
const HealthStub = grpc.makeGenericClientConstructor(healthService, "Health") as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => HealthClient;

/** Stubs for the node at `address`, sharing one insecure channel. */
export function nodeStubs(address: string): NodeStubs {
  const credentials = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(address, credentials, {});
  const queue = new raftq.Queue(address, credentials, { channelOverride: channel });
  const cluster = new raftq.Cluster(address, credentials, { channelOverride: channel });
  const health = new HealthStub(address, credentials, { channelOverride: channel });
  return { queue, cluster, health, close: () => channel.close() };
}

/** How one raw unary call ended. `leader` is the `raftq-leader` metadata, "" when absent. */
export type Outcome<Response> =
  | { readonly ok: true; readonly response: Response; readonly leader: string }
  | { readonly ok: false; readonly code: grpc.status; readonly details: string; readonly leader: string };

/**
 * A unary method of a generated stub, in the (request, callback) form TypeScript infers types from; it is
 * called in its (request, metadata, options, callback) form, which every generated unary method also has.
 */
type UnaryMethod<Request, Response> = (request: Request, callback: grpc.requestCallback<Response>) => grpc.ClientUnaryCall;
type FullUnaryMethod<Request, Response> = (
  request: Request,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Response>,
) => grpc.ClientUnaryCall;

/** Runs `stub.method(request)` once with a deadline of `timeoutMs`; never throws. */
export function callUnary<Request, Response>(
  stub: grpc.Client,
  method: UnaryMethod<Request, Response>,
  request: Request,
  timeoutMs = 5_000,
): Promise<Outcome<Response>> {
  const full = method as unknown as FullUnaryMethod<Request, Response>;
  return new Promise((resolve) => {
    let leader = "";
    const call = full.call(stub, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
      // grpc-js calls back just before it emits "status" (the trailers): settle after that.
      setImmediate(() => {
        if (error) resolve({ ok: false, code: error.code, details: error.details, leader });
        else if (response === undefined) resolve({ ok: false, code: grpc.status.INTERNAL, details: "empty response", leader });
        else resolve({ ok: true, response, leader });
      });
    });
    const noteLeader = (metadata: grpc.Metadata): void => {
      const value = metadata.get(LEADER_METADATA_KEY)[0];
      if (typeof value === "string" && value !== "") leader = value;
    };
    call.on("metadata", noteLeader);
    call.on("status", (status: grpc.StatusObject) => noteLeader(status.metadata));
  });
}

/**
 * The final status of a streaming call, as an Outcome without a response; if the stream is still open
 * after `timeoutMs` it is cancelled and reported as such (CANCELLED, "still open").
 */
export function streamOutcome(
  stream: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
  timeoutMs = 5_000,
): Promise<Outcome<undefined>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve({ ok: false, code: grpc.status.CANCELLED, details: `the stream was still open after ${timeoutMs} ms`, leader: "" });
      stream.cancel();
    }, timeoutMs);
    stream.on("data", () => {});
    stream.on("error", () => {}); // the final status arrives through "status"
    stream.on("status", (status: grpc.StatusObject) => {
      clearTimeout(timer);
      const leader = status.metadata.get(LEADER_METADATA_KEY)[0];
      const named = typeof leader === "string" ? leader : "";
      if (status.code === grpc.status.OK) resolve({ ok: true, response: undefined, leader: named });
      else resolve({ ok: false, code: status.code, details: status.details, leader: named });
    });
  });
}

/** The name of a gRPC status code, e.g. "INVALID_ARGUMENT", for readable assertions. */
export function codeName(code: grpc.status): string {
  return grpc.status[code] ?? `code ${code}`;
}

/**
 * Asserts that a call succeeded and returns its response; on failure the assertion names the status.
 */
export function expectOk<Response>(outcome: Outcome<Response>): Response {
  if (!outcome.ok) expect.fail(`expected OK, got ${codeName(outcome.code)}: ${outcome.details}`);
  return outcome.response;
}

/**
 * Asserts that a call failed with `code` and a message a person can act on (non-empty, matching `pattern`
 * when given, never an internal error), and returns the message.
 */
export function expectRefused(outcome: Outcome<unknown>, code: grpc.status, pattern?: RegExp): string {
  if (outcome.ok) expect.fail(`expected ${codeName(code)}, but the call succeeded with ${JSON.stringify(outcome.response)}`);
  expect(codeName(outcome.code), `details: ${outcome.details}`).toBe(codeName(code));
  expect(outcome.details.trim().length).toBeGreaterThan(10);
  expect(outcome.details).not.toMatch(/internal error/i);
  if (pattern) expect(outcome.details).toMatch(pattern);
  return outcome.details;
}
