/**
 * Hand-made chaos histories for the checker tests: each method appends the events one operation (or
 * sample, or phase) would leave in a real history.jsonl, with explicit times.
 */
import type { DeliveredMessage, HistoryEvent, OpError } from "../../src/chaos/history.js";

/** A message as a test names it. */
export interface Msg {
  readonly id: number;
  readonly body: string;
  readonly count?: number;
}

const UNKNOWN: OpError = { code: "DEADLINE_EXCEEDED", message: "no answer in time" };

/** Builds a history; `events` is what the checker reads. */
export class HistoryBuilder {
  readonly events: HistoryEvent[] = [];
  private nextOp = 1;

  /** A complete run frame: start, workload 0..10 s, healed, drain complete. Call `end()` after the operations. */
  constructor(detail: Record<string, string | number | boolean> = { seed: 1, nodes: 3, durationMs: 10_000 }) {
    this.events.push({ type: "phase", phase: "start", detail, time: 0 });
    this.events.push({ type: "phase", phase: "workload-start", detail: {}, time: 0 });
  }

  /** One enqueue of `body` to `queue`, answered `outcome` (ok gives `id`). */
  enqueue(queue: string, body: string, at: number, until: number, options: { outcome?: "ok" | "fail" | "info"; id?: number; key?: string | null; process?: string } = {}): this {
    const op = this.nextOp++;
    const process = options.process ?? "p1";
    const base = { op, process, f: "enqueue" as const, queue };
    this.events.push({ ...base, type: "invoke", value: { body, key: options.key === undefined ? body : options.key, via: "call" }, time: at });
    const outcome = options.outcome ?? "ok";
    if (outcome === "ok") this.events.push({ ...base, type: "ok", value: { id: options.id ?? 0, duplicate: false }, time: until });
    else this.events.push({ ...base, type: outcome, error: outcome === "fail" ? { code: "INVALID_ARGUMENT", message: "bad" } : UNKNOWN, time: until });
    return this;
  }

  /** One dequeue that returned `messages` (delivery count 1 unless given), with a lease of `visibilityTimeoutMs`. */
  dequeue(queue: string, at: number, until: number, messages: readonly Msg[], visibilityTimeoutMs = 2_000, process = "c1"): this {
    const op = this.nextOp++;
    const base = { op, process, f: "dequeue" as const, queue };
    this.events.push({ ...base, type: "invoke", value: { maxMessages: 10, visibilityTimeoutMs, waitMs: 0 }, time: at });
    this.events.push({ ...base, type: "ok", value: { messages: messages.map(delivered) }, time: until });
    return this;
  }

  /** An ack or nack of a delivery, answered settled (or refused), or with an unknown outcome. */
  settle(f: "ack" | "nack", queue: string, message: Msg, at: number, until: number, answer: boolean | "unknown" = true): this {
    const op = this.nextOp++;
    const target = { id: message.id, body: message.body, receipt: receiptOf(message), deliveryCount: message.count ?? 1 };
    const time = until;
    if (f === "ack") {
      this.events.push({ op, process: "c1", f, queue, type: "invoke", value: target, time: at });
      if (answer === "unknown") this.events.push({ op, process: "c1", f, queue, type: "info", error: UNKNOWN, time });
      else this.events.push({ op, process: "c1", f, queue, type: "ok", value: { settled: answer }, time });
    } else {
      this.events.push({ op, process: "c1", f, queue, type: "invoke", value: { ...target, delayMs: 0 }, time: at });
      if (answer === "unknown") this.events.push({ op, process: "c1", f, queue, type: "info", error: UNKNOWN, time });
      else this.events.push({ op, process: "c1", f, queue, type: "ok", value: { settled: answer }, time });
    }
    return this;
  }

  /** One Status sample. */
  status(node: string, time: number, sample: { role?: string; term: number; commit: number; incarnation?: number; applied?: number }): this {
    this.events.push({
      type: "status",
      node,
      incarnation: sample.incarnation ?? 1,
      role: sample.role ?? "follower",
      term: sample.term,
      leader: "",
      commit: sample.commit,
      applied: sample.applied ?? sample.commit,
      time,
    });
    return this;
  }

  /** A fault that started and healed. */
  fault(index: number, kind: "kill" | "isolate", from: number, to: number, detail = `${kind} n1`): this {
    this.events.push({ type: "fault", phase: "start", fault: index, kind, nodes: ["n1"], detail, time: from });
    this.events.push({ type: "fault", phase: "end", fault: index, kind, nodes: ["n1"], detail: `healed: ${detail}`, time: to });
    return this;
  }

  /** Workload end at 10 s, healed, and a drain that ended (complete or not). */
  end(drainComplete = true): HistoryEvent[] {
    this.events.push({ type: "phase", phase: "workload-end", detail: {}, time: 10_000 });
    this.events.push({ type: "phase", phase: "healed", detail: { ok: true, leader: "n1" }, time: 10_500 });
    this.events.push({ type: "phase", phase: "drain-end", detail: { complete: drainComplete, remaining: drainComplete ? "{}" : '{"q":"3 ready"}' }, time: 12_000 });
    return [...this.events].sort((a, b) => a.time - b.time);
  }
}

function delivered(message: Msg): DeliveredMessage {
  return { id: message.id, body: message.body, deliveryCount: message.count ?? 1, receipt: receiptOf(message) };
}

function receiptOf(message: Msg): string {
  return `r-${message.id}-${message.count ?? 1}`;
}
