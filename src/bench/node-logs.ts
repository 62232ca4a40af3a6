/** Reading what bench nodes logged (pino JSON lines, one file per node): counts of a message, and errors. */
import { existsSync, readFileSync } from "node:fs";

/** pino's numeric level of "warn"; lines at or above it are worth reporting. */
const WARN_LEVEL = 40;
/** Most problem lines kept per node for the report. */
const MAX_PROBLEM_LINES = 5;
/** Longest problem line kept. */
const MAX_LINE_CHARS = 300;

/** What one node's log says. */
export interface LogSummary {
  /** Lines whose message contains the text asked for (e.g. "compacted the log"). */
  readonly matching: number;
  /** Lines logged at warn or above (and lines that are not JSON, e.g. a crash's stack). */
  readonly problems: number;
  /** The first few of them, shortened. */
  readonly firstProblems: readonly string[];
}

/** Counts the lines of `logFile` that contain `text`, and the warnings and errors in it. */
export function summarizeLog(logFile: string, text: string): LogSummary {
  const lines = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").filter((line) => line !== "") : [];
  let matching = 0;
  const problems: string[] = [];
  for (const line of lines) {
    if (line.includes(text)) matching++;
    if (isProblem(line)) problems.push(line.slice(0, MAX_LINE_CHARS));
  }
  return { matching, problems: problems.length, firstProblems: problems.slice(0, MAX_PROBLEM_LINES) };
}

function isProblem(line: string): boolean {
  try {
    const record = JSON.parse(line) as { level?: unknown };
    return typeof record.level === "number" && record.level >= WARN_LEVEL;
  } catch {
    return true;
  }
}
