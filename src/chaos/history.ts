/**
 * The history of a chaos run, Jepsen-style: every client operation as an `invoke` followed by its
 * completion (`ok`, `fail` = certainly did not happen, `info` = outcome unknown), every fault injected and
 * healed, node processes starting and exiting, and periodic Status samples of every node. Written as JSON
 * lines as the run goes (history.jsonl), read back by the checker: the checker sees only the file.
 * Times are milliseconds since the run started, from the same wall clock the nodes stamp commands with.
 */
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import type { FaultKind } from "./schedule.js";

/** What each client operation sends. */
export interface InvokeValues {
  /** `key` null = sent without an idempotency key; `via` = single call or publisher stream. */
  enqueue: { readonly body: string; readonly key: string | null; readonly via: "call" | "publisher" };
  dequeue: { readonly maxMessages: number; readonly visibilityTimeoutMs: number; readonly waitMs: number };
  ack: SettleTarget;
  nack: SettleTarget & { readonly delayMs: number };
}

/** The delivery an ack or nack settles, by receipt. */
export interface SettleTarget {
  readonly id: number;
  readonly body: string;
  readonly receipt: string;
  readonly deliveryCount: number;
}

/** One message as a dequeue returned it. */
export interface DeliveredMessage {
  readonly id: number;
  readonly body: string;
  readonly deliveryCount: number;
  readonly receipt: string;
}

/** What each client operation returns when it succeeds. */
export interface OkValues {
  enqueue: { readonly id: number; readonly duplicate: boolean };
  dequeue: { readonly messages: readonly DeliveredMessage[] };
  /** `settled` false = the receipt was refused (the message was redelivered or is gone). */
  ack: { readonly settled: boolean };
  nack: { readonly settled: boolean };
}

/** The client operations a workload performs. */
export type OpFunction = keyof InvokeValues;

/** Why an operation failed or has an unknown outcome. */
export interface OpError {
  readonly code: string;
  readonly message: string;
}

interface OpBase<F extends OpFunction> {
  /** Pairs an invoke with its completion. */
  readonly op: number;
  /** The logical client process (one operation at a time each), e.g. "p1", "c2", "drain". */
  readonly process: string;
  readonly f: F;
  readonly queue: string;
  readonly time: number;
}

/** The events of one operation of function F. */
type OpEventsOf<F extends OpFunction> =
  | (OpBase<F> & { readonly type: "invoke"; readonly value: InvokeValues[F] })
  | (OpBase<F> & { readonly type: "ok"; readonly value: OkValues[F] })
  | (OpBase<F> & { readonly type: "fail" | "info"; readonly error: OpError });

/** An invoke or completion of any operation. */
export type OpEvent = { [F in OpFunction]: OpEventsOf<F> }[OpFunction];

/** A fault starting or healing. */
export interface FaultEvent {
  readonly type: "fault";
  readonly phase: "start" | "end";
  /** Index in the run's fault schedule. */
  readonly fault: number;
  readonly kind: FaultKind;
  /** The nodes it acted on. */
  readonly nodes: readonly string[];
  /** What was done, e.g. "SIGKILL n2 (leader)" or "cut n1 | n2 n3 (blackhole)". */
  readonly detail: string;
  /** Set when injecting or healing went wrong in a way raftq is to blame for (a node that would not restart). */
  readonly error?: string;
  readonly time: number;
}

/** One node's own view, sampled every ~200 ms. `incarnation` counts the node's process starts. */
export interface StatusEvent {
  readonly type: "status";
  readonly node: string;
  readonly incarnation: number;
  readonly role: string;
  readonly term: number;
  readonly leader: string;
  readonly commit: number;
  readonly applied: number;
  readonly time: number;
}

/** A node process starting or exiting. */
export interface NodeEvent {
  readonly type: "node";
  readonly node: string;
  readonly incarnation: number;
  readonly event: "started" | "exited";
  /** For "exited": false when the harness sent no SIGKILL or SIGTERM, i.e. the node crashed by itself. */
  readonly requested?: boolean;
  readonly detail: string;
  readonly time: number;
}

