/**
 * The bare echo server as its own process, like a raftq node: `node echo-server.js <port>`. Prints
 * "listening" once bound; exits on SIGTERM or SIGINT, or when its parent's stdin pipe closes (so it never
 * outlives a benchmark that was killed).
 */
import * as grpc from "@grpc/grpc-js";
import { ECHO_HANDLERS, ECHO_SERVICE } from "./echo-service.js";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`usage: echo-server.js <port>: got "${process.argv[2] ?? ""}", want a TCP port 1..65535`);
  process.exit(2);
}

const server = new grpc.Server();
server.addService(ECHO_SERVICE, ECHO_HANDLERS);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(`echo server: cannot listen on 127.0.0.1:${port}: ${error.message}`);
    process.exit(1);
  }
  console.log("listening");
});

const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdin.on("end", stop).on("error", stop).resume();
