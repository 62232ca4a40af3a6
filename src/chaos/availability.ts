/**
 * Unavailability windows: stretches of the workload during which no client operation succeeded, the
 * longest first, each with the faults in effect during it. Measured between successful completions, from
 * the workload's start to its end (healing and draining are not counted).
 */
import type { FaultEvent, HistoryEvent } from "./history.js";

/** A stretch with no successful operation. */
export interface UnavailabilityWindow {
  readonly fromTime: number;
  readonly toTime: number;
  readonly durationMs: number;
  /** Faults that were in effect at some point of the window, e.g. "#3 kill: SIGKILL n1 (leader)". */
  readonly faults: readonly string[];
}

/** Windows shorter than this are not reported: a quiet moment between requests is not an outage. */
export const MIN_WINDOW_MS = 1_000;
/** Most windows reported. */
const MAX_WINDOWS = 10;

/** The longest windows of the workload phase, longest first. */
export function unavailabilityWindows(events: readonly HistoryEvent[]): UnavailabilityWindow[] {
  const start = events.find((event) => event.type === "phase" && event.phase === "workload-start")?.time;
  const end = events.find((event) => event.type === "phase" && event.phase === "workload-end")?.time;
  if (start === undefined || end === undefined) return [];
  const okTimes = events.filter((event) => event.type === "ok" && event.time >= start && event.time <= end).map((event) => event.time);
  okTimes.sort((a, b) => a - b);
  const windows: { fromTime: number; toTime: number }[] = [];
  let previous = start;
  for (const time of [...okTimes, end]) {
    if (time - previous >= MIN_WINDOW_MS) windows.push({ fromTime: previous, toTime: time });
    previous = time;
  }
  windows.sort((a, b) => b.toTime - b.fromTime - (a.toTime - a.fromTime));
  const faultSpans = spans(events.filter((event): event is FaultEvent => event.type === "fault"), end);
  return windows.slice(0, MAX_WINDOWS).map((window) => ({
    ...window,
    durationMs: window.toTime - window.fromTime,
    faults: faultSpans.filter((span) => span.from < window.toTime && span.to > window.fromTime).map((span) => span.label),
  }));
}

/** Each fault's [start, end] and a label. */
function spans(faults: readonly FaultEvent[], end: number): { from: number; to: number; label: string }[] {
  const started = new Map<number, FaultEvent>();
  const result: { from: number; to: number; label: string }[] = [];
  for (const fault of faults) {
    if (fault.phase === "start") {
      started.set(fault.fault, fault);
      continue;
    }
    const begin = started.get(fault.fault);
    started.delete(fault.fault);
    if (begin) result.push({ from: begin.time, to: fault.time, label: `#${fault.fault} ${fault.kind}: ${begin.detail}` });
  }
  for (const begin of started.values()) result.push({ from: begin.time, to: end, label: `#${begin.fault} ${begin.kind}: ${begin.detail}` });
  return result;
}
