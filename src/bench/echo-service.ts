/**
 * The bare gRPC baseline: an echo service with raw Buffer (de)serializers, so a call costs what
 * @grpc/grpc-js itself costs (HTTP/2 framing, the call machinery) and nothing of protobuf or raftq.
 */
import * as grpc from "@grpc/grpc-js";

const identity = (bytes: Buffer): Buffer => bytes;

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/raftq.bench.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** Unary: answers each request with its own bytes. Stream: writes back each message it reads, in order. */
export const ECHO_SERVICE = {
  unary: method("Unary", false, false),
  stream: method("Stream", true, true),
} satisfies grpc.ServiceDefinition;

/** A client stub of the echo service. */
export interface EchoClient extends grpc.Client {
  unary(request: Buffer, callback: grpc.requestCallback<Buffer>): grpc.ClientUnaryCall;
  stream(): grpc.ClientDuplexStream<Buffer, Buffer>;
}

const EchoClientConstructor = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");

/** A client of the echo server at `address` (plain TCP). */
export function echoClient(address: string): EchoClient {
  return new EchoClientConstructor(address, grpc.credentials.createInsecure()) as unknown as EchoClient;
}

/** The handlers of the echo service. */
export const ECHO_HANDLERS: grpc.UntypedServiceImplementation = {
  unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
  stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    call.on("data", (message: Buffer) => call.write(message));
    call.on("end", () => call.end());
  },
};
