/**
 * The operations of a history paired up (each invoke with its completion) and regrouped the way the
 * checkers ask about them: enqueue attempts by body, deliveries by message, acks and nacks by receipt.
 * An invoke without a completion (the run ended, the process was stopped) counts as `info`: unknown.
 */
import type { HistoryEvent, InvokeValues, OkValues, OpError, OpEvent, OpFunction } from "./history.js";

/** How an operation ended. */
export type Outcome = "ok" | "fail" | "info";

/** One operation, invoke and completion together. */
export interface PairedOp<F extends OpFunction = OpFunction> {
  readonly op: number;
  readonly process: string;
  readonly f: F;
  readonly queue: string;
  readonly invokeTime: number;
  /** Undefined for an operation never completed. */
  readonly completeTime: number | undefined;
  readonly outcome: Outcome;
  readonly value: InvokeValues[F];
  readonly result: OkValues[F] | undefined;
  readonly error: OpError | undefined;
}

/** One attempt to enqueue a body. */
export interface EnqueueAttempt {
  readonly op: number;
  readonly process: string;
  readonly queue: string;
  readonly keyed: boolean;
  readonly via: "call" | "publisher";
  readonly invokeTime: number;
  readonly completeTime: number | undefined;
  readonly outcome: Outcome;
  readonly id: number | undefined;
  readonly error: OpError | undefined;
}

/** One delivery of a message, as a successful dequeue returned it. */
export interface Delivery {
  readonly queue: string;
  readonly id: number;
  readonly body: string;
  readonly deliveryCount: number;
  readonly receipt: string;
  readonly process: string;
  readonly op: number;
  /** When the dequeue was invoked: the lease was granted after this. */
  readonly invokeTime: number;
  /** When the dequeue answered: the lease was granted before this. */
  readonly okTime: number;
  readonly visibilityTimeoutMs: number;
}

/** An ack or nack of one receipt. */
export interface Settlement {
  readonly f: "ack" | "nack";
  readonly receipt: string;
  readonly deliveryCount: number;
  readonly invokeTime: number;
  readonly completeTime: number | undefined;
  readonly outcome: Outcome;
  /** For ok outcomes: false when the receipt was refused. */
  readonly settled: boolean | undefined;
}

/** Everything the message checks read. */
export interface Observations {
  readonly ops: readonly PairedOp[];
  /** Enqueue attempts by body, in invoke order. */
  readonly enqueues: ReadonlyMap<string, readonly EnqueueAttempt[]>;
  /** Deliveries by `messageKey(queue, id)`, in lease order (delivery count, then answer time). */
  readonly deliveries: ReadonlyMap<string, readonly Delivery[]>;
  /** Acks and nacks by `messageKey(queue, id)`. */
  readonly settlements: ReadonlyMap<string, readonly Settlement[]>;
}

/** The key of one message: queue and id. */
export function messageKey(queue: string, id: number): string {
  return `${queue}#${id}`;
}

/** Pairs and regroups the operations of a history. */
export function observe(events: readonly HistoryEvent[]): Observations {
  const invokes = new Map<number, Extract<OpEvent, { type: "invoke" }>>();
  const completions = new Map<number, Exclude<OpEvent, { type: "invoke" }>>();
  for (const event of events) {
    if (event.type === "invoke") invokes.set(event.op, event);
    else if (event.type === "ok" || event.type === "fail" || event.type === "info") completions.set(event.op, event);
  }
  const ops: PairedOp[] = [];
  for (const invoke of invokes.values()) {
    const completion = completions.get(invoke.op);
    ops.push({
      op: invoke.op,
      process: invoke.process,
      f: invoke.f,
      queue: invoke.queue,
      invokeTime: invoke.time,
      completeTime: completion?.time,
      outcome: completion?.type ?? "info",
      value: invoke.value,
      result: completion?.type === "ok" ? completion.value : undefined,
      error: completion && completion.type !== "ok" ? completion.error : undefined,
    } as PairedOp);
  }
  ops.sort((a, b) => a.invokeTime - b.invokeTime || a.op - b.op);

  const enqueues = new Map<string, EnqueueAttempt[]>();
  const deliveries = new Map<string, Delivery[]>();
  const settlements = new Map<string, Settlement[]>();
  const push = <T>(map: Map<string, T[]>, key: string, item: T): void => {
    const list = map.get(key);
    if (list) list.push(item);
    else map.set(key, [item]);
  };
  for (const op of ops) {
    if (isOp(op, "enqueue")) {
      push(enqueues, op.value.body, {
        op: op.op,
        process: op.process,
        queue: op.queue,
        keyed: op.value.key !== null,
        via: op.value.via,
        invokeTime: op.invokeTime,
        completeTime: op.completeTime,
        outcome: op.outcome,
        id: op.result?.id,
        error: op.error,
      });
    } else if (isOp(op, "dequeue")) {
      if (op.result === undefined || op.completeTime === undefined) continue;
      for (const message of op.result.messages) {
        push(deliveries, messageKey(op.queue, message.id), {
          queue: op.queue,
          id: message.id,
          body: message.body,
          deliveryCount: message.deliveryCount,
          receipt: message.receipt,
          process: op.process,
          op: op.op,
          invokeTime: op.invokeTime,
          okTime: op.completeTime,
          visibilityTimeoutMs: op.value.visibilityTimeoutMs,
        });
      }
    } else if (isOp(op, "ack") || isOp(op, "nack")) {
      push(settlements, messageKey(op.queue, op.value.id), {
        f: op.f,
        receipt: op.value.receipt,
        deliveryCount: op.value.deliveryCount,
        invokeTime: op.invokeTime,
        completeTime: op.completeTime,
        outcome: op.outcome,
        settled: op.result?.settled,
      });
    }
  }
  // In lease order: the delivery count grows with every lease, while answers may arrive out of order
  // (an answer relayed through a slow link can come after the next lease's).
  for (const list of deliveries.values()) list.sort((a, b) => a.deliveryCount - b.deliveryCount || a.okTime - b.okTime);
  return { ops, enqueues, deliveries, settlements };
}

function isOp<F extends OpFunction>(op: PairedOp, f: F): op is PairedOp<F> {
  return op.f === f;
}
