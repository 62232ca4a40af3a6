import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../src/client/index.js";
import { FLOW_CONTROL_WINDOW_BYTES, widenHttp2ServerWindows } from "../../src/protocol/flow-control.js";

const DEFAULT_WINDOW_BYTES = 65_535;

/** Polls `read` until `done` holds or the deadline passes; returns the last value read. */
async function pollUntil<T>(read: () => T, done: (value: T) => boolean, deadlineMs = 5_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  let value = read();
  while (!done(value) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = read();
  }
  return value;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("HTTP/2 flow-control windows", () => {
  it("a grpc-js server bound after widening advertises 1 MiB stream windows and opens the connection's as wide", async () => {
    widenHttp2ServerWindows();
    widenHttp2ServerWindows(); // a second call changes nothing
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));

    const session = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => new Promise<void>((resolve) => session.close(() => resolve())));
    session.on("error", () => undefined);
    await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
    expect(session.remoteSettings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
    // The connection window arrives as a WINDOW_UPDATE after the settings.
    const connectionWindow = await pollUntil(
      () => session.state.remoteWindowSize ?? 0,
      (window) => window >= FLOW_CONTROL_WINDOW_BYTES,
    );
    expect(connectionWindow).toBe(FLOW_CONTROL_WINDOW_BYTES);
  });

  it("the SDK's channels ask servers for 1 MiB windows", async () => {
    const advertised: number[] = [];
    // What matters here is the window the client asks for in its own SETTINGS frame.
    const server = http2.createServer();
    server.on("session", (session) => session.once("remoteSettings", (settings) => advertised.push(settings.initialWindowSize ?? DEFAULT_WINDOW_BYTES)));
    server.on("stream", (stream) => stream.respond({ ":status": 200, "content-type": "application/grpc" }, { endStream: true }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;

    const client = connect({ addresses: [`127.0.0.1:${port}`], timeoutMs: 2_000, attemptTimeoutMs: 500 });
    cleanups.push(() => client.close());
    await client.listQueues().catch(() => undefined); // any call opens the connection; its outcome does not matter
    const seen = await pollUntil(() => advertised[0], (window) => window !== undefined);
    expect(seen).toBe(FLOW_CONTROL_WINDOW_BYTES);
  });
});
