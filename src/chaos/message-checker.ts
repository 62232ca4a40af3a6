/**
 * The message checks of a queue history (after the final drain):
 * - lost: an enqueue the cluster acknowledged whose message was never delivered. Must be 0.
 * - unexpected: a delivery of something never attempted (or attempted to another queue, or refused for
 *   sure, or delivered before it was sent, or one id carrying two bodies). Must be 0.
 * - duplicated: a message delivered more than once. raftq delivers at least once, so a redelivery is
 *   allowed when something explains it:
 *     lease-expired: the later delivery came after the earlier lease could have run out (the lease was
 *       granted after its dequeue was invoked, so it ran at least until invoke + visibility timeout);
 *     nacked: a nack of an earlier delivery was sent before the later delivery (whatever its answer);
 *     keyless-retry: the body was enqueued twice (two ids), and some attempt carried no idempotency key.
 *   Anything else is unexplained: a failure. So is a delivery after an ack of an earlier delivery succeeded
 *   (acks by receipt are refused once the message was redelivered, so a successful one deleted it).
 * - recovered: enqueues whose outcome was unknown and whose message showed up (fine, and worth knowing).
 */
import { ms } from "./cluster-checker.js";
import { messageKey, type Delivery, type EnqueueAttempt, type Observations, type Settlement } from "./observations.js";

/** Why a redelivery is allowed. */
export type Explanation = "lease-expired" | "nacked" | "keyless-retry";

/** An acknowledged message never delivered. */
export interface LostMessage {
  readonly body: string;
  readonly queue: string;
  /** The id the ack named (0 when the server answered without one). */
  readonly id: number | undefined;
  readonly acknowledgedAt: number;
  readonly process: string;
}

/** A delivery that should not exist. */
export interface UnexpectedDelivery {
  readonly body: string;
  readonly queue: string;
  readonly id: number;
  readonly deliveredAt: number;
  readonly reason: string;
}

/** One message delivered more than once, and why each extra delivery is or is not allowed. */
export interface DuplicateMessage {
  readonly body: string;
  readonly deliveries: number;
  readonly explanations: readonly Explanation[];
  /** Empty when every extra delivery is explained. */
  readonly unexplained: readonly string[];
}

/** The message part of a check report. */
export interface MessageCheck {
  /** Distinct bodies some enqueue was attempted for. */
  readonly attempted: number;
  /** …of which at least one attempt was acknowledged. */
  readonly acknowledged: number;
  /** …of which every attempt failed for sure. */
  readonly failed: number;
  /** …of which no attempt was acknowledged and some had an unknown outcome. */
  readonly unknown: number;
  /** Distinct bodies delivered. */
  readonly delivered: number;
  readonly deliveries: number;
  readonly lost: { readonly count: number; readonly messages: readonly LostMessage[] };
  readonly unexpected: { readonly count: number; readonly deliveries: readonly UnexpectedDelivery[] };
  readonly duplicates: {
    /** Messages (bodies) delivered more than once. */
    readonly count: number;
    readonly explained: number;
    readonly unexplained: number;
    /** Extra deliveries by explanation (a message may have several). */
    readonly byExplanation: Readonly<Record<Explanation, number>>;
    /** Every unexplained duplicate (up to a bound), then explained ones as examples. */
    readonly messages: readonly DuplicateMessage[];
  };
  readonly recovered: { readonly count: number; readonly unknownNeverDelivered: number };
}

/** Tolerance when comparing client times with lease deadlines the nodes computed from the same clock. */
export const CLOCK_SLACK_MS = 50;
/** Most items of each list kept in the report; counts stay exact. */
const MAX_LISTED = 200;
const MAX_EXPLAINED_EXAMPLES = 20;

