/**
 * CPU per message over a workload's measured window: the server processes' (the three nodes, or the bare
 * echo server) and this client process's. On two cores shared by four busy processes, throughput is
 * CPU over CPU per message, so this is the figure that says where a workload's time goes.
 */
import { processCpuMs } from "./resources.js";

/** CPU time per message (µs) over one measured window. */
export interface CpuPerMessage {
  /** The server processes together (user + system, every thread). */
  readonly serversUs: number;
  /** This process: the client and the bench's own bookkeeping. */
  readonly clientUs: number;
}

/** Measures one window at a time. */
export class CpuMeter {
  private startedAt: { servers: number; client: NodeJS.CpuUsage } | undefined;
  private window: { serversMs: number; clientMs: number } | undefined;

  /** `serverPids` is asked at the start and the end of each window (a node may be restarted between runs). */
  constructor(private readonly serverPids: () => readonly number[]) {}

  start(): void {
    this.startedAt = { servers: this.serversMs(), client: process.cpuUsage() };
    this.window = undefined;
  }

  stop(): void {
    if (this.startedAt === undefined) return;
    const client = process.cpuUsage(this.startedAt.client);
    this.window = { serversMs: this.serversMs() - this.startedAt.servers, clientMs: (client.user + client.system) / 1000 };
    this.startedAt = undefined;
  }

  /** The last window's CPU over the messages it carried; undefined before a window ends or without messages. */
  perMessage(messages: number): CpuPerMessage | undefined {
    if (this.window === undefined || messages <= 0) return undefined;
    return { serversUs: (this.window.serversMs * 1000) / messages, clientUs: (this.window.clientMs * 1000) / messages };
  }

  private serversMs(): number {
    return this.serverPids().reduce((total, pid) => total + (processCpuMs(pid) ?? 0), 0);
  }
}
