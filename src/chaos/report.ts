/**
 * The chaos report: a summary table for the terminal (operations by kind and outcome, faults by kind,
 * each checked count, the longest unavailability windows, the verdict with every violation) and the full
 * report as JSON next to the history.
 */
import { writeFileSync } from "node:fs";
import type { CheckReport } from "./checker.js";
import { FAULT_KINDS } from "./schedule.js";

/** Windows shown in the table (the JSON keeps all the checker reported). */
const WINDOWS_SHOWN = 5;
/** Violations shown in the table (the JSON keeps them all). */
const VIOLATIONS_SHOWN = 30;

/** Where a run's files are. */
export interface RunFiles {
  readonly runDir: string;
  readonly history: string;
  readonly report: string;
}

/** Writes the full report as JSON. */
export function writeReport(file: string, report: CheckReport, extra: Readonly<Record<string, unknown>> = {}): void {
  writeFileSync(file, `${JSON.stringify({ ...report, ...extra }, null, 2)}\n`);
}

/** The summary table, ready to print. */
export function formatSummary(report: CheckReport, files: RunFiles): string {
  const lines: string[] = [];
  const run = report.run;
  lines.push(
    `raftq chaos run: seed ${run["seed"] ?? "?"}, ${run["nodes"] ?? "?"} nodes, workload ${seconds(Number(run["durationMs"] ?? 0))}` +
      (run["unsafeAckBeforeCommit"] === true ? ", nodes run with --unsafe-ack-before-commit (a deliberate bug)" : ""),
  );
  lines.push(`  run directory ${files.runDir}`, `  history ${files.history}`, `  report  ${files.report}`, "");

  lines.push(row("operations", "ok", "fail", "info"));
  const totals = { ok: 0, fail: 0, info: 0 };
  for (const [kind, counts] of Object.entries(report.operations).sort()) {
    lines.push(row(`  ${kind}`, counts.ok, counts.fail, counts.info));
    totals.ok += counts.ok;
    totals.fail += counts.fail;
    totals.info += counts.info;
  }
  lines.push(row("  total", totals.ok, totals.fail, totals.info), "");

  const byKind = FAULT_KINDS.map((kind) => `${kind} ${report.faults.byKind[kind] ?? 0}`).join(", ");
  lines.push(`faults injected: ${report.faults.total} (${byKind}); node process starts ${report.nodes.starts}`, "");

  const m = report.messages;
  const d = m.duplicates;
  lines.push(`messages: ${m.attempted} attempted, ${m.acknowledged} acknowledged, ${m.unknown} unknown, ${m.failed} failed; ${m.deliveries} deliveries of ${m.delivered}`);
  lines.push(count("lost (acknowledged, never delivered)", m.lost.count, "must be 0"));
  lines.push(count("unexpected (never sent, or sent elsewhere)", m.unexpected.count, "must be 0"));
  lines.push(
    count(
      "duplicated (delivered more than once)",
      d.count,
      `explained ${d.explained}: lease-expired ${d.byExplanation["lease-expired"]}, nacked ${d.byExplanation.nacked}, keyless-retry ${d.byExplanation["keyless-retry"]}; unexplained ${d.unexplained} (must be 0)`,
    ),
  );
  lines.push(count("recovered (outcome unknown, delivered)", m.recovered.count, `${m.recovered.unknownNeverDelivered} unknown never delivered`));
  lines.push(count("order (passed over while ready)", report.order.count, report.order.checked ? "must be 0" : "not checked: acks do not imply commit here"));
  const c = report.cluster;
  lines.push(
    `cluster: ${c.samples} status samples, ${c.leaderTerms} terms with a leader; two leaders in a term: ${c.splitBrains.length}; ` +
      `commit regressions ${c.commitRegressions.length} (resets across restarts: ${c.commitResetsAcrossRestarts}); term regressions ${c.termRegressions.length}`,
  );
  lines.push(`drain: ${report.drain.complete ? "every queue confirmed empty" : `INCOMPLETE ${report.drain.detail}`}`, "");

  lines.push("unavailability (no successful operation), longest first:");
  if (report.unavailability.length === 0) lines.push("  none of 1 s or more");
  for (const window of report.unavailability.slice(0, WINDOWS_SHOWN)) {
    lines.push(`  ${seconds(window.durationMs).padStart(7)}  ${seconds(window.fromTime)}–${seconds(window.toTime)}  ${window.faults.join("; ") || "(no fault in effect)"}`);
  }
  lines.push("");

  if (report.valid) {
    lines.push("VERDICT: PASS (no violation)");
  } else {
    lines.push(`VERDICT: FAIL (${report.violations.length} violation lines)`);
    for (const violation of report.violations.slice(0, VIOLATIONS_SHOWN)) lines.push(`  - ${violation}`);
    if (report.violations.length > VIOLATIONS_SHOWN) lines.push(`  - …see ${files.report} for the rest`);
  }
  return `${lines.join("\n")}\n`;
}

function row(label: string, ...cells: (string | number)[]): string {
  return label.padEnd(24) + cells.map((cell) => String(cell).padStart(9)).join("");
}

function count(label: string, value: number, note: string): string {
  return `  ${label.padEnd(44)}${String(value).padStart(8)}   ${note}`;
}

function seconds(msValue: number): string {
  return `${(msValue / 1000).toFixed(1)}s`;
}