/** Runs the message checks. */
export function checkMessages(observations: Observations): MessageCheck {
  const { enqueues, deliveries, settlements } = observations;
  const deliveriesByBody = new Map<string, Delivery[]>();
  for (const list of deliveries.values()) {
    for (const delivery of list) {
      const byBody = deliveriesByBody.get(delivery.body);
      if (byBody) byBody.push(delivery);
      else deliveriesByBody.set(delivery.body, [delivery]);
    }
  }

  const lost: LostMessage[] = [];
  let acknowledged = 0;
  let failed = 0;
  let unknown = 0;
  let recovered = 0;
  let unknownNeverDelivered = 0;
  for (const [body, attempts] of enqueues) {
    const seen = deliveriesByBody.has(body);
    const ok = attempts.find((attempt) => attempt.outcome === "ok");
    if (ok) {
      acknowledged++;
      if (!seen) lost.push({ body, queue: ok.queue, id: ok.id, acknowledgedAt: ok.completeTime ?? ok.invokeTime, process: ok.process });
    } else if (attempts.every((attempt) => attempt.outcome === "fail")) {
      failed++;
    } else {
      unknown++;
      if (seen) recovered++;
      else unknownNeverDelivered++;
    }
  }

  const unexpected: UnexpectedDelivery[] = [];
  let unexpectedCount = 0;
  for (const [body, list] of deliveriesByBody) {
    for (const delivery of list) {
      const reason = unexpectedReason(delivery, enqueues.get(body));
      if (reason === undefined) continue;
      unexpectedCount++;
      if (unexpected.length < MAX_LISTED) unexpected.push({ body, queue: delivery.queue, id: delivery.id, deliveredAt: delivery.okTime, reason });
    }
  }
  for (const list of deliveries.values()) {
    const bodies = new Set(list.map((delivery) => delivery.body));
    if (bodies.size > 1) {
      const first = list[0]!;
      unexpectedCount++;
      if (unexpected.length < MAX_LISTED) {
        unexpected.push({ body: first.body, queue: first.queue, id: first.id, deliveredAt: first.okTime, reason: `id ${first.id} was delivered with ${bodies.size} different bodies: ${[...bodies].slice(0, 3).join(", ")}` });
      }
    }
  }

  const byExplanation: Record<Explanation, number> = { "lease-expired": 0, nacked: 0, "keyless-retry": 0 };
  const unexplainedList: DuplicateMessage[] = [];
  const explainedExamples: DuplicateMessage[] = [];
  let duplicateCount = 0;
  let unexplainedCount = 0;
  for (const [body, list] of deliveriesByBody) {
    if (list.length < 2) continue;
    duplicateCount++;
    const explanations: Explanation[] = [];
    const unexplained: string[] = [];
    const ids = new Set(list.map((delivery) => messageKey(delivery.queue, delivery.id)));
    if (ids.size > 1) {
      const keyless = (enqueues.get(body) ?? []).some((attempt) => !attempt.keyed);
      if (keyless) explanations.push("keyless-retry");
      else unexplained.push(`enqueued ${ids.size} times (${[...ids].join(", ")}) although every attempt carried its idempotency key`);
    }
    for (const key of ids) {
      const ofMessage = deliveries.get(key) ?? [];
      for (let i = 1; i < ofMessage.length; i++) {
        const verdict = explainRedelivery(ofMessage.slice(0, i), ofMessage[i]!, settlements.get(key) ?? []);
        if (typeof verdict === "string") explanations.push(verdict);
        else unexplained.push(verdict.reason);
      }
    }
    for (const explanation of explanations) byExplanation[explanation]++;
    const duplicate = { body, deliveries: list.length, explanations: [...new Set(explanations)], unexplained };
    if (unexplained.length > 0) {
      unexplainedCount++;
      if (unexplainedList.length < MAX_LISTED) unexplainedList.push(duplicate);
    } else if (explainedExamples.length < MAX_EXPLAINED_EXAMPLES) {
      explainedExamples.push(duplicate);
    }
  }

  return {
    attempted: enqueues.size,
    acknowledged,
    failed,
    unknown,
    delivered: deliveriesByBody.size,
    deliveries: [...deliveries.values()].reduce((sum, list) => sum + list.length, 0),
    lost: { count: lost.length, messages: lost.slice(0, MAX_LISTED) },
    unexpected: { count: unexpectedCount, deliveries: unexpected },
    duplicates: {
      count: duplicateCount,
      explained: duplicateCount - unexplainedCount,
      unexplained: unexplainedCount,
      byExplanation,
      messages: [...unexplainedList, ...explainedExamples],
    },
    recovered: { count: recovered, unknownNeverDelivered },
  };
}

/** Why a delivery should not exist, or undefined when its enqueue explains it. */
function unexpectedReason(delivery: Delivery, attempts: readonly EnqueueAttempt[] | undefined): string | undefined {
  if (attempts === undefined || attempts.length === 0) return "no enqueue of this body was ever attempted";
  const sameQueue = attempts.filter((attempt) => attempt.queue === delivery.queue);
  if (sameQueue.length === 0) return `enqueued to ${[...new Set(attempts.map((attempt) => attempt.queue))].join(", ")} but delivered from ${delivery.queue}`;
  if (sameQueue.every((attempt) => attempt.outcome === "fail")) {
    return `every enqueue of it failed for sure (${sameQueue.map((attempt) => attempt.error?.code ?? "?").join(", ")})`;
  }
  const firstInvoke = Math.min(...sameQueue.map((attempt) => attempt.invokeTime));
  if (delivery.okTime < firstInvoke) return `delivered at ${ms(delivery.okTime)}, before its first enqueue was sent at ${ms(firstInvoke)}`;
  return undefined;
}

/**
 * Why `later` may follow the `earlier` deliveries of the same message: "lease-expired" or "nacked", or
 * `{reason}` when nothing allows it.
 */
export function explainRedelivery(earlier: readonly Delivery[], later: Delivery, settlements: readonly Settlement[]): Explanation | { reason: string } {
  const previous = earlier[earlier.length - 1]!;
  const where = `${later.queue}#${later.id} (${later.body})`;
  if (later.deliveryCount <= previous.deliveryCount) {
    return { reason: `${where} delivered twice with the same delivery count ${later.deliveryCount} (answered ${ms(previous.okTime)} and ${ms(later.okTime)})` };
  }
  const ackedBefore = settlements.find(
    (settlement) => settlement.f === "ack" && settlement.outcome === "ok" && settlement.settled === true && settlement.deliveryCount < later.deliveryCount,
  );
  if (ackedBefore) {
    return { reason: `${where} delivered again at ${ms(later.okTime)} (count ${later.deliveryCount}) after an ack of delivery ${ackedBefore.deliveryCount} succeeded (sent ${ms(ackedBefore.invokeTime)})` };
  }
  // Any nack sent in time counts, even one answered "refused": the SDK repeats a nack whose answer was
  // lost, and the repeat is refused precisely because the first attempt already gave the message back.
  const nacked = settlements.some(
    (settlement) =>
      settlement.f === "nack" &&
      settlement.deliveryCount >= previous.deliveryCount &&
      settlement.deliveryCount < later.deliveryCount &&
      settlement.invokeTime <= later.okTime,
  );
  if (nacked) return "nacked";
  const earliestExpiry = previous.invokeTime + previous.visibilityTimeoutMs;
  if (later.okTime + CLOCK_SLACK_MS >= earliestExpiry) return "lease-expired";
  return {
    reason: `${where} delivered again by ${ms(later.okTime)} (count ${later.deliveryCount}), but the lease of delivery ${previous.deliveryCount} (dequeue sent ${ms(previous.invokeTime)}, ${previous.visibilityTimeoutMs} ms) could not end before ${ms(earliestExpiry)}, and no nack came first`,
  };
}
