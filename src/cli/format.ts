/** How the CLI shows results to people: aligned tables, key/value lists and readable bodies. */
import type { ClusterMember, Delivery, NodeReport, QueueStats } from "../client/index.js";

/** Renders rows under a header, every column padded to its widest cell, two spaces apart. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Renders `key  value` lines with the keys aligned. */
export function renderKeyValues(pairs: readonly (readonly [string, string | number])[]): string {
  const width = Math.max(0, ...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join("\n") + "\n";
}

/** A body as one line of text: UTF-8 with control characters escaped, or a byte count and base64 when binary. */
export function bodyText(body: Uint8Array): string {
  const text = Buffer.from(body).toString("utf8");
  if (text.includes("\uFFFD")) return `<${body.byteLength} bytes, base64 ${Buffer.from(body).toString("base64")}>`;
  return JSON.stringify(text).slice(1, -1);
}

/** The machine-readable form of a delivery: body as UTF-8 text and as base64, so binary survives. */
export function deliveryJson(delivery: Delivery): Record<string, unknown> {
  return {
    queue: delivery.queue,
    id: delivery.id,
    deliveryCount: delivery.deliveryCount,
    enqueuedAtMs: delivery.enqueuedAtMs,
    receipt: delivery.receipt,
    headers: delivery.headers,
    body: delivery.text(),
    bodyBase64: delivery.body.toString("base64"),
  };
}

/** A table of deliveries: id, delivery count, receipt, body (and headers when any). */
export function renderDeliveries(deliveries: readonly Delivery[]): string {
  const withHeaders = deliveries.some((delivery) => Object.keys(delivery.headers).length > 0);
  const header = ["ID", "DELIVERIES", "RECEIPT", ...(withHeaders ? ["HEADERS"] : []), "BODY"];
  const rows = deliveries.map((delivery) => [
    String(delivery.id),
    String(delivery.deliveryCount),
    delivery.receipt,
    ...(withHeaders ? [headerText(delivery.headers)] : []),
    bodyText(delivery.body),
  ]);
  return renderTable(header, rows);
}

function headerText(headers: Readonly<Record<string, string>>): string {
  const text = Object.entries(headers)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
  return text === "" ? "-" : text;
}

/** The stats of one queue as aligned key/value lines. */
export function renderQueueStats(queue: string, stats: QueueStats): string {
  return renderKeyValues([
    ["queue", queue],
    ["ready", stats.ready],
    ["in flight", stats.inFlight],
    ["delayed", stats.delayed],
    ["enqueued (total)", stats.enqueuedTotal],
    ["acked (total)", stats.ackedTotal],
    ["dead-lettered (total)", stats.deadLetteredTotal],
    ["purged (total)", stats.purgedTotal],
  ]);
}

/** One row per queue with its counts. */
export function renderQueueList(queues: readonly { readonly name: string; readonly stats: QueueStats }[]): string {
  const header = ["QUEUE", "READY", "IN-FLIGHT", "DELAYED", "ENQUEUED", "ACKED", "DEAD-LETTERED", "PURGED"];
  const rows = queues.map(({ name, stats }) => [
    name,
    ...[stats.ready, stats.inFlight, stats.delayed, stats.enqueuedTotal, stats.ackedTotal, stats.deadLetteredTotal, stats.purgedTotal].map(String),
  ]);
  return renderTable(header, rows);
}

/** One node of `raftq status`: what it reported, and how far its applied index trails the leader's commit. */
export interface NodeRow {
  readonly address: string;
  readonly reachable: boolean;
  readonly id?: string;
  readonly role?: string;
  readonly term?: number;
  readonly leaderId?: string;
  readonly commitIndex?: number;
  readonly appliedIndex?: number;
  /** Leader commit index − this node's applied index; absent when no reachable node leads. */
  readonly lag?: number;
  /** Why the node could not be asked. */
  readonly error?: string;
}

/** Turns status reports into rows, measuring lag against the reachable leader with the highest term. */
export function nodeRows(reports: readonly NodeReport[]): NodeRow[] {
  let leaderCommit: number | undefined;
  let leaderTerm = -1;
  for (const report of reports) {
    if (report.reachable && report.status.role === "leader" && report.status.term > leaderTerm) {
      leaderTerm = report.status.term;
      leaderCommit = report.status.commitIndex;
    }
  }
  return reports.map((report): NodeRow => {
    if (!report.reachable) return { address: report.address, reachable: false, error: report.error.message };
    const { status } = report;
    return {
      address: report.address,
      reachable: true,
      id: status.nodeId,
      role: status.role,
      term: status.term,
      leaderId: status.leaderId,
      commitIndex: status.commitIndex,
      appliedIndex: status.appliedIndex,
      ...(leaderCommit === undefined ? {} : { lag: Math.max(0, leaderCommit - status.appliedIndex) }),
    };
  });
}

/** The `raftq status` table, then one line per unreachable node saying why. */
export function renderNodeRows(rows: readonly NodeRow[]): string {
  const header = ["ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG"];
  const cell = (value: string | number | undefined): string => (value === undefined ? "-" : String(value));
  const table = renderTable(
    header,
    rows.map((row) =>
      row.reachable
        ? [cell(row.id), row.address, cell(row.role), cell(row.term), cell(row.commitIndex), cell(row.appliedIndex), cell(row.lag)]
        : ["-", row.address, "unreachable", "-", "-", "-", "-"],
    ),
  );
  const problems = rows.filter((row) => !row.reachable).map((row) => `${row.address}: ${row.error ?? "unreachable"}\n`);
  return problems.length === 0 ? table : `${table}\n${problems.join("")}`;
}

/** The members table of `raftq cluster status` and the membership commands. */
export function renderMembers(members: readonly ClusterMember[]): string {
  if (members.length === 0) return "no members known (the node has not joined a cluster yet)\n";
  return renderTable(
    ["MEMBER", "ADDRESS", "KIND", "MATCH"],
    members.map((member) => [member.id, member.address, member.voter ? "voter" : "learner", String(member.matchIndex)]),
  );
}

/** The members as the best-informed reachable node reports them: the leader, else any node that answered. */
export function reportedMembers(reports: readonly NodeReport[]): ClusterMember[] {
  const answered = reports.flatMap((report) => (report.reachable ? [report.status] : []));
  const leader = answered.filter((status) => status.role === "leader").sort((a, b) => b.term - a.term)[0];
  return (leader ?? answered[0])?.members ?? [];
}