/** Milestones of the run. `start` carries the run's parameters and its wall-clock start. */
export interface PhaseEvent {
  readonly type: "phase";
  readonly phase: "start" | "workload-start" | "workload-end" | "healed" | "drain-start" | "drain-end" | "end";
  readonly detail: Readonly<Record<string, string | number | boolean>>;
  readonly time: number;
}

/** Any line of a history. */
export type HistoryEvent = OpEvent | FaultEvent | StatusEvent | NodeEvent | PhaseEvent;

/** Distributes Omit over a union, keeping each member's own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Most events one history holds: about 1.5 GB of JSON; far more than a 1-hour run writes. */
export const MAX_HISTORY_EVENTS = 10_000_000;

/** An operation in flight, completed exactly once by one of its methods. */
export interface PendingOp<F extends OpFunction> {
  readonly op: number;
  ok(value: OkValues[F]): void;
  fail(error: OpError): void;
  info(error: OpError): void;
}

/** Appends events to a history file as they happen. */
export class HistoryRecorder {
  private readonly stream: WriteStream;
  private nextOp = 1;
  private events = 0;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    readonly file: string,
    /** Date.now() at time 0. */
    readonly startMs: number,
  ) {
    this.stream = createWriteStream(file, { flags: "w" });
    this.stream.on("error", (error) => {
      this.failure = error;
    });
  }

  /** Milliseconds since the run started. */
  now(): number {
    return Date.now() - this.startMs;
  }

  /** Records an invoke; the returned handle records its completion. */
  invoke<F extends OpFunction>(process: string, f: F, queue: string, value: InvokeValues[F]): PendingOp<F> {
    const op = this.nextOp++;
    this.write({ type: "invoke", op, process, f, queue, value, time: this.now() } as OpEvent);
    let done = false;
    const complete = (event: Omit<OpEvent, "op" | "process" | "f" | "queue" | "time"> & Record<string, unknown>): void => {
      if (done) throw new Error(`operation ${op} (${f} by ${process}) was completed twice: a workload bug`);
      done = true;
      this.write({ ...event, op, process, f, queue, time: this.now() } as OpEvent);
    };
    return {
      op,
      ok: (result) => complete({ type: "ok", value: result }),
      fail: (error) => complete({ type: "fail", error }),
      info: (error) => complete({ type: "info", error }),
    };
  }

  /** Records a non-operation event, stamped now. */
  record(event: DistributiveOmit<FaultEvent | StatusEvent | NodeEvent | PhaseEvent, "time">): void {
    this.write({ ...event, time: this.now() } as HistoryEvent);
  }

  /** Flushes and closes the file; rejects if any write failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
    if (this.failure) throw new Error(`could not write the history ${this.file}: ${this.failure.message}`, { cause: this.failure });
  }

  /** Events after close (a process exiting during cleanup) are of no use to the checker: dropped. */
  private write(event: HistoryEvent): void {
    if (this.closed) return;
    if (++this.events > MAX_HISTORY_EVENTS) {
      throw new Error(`the history ${this.file} reached ${MAX_HISTORY_EVENTS} events: shorten the run (--duration)`);
    }
    this.stream.write(`${JSON.stringify(event)}\n`);
  }
}

const EVENT_TYPES: ReadonlySet<string> = new Set(["invoke", "ok", "fail", "info", "fault", "status", "node", "phase"]);

/** Parses a history file; a malformed line is an error naming its number. */
export function readHistory(file: string): HistoryEvent[] {
  const text = readFileSync(file, "utf8");
  const events: HistoryEvent[] = [];
  let lineNumber = 0;
  for (const line of text.split("\n")) {
    lineNumber++;
    if (line.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${lineNumber}: not JSON (${(error as Error).message}); a truncated history cannot be checked`);
    }
    const type = (parsed as { type?: unknown } | null)?.type;
    const time = (parsed as { time?: unknown } | null)?.time;
    if (typeof type !== "string" || !EVENT_TYPES.has(type) || typeof time !== "number") {
      throw new Error(`${file}:${lineNumber}: not a history event (needs "type" one of ${[...EVENT_TYPES].join("|")} and a numeric "time")`);
    }
    events.push(parsed as HistoryEvent);
  }
  return events;
}
