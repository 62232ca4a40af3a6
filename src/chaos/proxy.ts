/**
 * A fault-injecting TCP proxy for ONE directed link between two raftq nodes: node i dials the proxy
 * "i→j" instead of node j, so everything i sends to j (its Raft stream, calls it forwards to j as leader,
 * and j's answers on those connections) crosses it. Raft traffic j→i travels on j's own connection
 * through the proxy "j→i", so faults set here are one-way for Raft messages. It needs no privileges:
 * it listens on 127.0.0.1:0 and forwards to the target with plain sockets.
 *
 * The mode is switched at runtime and applies to open connections at once (see LinkMode).
 */
import { createServer, connect as connectTcp, type Server, type Socket } from "node:net";
import type { Prng } from "./prng.js";

/** How the link treats traffic right now. */
export type LinkMode =
  /** Forward everything unchanged. */
  | { readonly kind: "pass" }
  /**
   * Nothing gets through. "blackhole": connections are accepted and bytes silently discarded (the sender
   * only notices by timeouts, like a dead network); open connections go silent at once and are reset when
   * the link heals, since bytes are missing from their streams. "refuse": open connections are reset at
   * once and new ones are reset on accept (the sender notices at once, like a dead process).
   */
  | { readonly kind: "drop"; readonly how: "blackhole" | "refuse" }
  /** Every chunk is held `delayMs` plus up to `jitterMs` more, order kept. */
  | { readonly kind: "delay"; readonly delayMs: number; readonly jitterMs: number }
  /**
   * Each chunk arriving may reset its connection (`resetProbability`) or stall its direction for
   * `stallMs` (`stallProbability`). TCP cannot lose single bytes without corrupting the stream, so loss is
   * modelled as what a lossy network does to a TCP connection: stalls and resets.
   */
  | { readonly kind: "lossy"; readonly resetProbability: number; readonly stallProbability: number; readonly stallMs: number };

/** The mode of a healthy link. */
export const PASS: LinkMode = { kind: "pass" };

/** Counters of one proxy since it started. */
export interface ProxyStats {
  readonly accepted: number;
  readonly refused: number;
  readonly resets: number;
  readonly bytesForwarded: number;
  readonly bytesDropped: number;
  readonly open: number;
}

/** How to start a proxy. */
export interface ProxyOptions {
  /** For error messages and reports, e.g. "n1→n2". */
  readonly name: string;
  /** host:port the proxy forwards to. */
  readonly target: string;
  /** Draws the lossy mode's rolls. */
  readonly prng: Prng;
  /** The port to listen on (default 0: any free port). */
  readonly port?: number;
}

/** Most connections open through one proxy at once; more are refused (a node opens a handful). */
export const MAX_PROXY_CONNECTIONS = 256;
/** Longest delay a delay mode may add to one chunk. */
export const MAX_LINK_DELAY_MS = 10_000;
/** Bytes held in one direction (delayed or stalled) before its sender is paused. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/** A running proxy for one directed link. */
export class LinkProxy {
  private modeNow: LinkMode = PASS;
  private readonly connections = new Set<ProxiedConnection>();
  private readonly counters = { accepted: 0, refused: 0, resets: 0, bytesForwarded: 0, bytesDropped: 0 };

  private constructor(
    private readonly server: Server,
    readonly name: string,
    /** 127.0.0.1:port the proxy listens on: what the dialing node is given in --dial. */
    readonly address: string,
    private readonly target: { host: string; port: number },
    private readonly prng: Prng,
  ) {
    server.on("connection", (socket) => this.accept(socket));
  }

  /** Listens on 127.0.0.1 (on `options.port`, or any free port), in pass mode. */
  static async start(options: ProxyOptions): Promise<LinkProxy> {
    const target = parseAddress(options.target, options.name);
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const bound = server.address();
    if (bound === null || typeof bound === "string") throw new Error(`proxy ${options.name}: the listening socket has no port`);
    return new LinkProxy(server, options.name, `127.0.0.1:${bound.port}`, target, options.prng);
  }

  /** The current mode. */
  get mode(): LinkMode {
    return this.modeNow;
  }

