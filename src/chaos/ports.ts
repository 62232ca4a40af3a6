/** Free TCP ports on 127.0.0.1 for the nodes of a chaos cluster. */
import { createServer, type Server } from "node:net";

/**
 * `count` distinct ports the OS reports free on 127.0.0.1: all bound at once (so they differ), read, then
 * released. Another process could take one before a node binds it; the node then fails to start with
 * EADDRINUSE and the run says so.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("a TCP server on 127.0.0.1 reported no port");
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
