/**
 * HTTP/2 flow-control windows for raftq's gRPC connections, both ways.
 *
 * HTTP/2 lets a sender have at most one window of unread bytes in flight per stream and per connection;
 * past it the sender waits for the receiver's WINDOW_UPDATE, which Node sends only once its event loop has
 * read the data: one more round trip between two busy processes. The default window, 64 KiB, is smaller
 * than what raftq keeps in flight on one connection under load: eight EnqueueBatch calls of 100 messages,
 * or one Append of a whole Ready's entries to a follower: EnqueueBatch ran 3–16% faster with wider
 * windows in 12 of 12 alternating pairs (docs/performance-findings.md, eighth round). 1 MiB is grpc-java's
 * and gRPC C-core's default: a peer that stops reading can make a connection hold at most that much.
 */
import { createRequire } from "node:module";
import type * as Http2 from "node:http2";

export const FLOW_CONTROL_WINDOW_BYTES = 1 << 20;

/** For grpc-js channels: the client's receive window (grpc-js reads it for the stream and the connection). */
export const FLOW_CONTROL_CHANNEL_OPTIONS = { "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES } as const;

// The CommonJS module object grpc-js itself requires: an ES import's bindings are read-only.
const http2 = createRequire(import.meta.url)("node:http2") as typeof Http2;

let widened = false;

/**
 * Makes every HTTP/2 server this process creates from now on advertise FLOW_CONTROL_WINDOW_BYTES as its
 * stream window and open each connection's window as wide. grpc-js (1.14) servers ignore
 * `grpc-node.flow_control_window` and build their HTTP/2 server inside `bindAsync`, with no hook, so this
 * wraps `http2.createServer`; the servers it creates are grpc-js's. Call it before binding a server;
 * calling it again does nothing. Drop it once grpc-js servers honour the option (grpc/grpc-node#3058).
 */
export function widenHttp2ServerWindows(): void {
  if (widened) return;
  widened = true;
  const createServer = http2.createServer;
  const createWidened = (options?: Http2.ServerOptions | ((...args: never[]) => void), listener?: (...args: never[]) => void): Http2.Http2Server => {
    const [given, onRequest] = typeof options === "function" ? [{}, options] : [options ?? {}, listener];
    const server = createServer({ ...given, settings: { ...given.settings, initialWindowSize: FLOW_CONTROL_WINDOW_BYTES } }, onRequest as never);
    server.on("session", (session: Http2.ServerHttp2Session) => {
      // A connection that is already gone keeps its window; widening is never worth a crash.
      try {
        if (!session.destroyed) session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
      } catch {
        // left at the default window
      }
    });
    return server;
  };
  http2.createServer = createWidened as typeof http2.createServer;
}