  /** Switches the mode; open connections follow at once (reset, silenced, or flushed). */
  setMode(mode: LinkMode): void {
    checkMode(mode, this.name);
    this.modeNow = mode;
    for (const connection of [...this.connections]) connection.modeChanged(mode);
  }

  /** Counters since start. */
  stats(): ProxyStats {
    return { ...this.counters, open: this.connections.size };
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    for (const connection of [...this.connections]) connection.destroy(false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on("error", () => {});
    const mode = this.modeNow;
    if ((mode.kind === "drop" && mode.how === "refuse") || this.connections.size >= MAX_PROXY_CONNECTIONS) {
      this.counters.refused++;
      resetSocket(client);
      return;
    }
    this.counters.accepted++;
    // A connection born in a blackhole never reaches the target: it only waits to be reset on heal.
    const upstream = mode.kind === "drop" ? undefined : connectTcp({ host: this.target.host, port: this.target.port, allowHalfOpen: true, noDelay: true });
    const connection = new ProxiedConnection(client, upstream, {
      mode: () => this.modeNow,
      prng: this.prng,
      counters: this.counters,
      closed: (closing) => this.connections.delete(closing),
    });
    this.connections.add(connection);
  }
}

/** What a connection needs from its proxy. */
interface ConnectionContext {
  mode(): LinkMode;
  readonly prng: Prng;
  readonly counters: { resets: number; bytesForwarded: number; bytesDropped: number };
  closed(connection: ProxiedConnection): void;
}

/** One chunk waiting to be written, and the earliest time it may be. */
interface HeldChunk {
  readonly data: Buffer;
  dueAtMs: number;
}

/** One accepted connection: a client socket, the socket to the target, and one Direction each way. */
class ProxiedConnection {
  /** Set once bytes were discarded: the byte stream is corrupt, so the connection must die on heal. */
  private tainted = false;
  private destroyed = false;
  private readonly directions: Direction[];

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket | undefined,
    private readonly context: ConnectionContext,
  ) {
    if (upstream === undefined) this.tainted = true;
    upstream?.on("error", () => {});
    this.directions = upstream === undefined ? [] : [new Direction(client, upstream, this), new Direction(upstream, client, this)];
    if (upstream === undefined) client.on("data", (chunk: Buffer) => this.discard(chunk));
    // One side gone: the other sees the same kind of end (a reset or refused target resets the client).
    for (const socket of [client, upstream]) socket?.on("close", (hadError) => this.destroy(hadError));
  }

  /** The proxy's current mode. */
  mode(): LinkMode {
    return this.context.mode();
  }

  get prng(): Prng {
    return this.context.prng;
  }

  /** Counts bytes that were written on. */
  forwarded(bytes: number): void {
    this.context.counters.bytesForwarded += bytes;
  }

  /** Drops a chunk, marking the stream corrupt. */
  discard(chunk: Buffer): void {
    this.tainted = true;
    this.context.counters.bytesDropped += chunk.length;
  }

  modeChanged(mode: LinkMode): void {
    const silenced = mode.kind === "drop" && mode.how === "blackhole";
    if ((mode.kind === "drop" && mode.how === "refuse") || (this.tainted && !silenced)) {
      this.destroy(true);
      return;
    }
    for (const direction of this.directions) direction.modeChanged(mode);
  }

  /** Closes both sockets; `reset` sends RST (what a refused or broken link looks like) instead of FIN. */
  destroy(reset: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (reset) this.context.counters.resets++;
    for (const direction of this.directions) direction.stop();
    for (const socket of [this.client, this.upstream]) {
      if (socket === undefined) continue;
      if (reset) resetSocket(socket);
      else socket.destroy();
    }
    this.context.closed(this);
  }
}

/**
 * Bytes flowing one way through a connection. Chunks go through a FIFO with a due time so that delays
 * and stalls keep their order; in pass mode with nothing held they are written at once.
 */
class Direction {
  private readonly held: HeldChunk[] = [];
  private heldBytes = 0;
  private stalledUntilMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private sourceEnded = false;
  private stopped = false;

