/**
 * The bare limits raftq is compared with, measured in the same run as raftq: a gRPC echo server in its own
 * process (unary with 1 and 64 calls in flight, a bidi stream with 64 messages in flight) and LevelDB
 * synced writes (single puts, batches of 100) on the same disk as the nodes' data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { Level } from "level";
import type { CpuMeter } from "./cpu-meter.js";
import { closedLoop, type LoadResult } from "./load.js";
import { echoClient, type EchoClient } from "./echo-service.js";

/** Longest wait for the echo server to report that it listens. */
const ECHO_READY_TIMEOUT_MS = 10_000;

/** Timing of one measured run: warm-up, then the measured window. */
export interface Timing {
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Measures the CPU of each run's measured window, when given. */
  readonly cpu?: CpuMeter;
}

/** The echo server process; `close()` stops it. */
export interface EchoServer {
  readonly address: string;
  readonly pid: number;
  close(): void;
}

const echoChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of echoChildren) child.kill("SIGKILL");
});

/** Starts `node <script> <port>` (echo-server.js) and resolves once it listens. */
export async function startEchoServer(script: string, port: number): Promise<EchoServer> {
  // stdin is a pipe the server watches: if this process dies, even by SIGKILL, the server ends too.
  const child = spawn(process.execPath, [script, String(port)], { stdio: ["pipe", "pipe", "inherit"] });
  echoChildren.add(child);
  child.once("exit", () => echoChildren.delete(child));
  const close = (): void => {
    child.kill("SIGKILL");
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the echo server did not listen on port ${port} within ${ECHO_READY_TIMEOUT_MS} ms`)), ECHO_READY_TIMEOUT_MS);
      child.once("exit", (code, signal) => reject(new Error(`the echo server exited while starting (${signal ?? `code ${code}`})`)));
      createInterface({ input: child.stdout! }).once("line", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (error) {
    close();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, pid: child.pid!, close };
}

/** Unary echo calls of `body`, `concurrency` in flight, over one channel. */
export async function unaryEcho(address: string, body: Buffer, concurrency: number, timing: Timing): Promise<LoadResult> {
  const client = echoClient(address);
  try {
    const op = () =>
      new Promise<Buffer>((resolve, reject) => {
        client.unary(body, (error, answer) => (error ? reject(error) : resolve(answer!)));
      });
    return await closedLoop({ concurrency, messagesPerOp: 1, op, ...timing });
  } finally {
    client.close();
  }
}

/** Messages of `body` echoed over one bidi stream, `concurrency` unanswered at a time. */
export async function streamEcho(address: string, body: Buffer, concurrency: number, timing: Timing): Promise<LoadResult> {
  const client = echoClient(address);
  const stream = new EchoStream(client);
  try {
    return await closedLoop({ concurrency, messagesPerOp: 1, op: () => stream.send(body), ...timing });
  } finally {
    stream.end();
    client.close();
  }
}

/** One echo stream; `send` resolves when that message comes back (the server answers in order). */
class EchoStream {
  private readonly call: ReturnType<EchoClient["stream"]>;
  private readonly waiting: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private failure: Error | undefined;

  constructor(client: EchoClient) {
    this.call = client.stream();
    this.call.on("data", () => this.waiting.shift()?.resolve());
    this.call.on("error", (error: Error) => this.fail(error));
    this.call.on("end", () => this.fail(new Error("the echo stream ended")));
  }

  send(body: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(body);
    });
  }

  end(): void {
    this.call.end();
    this.call.cancel();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

/** Synced LevelDB writes of `body` in a fresh database at `dir` (removed afterwards): one at a time, `batchSize` records each. */
export async function levelSyncWrites(dir: string, body: Buffer, batchSize: number, timing: Timing): Promise<LoadResult> {
  const db = new Level<string, Buffer>(dir, { valueEncoding: "buffer" });
  await db.open();
  let next = 0;
  const key = (): string => String(next++).padStart(12, "0");
  const op =
    batchSize === 1
      ? () => db.put(key(), body, { sync: true })
      : () => db.batch(Array.from({ length: batchSize }, () => ({ type: "put" as const, key: key(), value: body })), { sync: true });
  try {
    return await closedLoop({ concurrency: 1, messagesPerOp: batchSize, op, ...timing });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
