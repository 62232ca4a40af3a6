/**
 * The history checker: a pure function from a chaos run's history to a report. It pairs operations,
 * then runs the message checks (lost, unexpected, duplicates and their explanations, recovered), the order
 * check, the cluster checks over Status samples, and summarises operations, faults and unavailability.
 * Any violation makes the report invalid; each is one line in `violations`.
 */
import { unavailabilityWindows, type UnavailabilityWindow } from "./availability.js";
import { checkCluster, clusterViolations, ms, type ClusterCheck } from "./cluster-checker.js";
import type { FaultEvent, HistoryEvent, NodeEvent, PhaseEvent } from "./history.js";
import { checkMessages, type MessageCheck } from "./message-checker.js";
import { observe, type Outcome, type PairedOp } from "./observations.js";
import { checkOrder, orderNotChecked, orderViolationLines, type OrderCheck } from "./order-checker.js";

/** Everything the checker found. */
export interface CheckReport {
  /** False when any property was violated. */
  readonly valid: boolean;
  /** One line per violation (lists are cut after a bound; counts are exact). */
  readonly violations: readonly string[];
  /** The run's parameters, from its start event. */
  readonly run: Readonly<Record<string, string | number | boolean>>;
  /** Operations by kind (enqueues split by how they were sent) and outcome. */
  readonly operations: Readonly<Record<string, Readonly<Record<Outcome, number>>>>;
  readonly messages: MessageCheck;
  readonly order: OrderCheck;
  readonly cluster: ClusterCheck;
  /** Longest stretches with no successful operation during the workload. */
  readonly unavailability: readonly UnavailabilityWindow[];
  readonly faults: {
    readonly total: number;
    readonly byKind: Readonly<Record<string, number>>;
    /** Faults whose injection or healing failed because of a node (e.g. it would not restart). */
    readonly errors: readonly string[];
  };
  readonly nodes: {
    /** Process starts, the first ones included. */
    readonly starts: number;
    /** Node processes that exited without being told to. */
    readonly crashes: readonly string[];
  };
  /** Whether the cluster recovered (every node up, one leader agreed on) once every fault was healed. */
  readonly heal: { readonly ok: boolean; readonly detail: string };
  /** The final drain: whether every queue was confirmed empty. */
  readonly drain: { readonly complete: boolean; readonly detail: string };
}

/** Lines of one kind listed in `violations` before "…and N more". */
const MAX_LINES_PER_KIND = 20;

/** Checks a whole history. */
export function checkHistory(events: readonly HistoryEvent[]): CheckReport {
  const observations = observe(events);
  const phases = events.filter((event): event is PhaseEvent => event.type === "phase");
  const run = phases.find((phase) => phase.phase === "start")?.detail ?? {};
  const messages = checkMessages(observations);
  // With acks before commit, an acknowledged message may not exist yet when a later one is leased.
  const order = run["unsafeAckBeforeCommit"] === true ? orderNotChecked() : checkOrder(observations);
  const cluster = checkCluster(events);
  const faults = summarizeFaults(events.filter((event): event is FaultEvent => event.type === "fault"));
  const nodes = summarizeNodes(events.filter((event): event is NodeEvent => event.type === "node"));
  const healed = phases.find((phase) => phase.phase === "healed");
  const heal = healed
    ? { ok: healed.detail["ok"] !== false, detail: String(healed.detail["error"] ?? healed.detail["leader"] ?? "") }
    : { ok: false, detail: "the history has no healed event: the run ended before healing" };
  const drainEnd = phases.find((phase) => phase.phase === "drain-end");
  const drain = drainEnd
    ? { complete: drainEnd.detail["complete"] === true, detail: String(drainEnd.detail["remaining"] ?? "") }
    : { complete: false, detail: "the history has no drain-end: the run did not finish its drain" };

  const violations: string[] = [];
  const list = (lines: readonly string[], total = lines.length): void => {
    violations.push(...lines.slice(0, MAX_LINES_PER_KIND));
    if (total > Math.min(lines.length, MAX_LINES_PER_KIND)) violations.push(`…and ${total - Math.min(lines.length, MAX_LINES_PER_KIND)} more of the same kind`);
  };
  list(
    messages.lost.messages.map((m) => `lost: ${m.body} (${m.queue}${m.id ? `#${m.id}` : ""}) acknowledged to ${m.process} at ${ms(m.acknowledgedAt)}, never delivered`),
    messages.lost.count,
  );
  list(messages.unexpected.deliveries.map((d) => `unexpected: ${d.queue}#${d.id} (${d.body}) delivered at ${ms(d.deliveredAt)}: ${d.reason}`), messages.unexpected.count);
  const listedUnexplained = messages.duplicates.messages.filter((d) => d.unexplained.length > 0);
  const unexplainedLines = listedUnexplained.flatMap((d) => d.unexplained.map((reason) => `unexplained duplicate: ${reason}`));
  list(unexplainedLines, unexplainedLines.length + messages.duplicates.unexplained - listedUnexplained.length);
  list(orderViolationLines(order), order.count);
  list(clusterViolations(cluster));
  list(faults.errors.map((error) => `fault: ${error}`));
  list(nodes.crashes.map((crash) => `crash: ${crash}`));
  if (!heal.ok) violations.push(`the cluster did not recover after every fault was healed: ${heal.detail}`);
  if (!drain.complete) violations.push(`drain incomplete, so "lost" cannot be told from "not yet consumed": ${drain.detail}`);

  return {
    valid: violations.length === 0,
    violations,
    run,
    operations: countOperations(observations.ops),
    messages,
    order,
    cluster,
    unavailability: unavailabilityWindows(events),
    faults,
    nodes,
    heal,
    drain,
  };
}

/** Operations by kind and outcome; enqueues split into keyed calls, keyless calls and publisher sends. */
function countOperations(ops: readonly PairedOp[]): Record<string, Record<Outcome, number>> {
  const counts: Record<string, Record<Outcome, number>> = {};
  for (const op of ops) {
    let kind: string = op.f;
    if (op.f === "enqueue") {
      const value = (op as PairedOp<"enqueue">).value;
      kind = value.via === "publisher" ? "enqueue (publisher)" : value.key === null ? "enqueue (no key)" : "enqueue";
    }
    const row = (counts[kind] ??= { ok: 0, fail: 0, info: 0 });
    row[op.outcome]++;
  }
  return counts;
}

function summarizeFaults(events: readonly FaultEvent[]): CheckReport["faults"] {
  const byKind: Record<string, number> = {};
  const errors: string[] = [];
  for (const event of events) {
    if (event.phase === "start") byKind[event.kind] = (byKind[event.kind] ?? 0) + 1;
    if (event.error !== undefined) errors.push(`#${event.fault} ${event.kind} at ${ms(event.time)}: ${event.error}`);
  }
  return { total: Object.values(byKind).reduce((sum, n) => sum + n, 0), byKind, errors };
}

function summarizeNodes(events: readonly NodeEvent[]): CheckReport["nodes"] {
  return {
    starts: events.filter((event) => event.event === "started").length,
    crashes: events
      .filter((event) => event.event === "exited" && event.requested === false)
      .map((event) => `${event.node} (run ${event.incarnation}) exited by itself at ${ms(event.time)}: ${event.detail}`),
  };
}