  constructor(
    private readonly source: Socket,
    private readonly sink: Socket,
    private readonly connection: ProxiedConnection,
  ) {
    source.on("data", (chunk: Buffer) => this.arrived(chunk));
    source.on("end", () => {
      this.sourceEnded = true;
      this.flush();
    });
    sink.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
    });
  }

  modeChanged(mode: LinkMode): void {
    if (mode.kind !== "pass") return;
    // Healed: whatever was delayed or stalled goes out now, in order.
    this.stalledUntilMs = 0;
    for (const chunk of this.held) chunk.dueAtMs = 0;
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.held.length = 0;
  }

  private arrived(chunk: Buffer): void {
    const mode = this.connection.mode();
    const nowMs = Date.now();
    let dueAtMs = nowMs;
    switch (mode.kind) {
      case "pass":
        break;
      case "drop":
        this.connection.discard(chunk);
        return;
      case "delay":
        dueAtMs = nowMs + mode.delayMs + Math.floor(this.connection.prng.next() * (mode.jitterMs + 1));
        break;
      case "lossy": {
        const roll = this.connection.prng.next();
        if (roll < mode.resetProbability) {
          this.connection.destroy(true);
          return;
        }
        if (roll < mode.resetProbability + mode.stallProbability) this.stalledUntilMs = Math.max(this.stalledUntilMs, nowMs + mode.stallMs);
        break;
      }
    }
    const last = this.held[this.held.length - 1];
    dueAtMs = Math.max(dueAtMs, this.stalledUntilMs, last?.dueAtMs ?? 0);
    this.held.push({ data: chunk, dueAtMs });
    this.heldBytes += chunk.length;
    if (this.heldBytes > MAX_HELD_BYTES) this.source.pause();
    this.flush();
  }

  /** Writes every due chunk, then arms a timer for the next one. */
  private flush(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const nowMs = Date.now();
    while (!this.waitingForDrain) {
      const head = this.held[0];
      if (head === undefined || head.dueAtMs > nowMs) break;
      this.held.shift();
      this.heldBytes -= head.data.length;
      const mode = this.connection.mode();
      if (mode.kind === "drop") {
        this.connection.discard(head.data);
        continue;
      }
      this.connection.forwarded(head.data.length);
      if (!this.sink.write(head.data)) this.waitingForDrain = true;
    }
    if (this.heldBytes <= MAX_HELD_BYTES / 2 && this.source.isPaused()) this.source.resume();
    const next = this.held[0];
    if (next !== undefined && !this.waitingForDrain) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, next.dueAtMs - nowMs));
    } else if (next === undefined && this.sourceEnded && !this.sink.writableEnded) {
      this.sink.end();
    }
  }
}

/** Sends RST where the socket allows it, else just destroys it. */
function resetSocket(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function parseAddress(address: string, name: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(address);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`proxy ${name}: target "${address}" is not host:port (e.g. 127.0.0.1:7001)`);
  }
  return { host: match[1]!, port };
}

function checkMode(mode: LinkMode, name: string): void {
  const bad = (what: string): never => {
    throw new Error(`proxy ${name}: ${what}`);
  };
  if (mode.kind === "delay") {
    if (!(mode.delayMs >= 0 && mode.delayMs + mode.jitterMs <= MAX_LINK_DELAY_MS && mode.jitterMs >= 0)) {
      bad(`delay ${mode.delayMs}+${mode.jitterMs} ms is out of range: use 0..${MAX_LINK_DELAY_MS} ms in total`);
    }
  } else if (mode.kind === "lossy") {
    const total = mode.resetProbability + mode.stallProbability;
    if (!(mode.resetProbability >= 0 && mode.stallProbability >= 0 && total <= 1)) bad(`lossy probabilities must be ≥ 0 and sum to ≤ 1, got ${total}`);
    if (!(mode.stallMs >= 0 && mode.stallMs <= MAX_LINK_DELAY_MS)) bad(`stall ${mode.stallMs} ms is out of range: use 0..${MAX_LINK_DELAY_MS}`);
  }
}
