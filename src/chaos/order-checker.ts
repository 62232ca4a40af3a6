/**
 * The order check: within a queue, messages are first delivered in id order (Dequeue leases the lowest
 * ready ids first). It flags message `a` when a dequeue leased a higher id `b` entirely while `a` was
 * certainly ready: `a`'s enqueue had been acknowledged before that dequeue was sent, and `a`'s first
 * delivery (delivery count 1, so nobody had leased it before) was only asked for after that dequeue
 * answered. Concurrent dequeues are never flagged, whatever order their answers arrive in.
 * It needs "acknowledged implies committed"; runs with --unsafe-ack-before-commit skip it.
 */
import { ms } from "./cluster-checker.js";
import type { Delivery, Observations } from "./observations.js";

/** A message passed over while it was ready. */
export interface OrderViolation {
  readonly queue: string;
  readonly id: number;
  readonly body: string;
  readonly acknowledgedAt: number;
  readonly firstDequeueSentAt: number;
  readonly overtakenBy: { readonly id: number; readonly body: string; readonly dequeueSentAt: number; readonly answeredAt: number };
}

/** The order part of a check report. */
export interface OrderCheck {
  readonly checked: boolean;
  readonly count: number;
  readonly violations: readonly OrderViolation[];
}

/** Most violations described; the count stays exact. */
const MAX_LISTED = 50;

/** Runs the order check over every queue. */
export function checkOrder(observations: Observations): OrderCheck {
  const byQueue = new Map<string, Delivery[]>();
  for (const list of observations.deliveries.values()) {
    for (const delivery of list) {
      const queue = byQueue.get(delivery.queue);
      if (queue) queue.push(delivery);
      else byQueue.set(delivery.queue, [delivery]);
    }
  }
  const violations: OrderViolation[] = [];
  let count = 0;
  for (const [queue, deliveries] of byQueue) {
    const candidates: { first: Delivery; acknowledgedAt: number }[] = [];
    for (const list of observations.deliveries.values()) {
      const first = list[0];
      if (first === undefined || first.queue !== queue || first.deliveryCount !== 1) continue;
      const acks = (observations.enqueues.get(first.body) ?? []).filter((attempt) => attempt.outcome === "ok" && attempt.queue === queue);
      if (acks.length === 0) continue;
      candidates.push({ first, acknowledgedAt: Math.min(...acks.map((attempt) => attempt.completeTime ?? Infinity)) });
    }
    for (const candidate of overtaken(candidates, deliveries)) {
      count++;
      if (violations.length >= MAX_LISTED) continue;
      const { first, acknowledgedAt } = candidate;
      const witness = deliveries
        .filter((d) => d.id > first.id && d.invokeTime > acknowledgedAt && d.okTime < first.invokeTime)
        .sort((a, b) => a.okTime - b.okTime)[0]!;
      violations.push({
        queue,
        id: first.id,
        body: first.body,
        acknowledgedAt,
        firstDequeueSentAt: first.invokeTime,
        overtakenBy: { id: witness.id, body: witness.body, dequeueSentAt: witness.invokeTime, answeredAt: witness.okTime },
      });
    }
  }
  return { checked: true, count, violations };
}

/** The check, not run, for histories where an acknowledgement does not imply a commit. */
export function orderNotChecked(): OrderCheck {
  return { checked: false, count: 0, violations: [] };
}

/** One line per order violation. */
export function orderViolationLines(check: OrderCheck): string[] {
  const lines = check.violations.map(
    (v) =>
      `${v.queue}#${v.id} (${v.body}, acknowledged ${ms(v.acknowledgedAt)}) was ready but ${v.queue}#${v.overtakenBy.id} was leased before it (dequeue ${ms(v.overtakenBy.dequeueSentAt)}–${ms(v.overtakenBy.answeredAt)}; ${v.id} first asked for at ${ms(v.firstDequeueSentAt)})`,
  );
  if (check.count > check.violations.length) lines.push(`…and ${check.count - check.violations.length} more order violations`);
  return lines;
}

/**
 * The candidates some delivery of a higher id overtook: one with invokeTime > acknowledgedAt and
 * okTime < first.invokeTime. Candidates in decreasing id; deliveries of higher ids are added to a
 * Fenwick tree giving the smallest okTime among deliveries sent after a given time: O(n log n).
 */
function overtaken<C extends { first: Delivery; acknowledgedAt: number }>(candidates: readonly C[], deliveries: readonly Delivery[]): C[] {
  const times = [...new Set(deliveries.map((d) => d.invokeTime))].sort((a, b) => a - b);
  // Position p in the tree stands for the invoke time times[times.length - 1 - p]: a prefix is "sent after".
  const tree = new Float64Array(times.length + 1).fill(Infinity);
  const insert = (invokeTime: number, okTime: number): void => {
    for (let i = times.length - lowerBound(times, invokeTime); i <= times.length; i += i & -i) tree[i] = Math.min(tree[i]!, okTime);
  };
  /** Smallest okTime among inserted deliveries whose invokeTime > `after`. */
  const query = (after: number): number => {
    let best = Infinity;
    for (let i = times.length - upperBound(times, after); i > 0; i -= i & -i) best = Math.min(best, tree[i]!);
    return best;
  };
  const byId = [...deliveries].sort((a, b) => b.id - a.id);
  const found: C[] = [];
  let next = 0;
  for (const candidate of [...candidates].sort((a, b) => b.first.id - a.first.id)) {
    while (next < byId.length && byId[next]!.id > candidate.first.id) {
      insert(byId[next]!.invokeTime, byId[next]!.okTime);
      next++;
    }
    if (query(candidate.acknowledgedAt) < candidate.first.invokeTime) found.push(candidate);
  }
  return found;
}

/** First index whose value is ≥ x. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose value is > x. */
function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
