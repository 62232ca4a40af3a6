import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Prng } from "../../src/chaos/prng.js";
import { LinkProxy, PASS } from "../../src/chaos/proxy.js";

/** An echo server: the proxy's target. */
async function echoServer(): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const bound = server.address();
  if (bound === null || typeof bound === "string") throw new Error("no port");
  return { server, address: `127.0.0.1:${bound.port}` };
}

/** A connected client socket and what it has received so far, or how it ended. */
class Client {
  received = "";
  ended: "reset" | "closed" | undefined;
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => (this.received += chunk.toString()));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET") this.ended = "reset";
    });
    socket.on("close", () => (this.ended ??= "closed"));
  }

  static async open(address: string): Promise<Client> {
    const [host, port] = address.split(":");
    const socket = connect({ host: host!, port: Number(port) });
    const client = new Client(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return client;
  }

  /** Waits until `predicate` holds, polling; false after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs = 2_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }
}

describe("link proxy", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setup(): Promise<LinkProxy> {
    const target = await echoServer();
    const proxy = await LinkProxy.start({ name: "n1→n2", target: target.address, prng: new Prng(1) });
    cleanup.push(() => new Promise<void>((resolve) => target.server.close(() => resolve())));
    cleanup.push(() => proxy.close());
    return proxy;
  }

  async function client(proxy: LinkProxy): Promise<Client> {
    const opened = await Client.open(proxy.address);
    cleanup.push(() => void opened.socket.destroy());
    return opened;
  }

  it("passes data both ways", async () => {
    const proxy = await setup();
    const c = await client(proxy);

    c.socket.write("hello");

    expect(await c.until(() => c.received === "hello")).toBe(true);
    expect(proxy.stats()).toMatchObject({ accepted: 1, open: 1, bytesForwarded: 10 });
  });

  it("blackholes: open connections go silent at once and are reset on heal; new ones stall, then work after heal", async () => {
    const proxy = await setup();
    const open = await client(proxy);
    open.socket.write("before");
    await open.until(() => open.received === "before");

    proxy.setMode({ kind: "drop", how: "blackhole" });
    open.socket.write("during");
    const stalled = await client(proxy);
    stalled.socket.write("during");

    expect(await open.until(() => open.received !== "before", 300)).toBe(false);
    expect(await stalled.until(() => stalled.received !== "", 300)).toBe(false);
    expect(open.ended).toBeUndefined();

    proxy.setMode(PASS);

    expect(await open.until(() => open.ended === "reset")).toBe(true);
    expect(await stalled.until(() => stalled.ended === "reset")).toBe(true);
    const fresh = await client(proxy);
    fresh.socket.write("after");
    expect(await fresh.until(() => fresh.received === "after")).toBe(true);
  });

  it("refuses: open connections are reset at once and new ones are reset on accept", async () => {
    const proxy = await setup();
    const open = await client(proxy);

    proxy.setMode({ kind: "drop", how: "refuse" });

    expect(await open.until(() => open.ended === "reset")).toBe(true);
    // The reset may arrive before or after the client saw its connection established.
    const refused = await Client.open(proxy.address).then(
      async (c) => {
        cleanup.push(() => void c.socket.destroy());
        await c.until(() => c.ended !== undefined);
        return c.ended;
      },
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(["reset", "ECONNRESET"]).toContain(refused);
    expect(proxy.stats().refused).toBe(1);
  });

  it("delays each chunk, keeping order, and flushes at once on heal", async () => {
    const proxy = await setup();
    const c = await client(proxy);

    proxy.setMode({ kind: "delay", delayMs: 300, jitterMs: 0 });
    const sentAt = Date.now();
    c.socket.write("a");
    c.socket.write("b");
    await c.until(() => c.received === "ab");

    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(590); // 300 ms out, 300 ms back
    proxy.setMode({ kind: "delay", delayMs: 5_000, jitterMs: 0 });
    c.socket.write("c");
    await new Promise((resolve) => setTimeout(resolve, 50));
    proxy.setMode(PASS);
    expect(await c.until(() => c.received === "abc", 1_000)).toBe(true);
  });

  it("lossy mode resets connections as its rolls say", async () => {
    const proxy = await setup();
    const c = await client(proxy);

    proxy.setMode({ kind: "lossy", resetProbability: 1, stallProbability: 0, stallMs: 0 });
    c.socket.write("x");

    expect(await c.until(() => c.ended === "reset")).toBe(true);
    expect(proxy.stats().resets).toBe(1);
  });

  it("refuses a mode out of bounds, naming the fix", async () => {
    const proxy = await setup();

    expect(() => proxy.setMode({ kind: "delay", delayMs: 60_000, jitterMs: 0 })).toThrow(/out of range: use 0\.\.10000 ms in total/);
  });
});
