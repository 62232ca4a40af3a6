/** Renders benchmark figures as a Markdown table (read as-is on a terminal, and in docs/benchmarks.md). */
import type { Spread } from "./stats.js";

/** One line of the results table; a missing figure prints as "–". */
export interface Row {
  readonly workload: string;
  /** Messages (or records) per second. */
  readonly rate?: Spread;
  readonly unit?: string;
  readonly latencyMsP50?: Spread;
  readonly latencyMsP99?: Spread;
  /** rate ÷ the bare figure of the same run, and what that bare figure is. */
  readonly ratio?: Spread;
  readonly ratioTo?: string;
}

/** The table: workload, rate, p50, p99, ratio to bare; each figure as "median (min–max)". */
export function renderTable(rows: readonly Row[]): string {
  const lines = [
    "| Workload | Rate, median (min–max) | p50 ms | p99 ms | Ratio to bare |",
    "|---|---:|---:|---:|---|",
    ...rows.map((row) => {
      const rate = row.rate ? `${formatSpread(row.rate, 0)} ${row.unit ?? ""}`.trim() : "–";
      const ratio = row.ratio ? `${formatSpread(row.ratio, 2)}× of ${row.ratioTo}` : "–";
      return `| ${row.workload} | ${rate} | ${optional(row.latencyMsP50, 2)} | ${optional(row.latencyMsP99, 2)} | ${ratio} |`;
    }),
  ];
  return lines.join("\n");
}

/** "median (min–max)", or just the value when all runs agree (e.g. a single run). */
export function formatSpread(spread: Spread, digits: number): string {
  const median = formatNumber(spread.median, digits);
  const min = formatNumber(spread.min, digits);
  const max = formatNumber(spread.max, digits);
  return min === max ? median : `${median} (${min}–${max})`;
}

/** A number with thousands separators and a fixed number of decimals; "n/a" when not finite. */
export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function optional(spread: Spread | undefined, digits: number): string {
  return spread ? formatSpread(spread, digits) : "–";
}
